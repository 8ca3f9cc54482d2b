// Extended grapheme clusters (UAX #29), the same boundaries as graphemes.py and the Rust
// `unicode-segmentation` crate: the Precompiled normaliser decides per cluster.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "grapheme_table.h"
#include "utf8.h"

namespace seatok {

enum Gcb : uint8_t { kOther, kCR, kLF, kControl, kExtend, kZWJ, kRI, kPrepend, kSpacingMark, kL, kV, kT, kLV, kLVT };
enum InCB : uint8_t { kInCBNone, kInCBLinker, kInCBConsonant, kInCBExtend };

struct GraphemeProps {
    Gcb gcb;
    bool ext_pict;
    InCB incb;
};

inline GraphemeProps grapheme_props(char32_t cp) {
    using namespace grapheme_table;
    uint8_t bits = cp < 0x110000 ? kStage2[kStage1[cp / kBlock] * kBlock + cp % kBlock] : 0;
    return {static_cast<Gcb>(bits & 0x0F), ((bits >> 4) & 1) != 0, static_cast<InCB>((bits >> 5) & 3)};
}

// Whether the characters before and after a position stay in one cluster (GB3-GB999).
inline bool grapheme_joins(Gcb prev, const GraphemeProps& cur, int emoji_state, int conjunct_state, int ri_run) {
    if (prev == kCR && cur.gcb == kLF) return true;                                            // GB3
    if (prev == kControl || prev == kCR || prev == kLF) return false;                          // GB4
    if (cur.gcb == kControl || cur.gcb == kCR || cur.gcb == kLF) return false;                 // GB5
    if (prev == kL && (cur.gcb == kL || cur.gcb == kV || cur.gcb == kLV || cur.gcb == kLVT)) return true;  // GB6
    if ((prev == kLV || prev == kV) && (cur.gcb == kV || cur.gcb == kT)) return true;          // GB7
    if ((prev == kLVT || prev == kT) && cur.gcb == kT) return true;                            // GB8
    if (cur.gcb == kExtend || cur.gcb == kZWJ) return true;                                    // GB9
    if (cur.gcb == kSpacingMark) return true;                                                  // GB9a
    if (prev == kPrepend) return true;                                                         // GB9b
    if (cur.incb == kInCBConsonant && conjunct_state == 2) return true;                        // GB9c
    if (cur.ext_pict && emoji_state == 2 && prev == kZWJ) return true;                         // GB11
    if (prev == kRI && cur.gcb == kRI && ri_run % 2 == 1) return true;                         // GB12, GB13
    return false;                                                                              // GB999
}

// Calls on_cluster(first_byte, end_byte, n_chars) for each cluster of `text`, in order.
template <typename OnCluster>
void for_each_grapheme(std::string_view text, OnCluster&& on_cluster) {
    size_t start = 0;
    size_t chars = 0;
    Gcb prev = kOther;
    int emoji_state = 0;     // GB11: 1 after ExtPict Extend*, 2 after ... ZWJ
    int conjunct_state = 0;  // GB9c: 1 after a consonant, 2 after a linker following it
    int ri_run = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        int length;
        char32_t cp = decode_utf8(text, pos, &length);
        GraphemeProps props = grapheme_props(cp);
        if (pos > 0 && !grapheme_joins(prev, props, emoji_state, conjunct_state, ri_run)) {
            on_cluster(start, pos, chars);
            start = pos;
            chars = 0;
        }
        if (props.ext_pict) {
            emoji_state = 1;
        } else if (props.gcb == kExtend && emoji_state == 1) {
            emoji_state = 1;
        } else if (props.gcb == kZWJ && emoji_state == 1) {
            emoji_state = 2;
        } else {
            emoji_state = 0;
        }
        if (props.incb == kInCBConsonant) {
            conjunct_state = 1;
        } else if (props.incb == kInCBLinker && conjunct_state >= 1) {
            conjunct_state = 2;
        } else if (!(props.incb == kInCBExtend && conjunct_state >= 1)) {
            conjunct_state = 0;
        }
        ri_run = props.gcb == kRI ? ri_run + 1 : 0;
        prev = props.gcb;
        ++chars;
        pos += length;
    }
    if (!text.empty()) on_cluster(start, text.size(), chars);
}

}  // namespace seatok
