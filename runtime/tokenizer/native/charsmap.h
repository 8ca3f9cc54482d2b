// SentencePiece's precompiled charsmap (the Precompiled normaliser), mirroring charsmap.py.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace seatok {

class PrecompiledCharsmap {
public:
    PrecompiledCharsmap() = default;
    // `blob` (u32 trie size, Darts units, NUL-terminated replacement pool) must outlive this
    // object and be 4-byte aligned. Returns an error message, empty on success.
    std::string load(std::string_view blob);
    bool empty() const { return n_units_ == 0; }
    void normalize(std::string_view text, std::string& out) const;

private:
    // Pool offset of the shortest trie key that is a prefix of `key`, or -1 (Darts common-prefix search).
    int64_t first_match(std::string_view key) const;
    // The replacement for `chunk` when a prefix of it is a key.
    bool transform(std::string_view chunk, std::string_view* replacement) const;
    void append_char(std::string_view ch, std::string& out) const;

    const uint32_t* units_ = nullptr;
    size_t n_units_ = 0;
    std::string_view pool_;
    std::array<std::string_view, 128> ascii_{};  // replacement of each ASCII character
};

}  // namespace seatok
