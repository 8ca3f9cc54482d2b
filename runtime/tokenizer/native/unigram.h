// SentencePiece unigram model (unigram.py): Viterbi over the vocabulary's log-probabilities,
// exactly as `tokenizers` runs it: f64 scores, ties kept by the first candidate, an unknown
// character scored min_score - 10 when no single-character piece covers it, and runs of
// unknowns fused into one <unk>.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "double_array.h"

namespace seatok {

struct ViterbiScratch {
    std::vector<double> score;
    std::vector<int32_t> start, token, reversed;
};

class UnigramModel {
public:
    UnigramModel() = default;
    UnigramModel(DoubleArray trie, int32_t unk_id, double unk_score) : trie_(trie), unk_id_(unk_id), unk_score_(unk_score) {}

    // Appends the ids of `word` to `ids`.
    void tokenize(std::string_view word, std::vector<int32_t>& ids, ViterbiScratch& scratch) const;
    const DoubleArray& trie() const { return trie_; }

private:
    DoubleArray trie_;
    int32_t unk_id_ = 0;
    double unk_score_ = 0.0;
};

}  // namespace seatok
