// Pre-tokenisers (pretokenizers.py): Metaspace (SentencePiece's '▁' word boundaries) and
// WhitespaceSplit, applied in sequence to the pieces of one normalised segment.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seatok {

// Pieces stored back to back in one buffer, so a step allocates nothing once warm.
struct PieceList {
    std::string bytes;
    std::vector<std::pair<uint32_t, uint32_t>> spans;  // (offset, length) into bytes
    std::string work;                                  // a step's staging buffer

    void clear() { bytes.clear(); spans.clear(); }
    size_t size() const { return spans.size(); }
    std::string_view operator[](size_t i) const { return std::string_view(bytes).substr(spans[i].first, spans[i].second); }
    void push(std::string_view piece) {
        spans.emplace_back(static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(piece.size()));
        bytes.append(piece);
    }
};

struct PreTokenizerStep {
    enum Kind : uint32_t { kMetaspace = 1, kWhitespaceSplit = 2 };
    enum Scheme : uint32_t { kAlways = 0, kFirst = 1, kNever = 2 };
    Kind kind = kWhitespaceSplit;
    std::string replacement = "\xE2\x96\x81";  // U+2581
    Scheme scheme = kAlways;
    bool split = true;
};

class PreTokenizer {
public:
    void add(PreTokenizerStep step) { steps_.push_back(std::move(step)); }
    // The words of `segment` (non-empty); first_section: it starts the text (Metaspace "first").
    void run(std::string_view segment, bool first_section, PieceList& out, PieceList& scratch) const;

private:
    std::vector<PreTokenizerStep> steps_;
};

}  // namespace seatok
