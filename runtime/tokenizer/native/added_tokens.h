// Special tokens written literally in the text (added_tokens.py): tokens with normalized=false
// are matched in the raw text, the rest in the normalised text; matching is leftmost-longest;
// lstrip/rstrip swallow neighbouring whitespace.
#pragma once
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace seatok {

struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool lstrip = false, rstrip = false, normalized = false;
};

// A piece of text still to tokenize (id < 0), or an extracted token (id >= 0).
struct Segment {
    size_t start, end;
    int32_t id;
};

class AddedTokenMatcher {
public:
    void add(const AddedToken& token);
    bool empty() const { return tokens_.empty(); }
    void split(std::string_view text, std::vector<Segment>& out) const;

private:
    std::vector<AddedToken> tokens_;
    std::bitset<256> first_bytes_;
};

class AddedTokenSplitter {
public:
    void add(const AddedToken& token) { (token.normalized ? normalized_ : raw_).add(token); }
    void split_raw(std::string_view text, std::vector<Segment>& out) const { raw_.split(text, out); }
    void split_normalized(std::string_view text, std::vector<Segment>& out) const { normalized_.split(text, out); }

private:
    AddedTokenMatcher raw_, normalized_;
};

}  // namespace seatok
