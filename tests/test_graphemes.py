"""Grapheme clusters against the `regex` module's \\X (UAX #29) on real multilingual text."""

import pytest

from seaembed.runtime.tokenizer.graphemes import grapheme_clusters

regex = pytest.importorskip("regex", reason="the regex package (dev extra) is the grapheme reference")


def test_clusters_match_regex_on_corpus(corpus):
    for text in corpus:
        assert grapheme_clusters(text) == regex.findall(r"\X", text), text


@pytest.mark.parametrize(
    "text",
    ["\r\n", "e\u0301", "\uff76\uff9e", "👨‍👩‍👧‍👦", "🇸🇬🇹🇭🇻", "🏳️‍🌈", "क्षत्रिय", "ក្រុង", "한국어", "\u0600\u0661", "กำลัง"],
)
def test_clusters_match_regex_on_hard_cases(text):
    assert grapheme_clusters(text) == regex.findall(r"\X", text)
