#include "pipeline.h"

#include <algorithm>

#include "utf8.h"

namespace seatok {
namespace {

// Long inputs are tokenized a growing prefix at a time; tokens this far from the cut are
// settled, so truncated ids equal those of the whole text (tokenizer.py uses the same rule).
constexpr size_t kCutMarginTokens = 64;
constexpr size_t kExactCountChars = 20000;

}  // namespace

void Pipeline::content_ids(std::string_view text, std::vector<int32_t>& ids, Scratch& scratch) const {
    ids.clear();
    bool first = true;
    added_tokens.split_raw(text, scratch.raw_segments);
    for (const Segment& raw : scratch.raw_segments) {
        if (raw.id >= 0) {
            ids.push_back(raw.id);
            first = false;
            continue;
        }
        normalizer.normalize(text.substr(raw.start, raw.end - raw.start), scratch.normalized, scratch.normalize_buffer);
        const std::string_view normalized = scratch.normalized;
        added_tokens.split_normalized(normalized, scratch.normalized_segments);
        for (const Segment& segment : scratch.normalized_segments) {
            if (segment.id >= 0) {
                ids.push_back(segment.id);
            } else {
                pre_tokenizer.run(normalized.substr(segment.start, segment.end - segment.start), first, scratch.words, scratch.words_buffer);
                for (size_t w = 0; w < scratch.words.size(); ++w) model.tokenize(scratch.words[w], ids, scratch.viterbi);
            }
            first = false;  // only the text's first segment is the "first" section (Metaspace)
        }
    }
}

void Pipeline::bounded_content_ids(std::string_view text, size_t budget, std::vector<int32_t>& ids, Scratch& scratch) const {
    size_t prefix_chars = std::max<size_t>(4096, budget * 16);
    if (text.size() > prefix_chars) {  // fewer bytes than prefix_chars means fewer characters too
        const size_t total_chars = count_chars(text);
        for (; prefix_chars < total_chars; prefix_chars *= 4) {
            content_ids(text.substr(0, byte_offset_of_char(text, prefix_chars)), ids, scratch);
            if (ids.size() >= budget + kCutMarginTokens) {
                ids.resize(budget + 1);
                return;
            }
        }
    }
    content_ids(text, ids, scratch);
}

void Pipeline::encode(std::string_view text, const EncodeOptions& options, EncodeResult& result, Scratch& scratch) const {
    const size_t specials = prefix_ids.size() + suffix_ids.size();
    const size_t budget = options.max_tokens - specials;  // the binding checks max_tokens > specials
    result.status = EncodeResult::kOk;
    result.truncated = false;
    std::vector<int32_t>& content = scratch.content;
    // Keeping the end needs the last tokens, so the whole text is tokenized.
    if (options.keep_end) {
        content_ids(text, content, scratch);
    } else {
        bounded_content_ids(text, budget, content, scratch);
    }
    auto first = content.cbegin(), last = content.cend();
    if (content.size() > budget) {
        if (!options.truncate) {
            result.status = EncodeResult::kTooLong;
            result.exact = count_chars(text) <= kExactCountChars;
            size_t count = content.size();
            if (result.exact) {
                content_ids(text, scratch.counted, scratch);
                count = scratch.counted.size();
            }
            result.n_tokens = static_cast<int64_t>(count + specials);
            result.ids.clear();
            return;
        }
        result.truncated = true;
        if (options.keep_end) {
            first = last - static_cast<std::ptrdiff_t>(budget);
        } else {
            last = first + static_cast<std::ptrdiff_t>(budget);
        }
    }
    std::vector<int32_t>& ids = result.ids;
    ids.clear();
    if (options.add_special_tokens) ids.insert(ids.end(), prefix_ids.begin(), prefix_ids.end());
    ids.insert(ids.end(), first, last);
    if (options.add_special_tokens) ids.insert(ids.end(), suffix_ids.begin(), suffix_ids.end());
}

}  // namespace seatok
