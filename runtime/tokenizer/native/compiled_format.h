// The compact binary form of a tokenizer.json: a header (magic, format version, sha256 of the
// source file), a small config section and the large arrays (piece bytes and offsets, scores,
// the prebuilt double-array trie, charsmaps) 8-byte aligned, so loading is a header check and
// pointers into a memory map instead of parsing 17 MB of JSON and rebuilding a trie.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "added_tokens.h"
#include "normalizers.h"
#include "pipeline.h"
#include "pretokenizers.h"

namespace seatok {

constexpr uint32_t kFormatVersion = 1;

// What the Python side extracts from tokenizer.json (after validating it).
struct CompileInput {
    std::vector<std::string> pieces;  // empty string for a piece that can never match
    std::vector<double> scores;
    int32_t unk_id = 0;
    std::vector<NormalizerStep> normalizers;  // Precompiled steps carry their blob in `pattern`
    std::vector<PreTokenizerStep> pre_tokenizers;
    std::vector<AddedToken> added_tokens;
    std::vector<int32_t> prefix_ids, suffix_ids;
    int32_t pad_id = 1;
    int64_t vocab_size = 0;
    std::string source_sha256;  // 32 raw bytes
};

std::string write_compiled(const CompileInput& input);

// A loaded compiled form: the pipeline points into the caller's buffer, which must outlive it.
struct CompiledTokenizer {
    Pipeline pipeline;
    int32_t pad_id = 1;
    int64_t vocab_size = 0;
    std::string source_sha256;
    // id → piece, for id_to_piece
    const uint32_t* piece_offsets = nullptr;
    const char* piece_bytes = nullptr;
    size_t n_pieces = 0;
    size_t piece_bytes_size = 0;
    std::vector<AddedToken> added_tokens;

    std::string_view piece(size_t id) const;
};

// Returns an error message (empty on success). expected_sha256: 32 bytes, or empty to skip.
std::string load_compiled(std::string_view data, std::string_view expected_sha256, CompiledTokenizer& out);

}  // namespace seatok
