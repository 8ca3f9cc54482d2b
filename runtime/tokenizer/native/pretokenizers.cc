#include "pretokenizers.h"

#include "utf8.h"

namespace seatok {
namespace {

void metaspace(const PreTokenizerStep& step, const PieceList& in, bool first_section, PieceList& out, std::string& piece) {
    const std::string_view replacement = step.replacement;
    int first_length = replacement.empty() ? 0 : utf8_length(static_cast<unsigned char>(replacement[0]));
    // pretokenizers.py compares single characters with the replacement: a longer one never splits.
    bool splits_on_char = step.split && first_length > 0 && static_cast<size_t>(first_length) == replacement.size();
    for (size_t index = 0; index < in.size(); ++index) {
        std::string_view source = in[index];
        piece.clear();
        for (char c : source) {
            if (c == ' ') {
                piece.append(replacement);
            } else {
                piece.push_back(c);
            }
        }
        bool prepend = step.scheme == PreTokenizerStep::kAlways ||
                       (step.scheme == PreTokenizerStep::kFirst && first_section && index == 0);
        if (prepend && !piece.empty() && piece.compare(0, replacement.size(), replacement) != 0) {
            piece.insert(0, replacement);
        }
        if (!step.split) {
            if (!piece.empty()) out.push(piece);
            continue;
        }
        if (piece.empty()) continue;
        size_t start = 0;
        if (splits_on_char) {
            size_t pos = static_cast<size_t>(utf8_length(static_cast<unsigned char>(piece[0])));
            while (pos < piece.size()) {
                if (piece.compare(pos, replacement.size(), replacement) == 0) {
                    out.push(std::string_view(piece).substr(start, pos - start));
                    start = pos;
                }
                pos += utf8_length(static_cast<unsigned char>(piece[pos]));
            }
        }
        out.push(std::string_view(piece).substr(start));
    }
}

void whitespace_split(const PieceList& in, PieceList& out) {
    for (size_t index = 0; index < in.size(); ++index) {
        std::string_view source = in[index];
        size_t word_start = 0;
        size_t pos = 0;
        while (pos < source.size()) {
            int length;
            char32_t cp = decode_utf8(source, pos, &length);
            if (is_whitespace(cp)) {
                if (pos > word_start) out.push(source.substr(word_start, pos - word_start));
                word_start = pos + length;
            }
            pos += length;
        }
        if (pos > word_start) out.push(source.substr(word_start, pos - word_start));
    }
}

}  // namespace

void PreTokenizer::run(std::string_view segment, bool first_section, PieceList& out, PieceList& scratch) const {
    out.clear();
    if (!segment.empty()) out.push(segment);
    for (const PreTokenizerStep& step : steps_) {
        scratch.clear();
        if (step.kind == PreTokenizerStep::kMetaspace) {
            metaspace(step, out, first_section, scratch, scratch.work);
        } else {
            whitespace_split(out, scratch);
        }
        std::swap(out, scratch);
    }
}

}  // namespace seatok
