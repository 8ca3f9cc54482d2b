// Text → ids (tokenizer.py): special tokens written in the text are extracted, each remaining
// span is normalised, pre-tokenised and segmented by the unigram model, then truncated and
// wrapped in <s> … </s>. One Pipeline is shared read-only by every thread; all mutable state
// lives in the caller's Scratch.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "added_tokens.h"
#include "normalizers.h"
#include "pretokenizers.h"
#include "unigram.h"

namespace seatok {

struct Scratch {
    std::string text;  // the prompt and the input, as UTF-8
    std::string normalized, normalize_buffer;
    std::vector<Segment> raw_segments, normalized_segments;
    PieceList words, words_buffer;
    ViterbiScratch viterbi;
    std::vector<int32_t> content, counted;
};

struct EncodeOptions {
    size_t max_tokens = 512;
    bool truncate = true;
    bool keep_end = false;  // truncation direction "left": keep the last tokens
    bool add_special_tokens = true;
};

struct EncodeResult {
    enum Status { kOk, kTooLong };
    Status status = kOk;
    std::vector<int32_t> ids;
    bool truncated = false;
    int64_t n_tokens = 0;  // kTooLong: tokens the text has (at least, unless exact)
    bool exact = true;
};

class Pipeline {
public:
    Normalizer normalizer;
    PreTokenizer pre_tokenizer;
    AddedTokenSplitter added_tokens;
    UnigramModel model;
    std::vector<int32_t> prefix_ids, suffix_ids;

    // Ids of `text` without the surrounding special tokens.
    void content_ids(std::string_view text, std::vector<int32_t>& ids, Scratch& scratch) const;
    // All content ids, or at least budget + 1 leading ids equal to those of the whole text.
    void bounded_content_ids(std::string_view text, size_t budget, std::vector<int32_t>& ids, Scratch& scratch) const;
    void encode(std::string_view text, const EncodeOptions& options, EncodeResult& result, Scratch& scratch) const;
};

}  // namespace seatok
