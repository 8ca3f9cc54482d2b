// A double-array trie over UTF-8 piece bytes (sentencepiece uses darts-clone the same way):
// a prefix search walks one array slot per byte. The child of node n on byte b is slot
// offset(n) + b + kLabelBase when check[slot] == n. A node where a key ends has kHasTerminal
// set in its base, and its first three slots offset(n) + 0..2 hold the key's record: the
// piece id and the two halves of its f64 score, so a match costs no lookup elsewhere.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace seatok {

struct DoubleArrayUnit {
    uint32_t base;
    uint32_t check;
};

constexpr uint32_t kNoParent = 0xFFFFFFFFu;  // check of free slots and of terminal records
constexpr uint32_t kHasTerminal = 0x80000000u;
constexpr uint32_t kOffsetMask = 0x7FFFFFFFu;
constexpr uint32_t kLabelBase = 3;  // labels 0..2 are the terminal record

struct TrieKey {
    std::string_view bytes;
    uint32_t id;
    double score;
};

class DoubleArray {
public:
    DoubleArray() = default;
    DoubleArray(const DoubleArrayUnit* units, size_t size) : units_(units), size_(size) {}

    // Calls on_match(end, id, score) for every key that is a prefix of text[pos:], shortest
    // first; `end` is the byte offset in `text` where the key ends.
    template <typename OnMatch>
    void common_prefixes(std::string_view text, size_t pos, OnMatch&& on_match) const {
        uint32_t node = 0;
        uint32_t base = units_[0].base;
        for (; pos < text.size(); ++pos) {
            const uint32_t next = (base & kOffsetMask) + static_cast<unsigned char>(text[pos]) + kLabelBase;
            if (next >= size_ || units_[next].check != node) return;
            node = next;
            base = units_[node].base;
            if (base & kHasTerminal) {
                const DoubleArrayUnit* record = units_ + (base & kOffsetMask);
                on_match(pos + 1, record[0].base, score_of(record));
            }
        }
    }

    // Id of exactly `key`, or -1.
    int64_t find(std::string_view key) const;

    // Units for keys sorted by bytes, unique and non-empty.
    static std::vector<DoubleArrayUnit> build(const std::vector<TrieKey>& keys);

    // Every terminal record lies inside the array and names an id below n_ids.
    bool valid(size_t n_ids) const;

private:
    static double score_of(const DoubleArrayUnit* record) {
        const uint64_t bits = record[1].base | (static_cast<uint64_t>(record[2].base) << 32);
        double score;
        std::memcpy(&score, &bits, sizeof score);
        return score;
    }

    const DoubleArrayUnit* units_ = nullptr;
    size_t size_ = 0;
};

}  // namespace seatok
