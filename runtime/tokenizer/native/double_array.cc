#include "double_array.h"

#include <algorithm>

namespace seatok {

int64_t DoubleArray::find(std::string_view key) const {
    if (size_ == 0 || key.empty()) return -1;
    uint32_t node = 0;
    for (unsigned char byte : key) {
        const uint32_t next = (units_[node].base & kOffsetMask) + byte + kLabelBase;
        if (next >= size_ || units_[next].check != node) return -1;
        node = next;
    }
    const uint32_t base = units_[node].base;
    return base & kHasTerminal ? units_[base & kOffsetMask].base : -1;
}

bool DoubleArray::valid(size_t n_ids) const {
    for (size_t node = 0; node < size_; ++node) {
        const uint32_t base = units_[node].base;
        // Nodes are the root and the slots with a parent; records and free slots have none.
        if (!(base & kHasTerminal) || (node > 0 && units_[node].check == kNoParent)) continue;
        const size_t record = base & kOffsetMask;
        if (record + 2 >= size_ || units_[record].base >= n_ids) return false;
    }
    return size_ > 0;
}

namespace {

// Builds depth-first; free slots form a doubly linked list so a base search skips used ones.
// Only the last kWindow slots are searched (as darts-clone does with its unfixed blocks): a
// node's children land near it, so a prefix walk stays in few cache lines, and the holes
// left behind are abandoned.
class Builder {
public:
    explicit Builder(const std::vector<TrieKey>& keys) : keys_(keys) {
        grow(1024);
        take(0);
    }

    std::vector<DoubleArrayUnit> run() {
        if (!keys_.empty()) build_node(0, 0, keys_.size(), 0);
        size_t used_end = units_.size();
        while (used_end > 1 && !used_[used_end - 1]) --used_end;
        units_.resize(used_end);
        return std::move(units_);
    }

private:
    struct Child {
        uint32_t label;  // kLabelBase + byte; a key ending here takes labels 0..2
        size_t lo, hi;
    };

    void grow(size_t size) {
        const size_t old = units_.size();
        if (size <= old) return;
        units_.resize(size, DoubleArrayUnit{0, kNoParent});
        used_.resize(size, false);
        next_free_.resize(size);
        prev_free_.resize(size);
        for (size_t i = old; i < size; ++i) {  // append i to the free list
            next_free_[i] = kEnd;
            prev_free_[i] = tail_;
            if (tail_ == kEnd) {
                head_ = i;
            } else {
                next_free_[tail_] = i;
            }
            tail_ = i;
        }
    }

    void take(size_t slot) {
        used_[slot] = true;
        frontier_ = std::max(frontier_, slot + 1);
        const size_t prev = prev_free_[slot], next = next_free_[slot];
        if (prev == kEnd) {
            head_ = next;
        } else {
            next_free_[prev] = next;
        }
        if (next == kEnd) {
            tail_ = prev;
        } else {
            prev_free_[next] = prev;
        }
    }

    uint32_t find_base(const std::vector<Child>& children) {
        const uint32_t first = children.front().label;
        while (head_ != kEnd && head_ + kWindow < frontier_) take(head_);  // abandoned: stays empty
        size_t slot = head_;
        if (slot == kEnd) {
            grow(units_.size() * 2);
            slot = head_;
        }
        for (;;) {
            if (slot >= first + 1) {  // bases start at 1: slot 0 is the root
                const size_t base = slot - first;
                if (base + kLabelBase + 256 > units_.size()) grow(std::max(units_.size() * 2, base + kLabelBase + 256));
                bool fits = true;
                for (const Child& child : children) {
                    if (used_[base + child.label]) {
                        fits = false;
                        break;
                    }
                }
                if (fits) return static_cast<uint32_t>(base);
            }
            size_t next = next_free_[slot];
            if (next == kEnd) {  // slot is the tail: add room after it
                grow(units_.size() * 2);
                next = next_free_[slot];
            }
            slot = next;
        }
    }

    void build_node(uint32_t node, size_t lo, size_t hi, size_t depth) {
        std::vector<Child> children;
        size_t i = lo;
        if (keys_[i].bytes.size() == depth) {  // sorted: the key ending here comes first
            for (uint32_t label = 0; label < kLabelBase; ++label) children.push_back({label, i, i + 1});
            ++i;
        }
        while (i < hi) {
            const unsigned char byte = static_cast<unsigned char>(keys_[i].bytes[depth]);
            size_t j = i + 1;
            while (j < hi && static_cast<unsigned char>(keys_[j].bytes[depth]) == byte) ++j;
            children.push_back({kLabelBase + byte, i, j});
            i = j;
        }
        const uint32_t base = find_base(children);
        const bool terminal = children.front().label == 0;
        units_[node].base = base | (terminal ? kHasTerminal : 0);
        for (const Child& child : children) {
            take(base + child.label);
            if (child.label >= kLabelBase) units_[base + child.label].check = node;
        }
        if (terminal) {
            const TrieKey& key = keys_[children.front().lo];
            uint64_t bits;
            std::memcpy(&bits, &key.score, sizeof bits);
            units_[base].base = key.id;
            units_[base + 1].base = static_cast<uint32_t>(bits);
            units_[base + 2].base = static_cast<uint32_t>(bits >> 32);
        }
        for (const Child& child : children) {
            if (child.label >= kLabelBase) build_node(base + child.label, child.lo, child.hi, depth + 1);
        }
    }

    static constexpr size_t kEnd = static_cast<size_t>(-1);
    static constexpr size_t kWindow = 4096;
    const std::vector<TrieKey>& keys_;
    std::vector<DoubleArrayUnit> units_;
    std::vector<bool> used_;
    std::vector<size_t> next_free_, prev_free_;
    size_t head_ = kEnd, tail_ = kEnd, frontier_ = 0;
};

}  // namespace

std::vector<DoubleArrayUnit> DoubleArray::build(const std::vector<TrieKey>& keys) { return Builder(keys).run(); }

}  // namespace seatok
