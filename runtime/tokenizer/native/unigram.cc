#include "unigram.h"

#include "utf8.h"

namespace seatok {

void UnigramModel::tokenize(std::string_view word, std::vector<int32_t>& ids, ViterbiScratch& scratch) const {
    const size_t n = word.size();
    if (n == 0) return;
    // Lattice positions are byte offsets; only character boundaries are ever reached.
    scratch.score.resize(n + 1);
    scratch.start.assign(n + 1, -1);
    scratch.token.resize(n + 1);
    double* score = scratch.score.data();
    int32_t* start = scratch.start.data();
    int32_t* token = scratch.token.data();
    score[0] = 0.0;
    start[0] = 0;
    for (size_t i = 0; i < n;) {
        const size_t char_end = i + utf8_length(static_cast<unsigned char>(word[i]));
        const double base = score[i];
        bool has_single = false;
        trie_.common_prefixes(word, i, [&](size_t end, uint32_t id, double piece_score) {
            const double candidate = base + piece_score;
            if (start[end] < 0 || candidate > score[end]) {
                score[end] = candidate;
                start[end] = static_cast<int32_t>(i);
                token[end] = static_cast<int32_t>(id);
            }
            has_single |= end == char_end;
        });
        if (!has_single) {
            double candidate = base + unk_score_;
            if (start[char_end] < 0 || candidate > score[char_end]) {
                score[char_end] = candidate;
                start[char_end] = static_cast<int32_t>(i);
                token[char_end] = unk_id_;
            }
        }
        i = char_end;
    }
    std::vector<int32_t>& reversed = scratch.reversed;
    reversed.clear();
    for (size_t pos = n; pos > 0; pos = static_cast<size_t>(start[pos])) {
        int32_t id = token[pos];
        if (!(id == unk_id_ && !reversed.empty() && reversed.back() == unk_id_)) reversed.push_back(id);
    }
    ids.insert(ids.end(), reversed.rbegin(), reversed.rend());
}

}  // namespace seatok
