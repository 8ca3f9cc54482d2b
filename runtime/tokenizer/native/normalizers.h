// The tokenizer.json normalisers XLM-R-family files use (normalizers.py): Precompiled, Strip,
// Replace (a literal, or a regex that is one character repeated: " {2,}"), as a flat sequence.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "charsmap.h"

namespace seatok {

struct NormalizerStep {
    enum Kind : uint32_t { kPrecompiled = 1, kStrip = 2, kReplaceLiteral = 3, kReplaceRun = 4 };
    Kind kind = kStrip;
    bool strip_left = false, strip_right = false;
    std::string pattern;   // the literal, or the repeated character of a run
    uint32_t run_min = 1;  // a run of pattern repeated run_min..run_max times (0: no maximum)
    uint32_t run_max = 0;
    std::string content;
    PrecompiledCharsmap charsmap;
};

class Normalizer {
public:
    void add(NormalizerStep step) { steps_.push_back(std::move(step)); }
    // Writes the normalised `text` to `out`; `scratch` is reused between calls.
    void normalize(std::string_view text, std::string& out, std::string& scratch) const;

private:
    std::vector<NormalizerStep> steps_;
};

}  // namespace seatok
