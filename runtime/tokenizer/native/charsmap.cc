// A grapheme cluster shorter than 6 UTF-8 bytes whose *prefix* is a key is replaced whole by
// the first (shortest) match; longer clusters are mapped character by character. These are
// `tokenizers`' rules, quirks included (see charsmap.py).
#include "charsmap.h"

#include <cstring>

#include "graphemes.h"
#include "utf8.h"

namespace seatok {

std::string PrecompiledCharsmap::load(std::string_view blob) {
    if (blob.size() < 4) return "precompiled_charsmap is truncated: fewer than 4 bytes";
    uint32_t trie_size;
    std::memcpy(&trie_size, blob.data(), 4);
    if (trie_size % 4 || 4 + static_cast<size_t>(trie_size) > blob.size() || trie_size == 0) {
        return "precompiled_charsmap is malformed: trie size " + std::to_string(trie_size) + " for a " +
               std::to_string(blob.size()) + "-byte blob";
    }
    if (reinterpret_cast<uintptr_t>(blob.data() + 4) % alignof(uint32_t)) return "precompiled_charsmap is misaligned";
    units_ = reinterpret_cast<const uint32_t*>(blob.data() + 4);
    n_units_ = trie_size / 4;
    pool_ = blob.substr(4 + trie_size);
    // An unmapped ASCII character keeps a null view; a mapped one points into the pool (maybe empty).
    for (int c = 0; c < 128; ++c) {
        char ch = static_cast<char>(c);
        std::string_view replacement;
        ascii_[c] = transform(std::string_view(&ch, 1), &replacement) ? replacement : std::string_view(nullptr, 0);
    }
    return {};
}

int64_t PrecompiledCharsmap::first_match(std::string_view key) const {
    auto offset_of = [](uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
    uint32_t node = offset_of(units_[0]);
    for (unsigned char byte : key) {
        if (byte == 0) return -1;
        node ^= byte;
        if (node >= n_units_) return -1;
        uint32_t unit = units_[node];
        if ((unit & ((1u << 31) | 0xFFu)) != byte) return -1;
        node ^= offset_of(unit);
        if ((unit >> 8) & 1) {
            if (node >= n_units_) return -1;
            return units_[node] & ((1u << 31) - 1);
        }
    }
    return -1;
}

bool PrecompiledCharsmap::transform(std::string_view chunk, std::string_view* replacement) const {
    int64_t offset = first_match(chunk);
    if (offset < 0 || static_cast<size_t>(offset) > pool_.size()) return false;
    size_t end = pool_.find('\0', static_cast<size_t>(offset));
    *replacement = pool_.substr(static_cast<size_t>(offset), end == std::string_view::npos ? std::string_view::npos : end - offset);
    return true;
}

void PrecompiledCharsmap::append_char(std::string_view ch, std::string& out) const {
    unsigned char lead = static_cast<unsigned char>(ch[0]);
    if (lead < 0x80) {
        const std::string_view& mapped = ascii_[lead];
        if (mapped.data() == nullptr) {
            out.push_back(ch[0]);
        } else {
            out.append(mapped);
        }
        return;
    }
    std::string_view replacement;
    if (transform(ch, &replacement)) {
        out.append(replacement);
    } else {
        out.append(ch);
    }
}

void PrecompiledCharsmap::normalize(std::string_view text, std::string& out) const {
    out.clear();
    out.reserve(text.size() + 8);
    bool simple = true;  // ASCII without CR LF: every character is its own cluster
    for (size_t i = 0; i < text.size() && simple; ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        simple = c < 0x80 && !(c == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
    }
    if (simple) {
        for (size_t i = 0; i < text.size(); ++i) append_char(text.substr(i, 1), out);
        return;
    }
    for_each_grapheme(text, [&](size_t start, size_t end, size_t n_chars) {
        std::string_view cluster = text.substr(start, end - start);
        if (n_chars > 1 && cluster.size() < 6) {
            std::string_view replacement;
            if (transform(cluster, &replacement)) {
                out.append(replacement);
                return;
            }
        }
        for (size_t pos = 0; pos < cluster.size();) {
            int length = utf8_length(static_cast<unsigned char>(cluster[pos]));
            append_char(cluster.substr(pos, length), out);
            pos += length;
        }
    });
}

}  // namespace seatok
