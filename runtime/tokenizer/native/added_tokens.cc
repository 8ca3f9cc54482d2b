#include "added_tokens.h"

#include "utf8.h"

namespace seatok {

void AddedTokenMatcher::add(const AddedToken& token) {
    // Duplicate contents resolve to the last token, as the reference's dict does.
    for (AddedToken& existing : tokens_) {
        if (existing.content == token.content) {
            existing = token;
            return;
        }
    }
    tokens_.push_back(token);
    first_bytes_.set(static_cast<unsigned char>(token.content[0]));
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
    out.clear();
    if (text.empty()) return;
    if (tokens_.empty()) {
        out.push_back({0, text.size(), -1});
        return;
    }
    size_t cursor = 0;  // end of what is already emitted (after any rstrip)
    size_t search = 0;  // where the next match may start (the end of the previous match)
    while (search < text.size()) {
        if (!first_bytes_.test(static_cast<unsigned char>(text[search]))) {
            ++search;
            continue;
        }
        const AddedToken* best = nullptr;
        for (const AddedToken& token : tokens_) {
            if ((!best || token.content.size() > best->content.size()) && text.compare(search, token.content.size(), token.content) == 0) {
                best = &token;
            }
        }
        if (!best) {
            ++search;
            continue;
        }
        size_t start = search, end = search + best->content.size();
        search = end;
        if (start < cursor) continue;  // inside whitespace an earlier token's rstrip took
        if (best->lstrip) {
            while (start > cursor) {
                size_t previous = previous_char_start(text, start);
                int length;
                if (!is_whitespace(decode_utf8(text, previous, &length))) break;
                start = previous;
            }
        }
        if (best->rstrip) {
            while (end < text.size()) {
                int length;
                if (!is_whitespace(decode_utf8(text, end, &length))) break;
                end += length;
            }
        }
        if (start > cursor) out.push_back({cursor, start, -1});
        out.push_back({start, end, best->id});
        cursor = end;
    }
    if (cursor < text.size()) out.push_back({cursor, text.size(), -1});
}

}  // namespace seatok
