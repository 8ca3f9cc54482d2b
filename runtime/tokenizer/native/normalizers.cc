#include "normalizers.h"

#include "utf8.h"

namespace seatok {
namespace {

void strip(const NormalizerStep& step, std::string_view text, std::string& out) {
    size_t begin = 0, end = text.size();
    if (step.strip_right) {
        while (end > begin) {
            size_t start = previous_char_start(text, end);
            int length;
            if (!is_whitespace(decode_utf8(text, start, &length))) break;
            end = start;
        }
    }
    if (step.strip_left) {
        while (begin < end) {
            int length;
            if (!is_whitespace(decode_utf8(text, begin, &length))) break;
            begin += length;
        }
    }
    out.assign(text.substr(begin, end - begin));
}

// str.replace: non-overlapping occurrences, left to right.
void replace_literal(const NormalizerStep& step, std::string_view text, std::string& out) {
    out.clear();
    size_t cursor = 0;
    for (size_t hit; (hit = text.find(step.pattern, cursor)) != std::string_view::npos; cursor = hit + step.pattern.size()) {
        out.append(text.substr(cursor, hit - cursor));
        out.append(step.content);
    }
    out.append(text.substr(cursor));
}

// re.sub(f"{c}{{min,max}}", content): each maximal run is consumed greedily, max at a time.
void replace_run(const NormalizerStep& step, std::string_view text, std::string& out) {
    out.clear();
    const std::string_view unit = step.pattern;
    size_t pos = 0;
    while (pos < text.size()) {
        if (text.compare(pos, unit.size(), unit) != 0) {
            size_t next = text.find(unit, pos + 1);
            if (next == std::string_view::npos) next = text.size();
            out.append(text.substr(pos, next - pos));
            pos = next;
            continue;
        }
        size_t run = 0;
        while (pos + (run + 1) * unit.size() <= text.size() && text.compare(pos + run * unit.size(), unit.size(), unit) == 0) ++run;
        while (run >= step.run_min && run > 0) {
            size_t take = step.run_max && run > step.run_max ? step.run_max : run;
            out.append(step.content);
            pos += take * unit.size();
            run -= take;
        }
        out.append(text.substr(pos, run * unit.size()));
        pos += run * unit.size();
    }
}

}  // namespace

void Normalizer::normalize(std::string_view text, std::string& out, std::string& scratch) const {
    if (steps_.empty()) {
        out.assign(text);
        return;
    }
    // Steps alternate between the two buffers; the last one writes `out`.
    bool into_out = steps_.size() % 2 == 1;
    std::string_view current = text;
    for (const NormalizerStep& step : steps_) {
        std::string& target = into_out ? out : scratch;
        switch (step.kind) {
            case NormalizerStep::kPrecompiled: step.charsmap.normalize(current, target); break;
            case NormalizerStep::kStrip: strip(step, current, target); break;
            case NormalizerStep::kReplaceLiteral: replace_literal(step, current, target); break;
            case NormalizerStep::kReplaceRun: replace_run(step, current, target); break;
        }
        current = target;
        into_out = !into_out;
    }
}

}  // namespace seatok
