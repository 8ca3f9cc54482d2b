#include "compiled_format.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "double_array.h"

namespace seatok {
namespace {

// The form is written and read in host byte order with fixed-width fields and no struct padding, so it
// is the same bytes on every little-endian machine with IEEE-754 doubles: x86-64 and aarch64 (Linux,
// macOS, Windows) read each other's files, which `make test-arm64` checks byte for byte. A big-endian
// build stops here; the extension is optional, so that machine runs the Python tokenizer instead.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__  // MSVC's targets are all little-endian
#error "the compiled tokenizer form is little-endian"
#endif
static_assert(std::numeric_limits<double>::is_iec559 && sizeof(double) == 8, "scores are stored as IEEE-754 binary64");
static_assert(sizeof(DoubleArrayUnit) == 8 && alignof(DoubleArrayUnit) == 4, "trie units are two packed u32");

constexpr char kMagic[8] = {'S', 'E', 'A', 'T', 'O', 'K', '\r', '\n'};
constexpr size_t kHeaderSize = 64;  // magic, version, section count, sha256, total size, reserved

enum SectionKind : uint32_t { kConfig = 1, kPieceOffsets = 2, kPieceBytes = 3, kTrie = 4, kBlob = 5 };

struct SectionEntry {
    uint32_t kind;
    uint32_t reserved;
    uint64_t offset;
    uint64_t size;
};
static_assert(sizeof(SectionEntry) == 24, "the section table has no padding");

class Writer {
public:
    void u32(uint32_t v) { raw(&v, 4); }
    void i32(int32_t v) { raw(&v, 4); }
    void i64(int64_t v) { raw(&v, 8); }
    void f64(double v) { raw(&v, 8); }
    void str(std::string_view s) {
        u32(static_cast<uint32_t>(s.size()));
        out.append(s);
    }
    void raw(const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
    std::string out;
};

class Reader {
public:
    explicit Reader(std::string_view data) : data_(data) {}
    bool ok() const { return ok_; }
    uint32_t u32() { return fixed<uint32_t>(); }
    int32_t i32() { return fixed<int32_t>(); }
    int64_t i64() { return fixed<int64_t>(); }
    double f64() { return fixed<double>(); }
    std::string_view str() {
        uint32_t n = u32();
        if (!ok_ || n > data_.size() - pos_) {
            ok_ = false;
            return {};
        }
        std::string_view s = data_.substr(pos_, n);
        pos_ += n;
        return s;
    }

private:
    template <typename T>
    T fixed() {
        T v{};
        if (sizeof(T) > data_.size() - pos_) {
            ok_ = false;
            return v;
        }
        std::memcpy(&v, data_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string_view data_;
    size_t pos_ = 0;
    bool ok_ = true;
};

}  // namespace

std::string write_compiled(const CompileInput& input) {
    const size_t n = input.pieces.size();
    std::vector<std::string> blobs;  // charsmaps, referenced from the config by section number
    Writer config;
    double min_score = 0.0;
    for (size_t i = 0; i < input.scores.size(); ++i) min_score = i == 0 ? input.scores[0] : std::min(min_score, input.scores[i]);
    config.u32(static_cast<uint32_t>(n));
    config.i32(input.unk_id);
    config.f64(min_score - 10.0);  // the score of an unknown character (unigram.py's UNK_PENALTY)
    config.i32(input.pad_id);
    config.i64(input.vocab_size);
    for (const auto* ids : {&input.prefix_ids, &input.suffix_ids}) {
        config.u32(static_cast<uint32_t>(ids->size()));
        for (int32_t id : *ids) config.i32(id);
    }
    config.u32(static_cast<uint32_t>(input.normalizers.size()));
    for (const NormalizerStep& step : input.normalizers) {
        config.u32(step.kind);
        switch (step.kind) {
            case NormalizerStep::kPrecompiled:
                config.u32(static_cast<uint32_t>(blobs.size()));
                blobs.push_back(step.pattern);
                break;
            case NormalizerStep::kStrip:
                config.u32(step.strip_left);
                config.u32(step.strip_right);
                break;
            case NormalizerStep::kReplaceLiteral:
            case NormalizerStep::kReplaceRun:
                config.str(step.pattern);
                config.u32(step.run_min);
                config.u32(step.run_max);
                config.str(step.content);
                break;
        }
    }
    config.u32(static_cast<uint32_t>(input.pre_tokenizers.size()));
    for (const PreTokenizerStep& step : input.pre_tokenizers) {
        config.u32(step.kind);
        config.str(step.replacement);
        config.u32(step.scheme);
        config.u32(step.split);
    }
    config.u32(static_cast<uint32_t>(input.added_tokens.size()));
    for (const AddedToken& token : input.added_tokens) {
        config.str(token.content);
        config.i32(token.id);
        config.u32(token.lstrip | (token.rstrip << 1) | (token.normalized << 2));
    }

    std::vector<uint32_t> offsets(n + 1, 0);
    std::string piece_bytes;
    for (size_t i = 0; i < n; ++i) {
        piece_bytes.append(input.pieces[i]);
        offsets[i + 1] = static_cast<uint32_t>(piece_bytes.size());
    }
    // Duplicate pieces resolve to the last id, as the reference's dict does.
    std::vector<TrieKey> keys;
    keys.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        if (!input.pieces[i].empty()) keys.push_back({input.pieces[i], static_cast<uint32_t>(i), input.scores[i]});
    }
    std::stable_sort(keys.begin(), keys.end(), [](const TrieKey& a, const TrieKey& b) { return a.bytes < b.bytes; });
    std::vector<TrieKey> unique_keys;
    unique_keys.reserve(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
        if (i + 1 < keys.size() && keys[i + 1].bytes == keys[i].bytes) continue;
        unique_keys.push_back(keys[i]);
    }
    std::vector<DoubleArrayUnit> trie = DoubleArray::build(unique_keys);

    std::vector<std::pair<uint32_t, std::string_view>> sections = {
        {kConfig, config.out},
        {kPieceOffsets, std::string_view(reinterpret_cast<const char*>(offsets.data()), offsets.size() * 4)},
        {kPieceBytes, piece_bytes},
        {kTrie, std::string_view(reinterpret_cast<const char*>(trie.data()), trie.size() * sizeof(DoubleArrayUnit))},
    };
    for (const std::string& blob : blobs) sections.emplace_back(kBlob, blob);

    auto align8 = [](size_t v) { return (v + 7) & ~static_cast<size_t>(7); };
    size_t offset = align8(kHeaderSize + sections.size() * sizeof(SectionEntry));
    std::vector<SectionEntry> table;
    for (const auto& [kind, bytes] : sections) {
        table.push_back({kind, 0, offset, bytes.size()});
        offset = align8(offset + bytes.size());
    }
    std::string out(offset, '\0');
    std::memcpy(out.data(), kMagic, 8);
    uint32_t version = kFormatVersion, n_sections = static_cast<uint32_t>(sections.size());
    uint64_t total = offset;
    std::memcpy(out.data() + 8, &version, 4);
    std::memcpy(out.data() + 12, &n_sections, 4);
    std::memcpy(out.data() + 16, input.source_sha256.data(), std::min<size_t>(32, input.source_sha256.size()));
    std::memcpy(out.data() + 48, &total, 8);
    std::memcpy(out.data() + kHeaderSize, table.data(), table.size() * sizeof(SectionEntry));
    for (size_t i = 0; i < sections.size(); ++i) {
        std::memcpy(out.data() + table[i].offset, sections[i].second.data(), sections[i].second.size());
    }
    return out;
}

std::string_view CompiledTokenizer::piece(size_t id) const {
    if (id >= n_pieces) return {};
    uint32_t begin = piece_offsets[id], end = piece_offsets[id + 1];
    if (begin > end || end > piece_bytes_size) return {};
    return std::string_view(piece_bytes + begin, end - begin);
}

std::string load_compiled(std::string_view data, std::string_view expected_sha256, CompiledTokenizer& out) {
    if (reinterpret_cast<uintptr_t>(data.data()) % 8) return "compiled tokenizer buffer is not 8-byte aligned";
    if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, 8) != 0) return "not a compiled seaembed tokenizer";
    uint32_t version, n_sections;
    uint64_t total;
    std::memcpy(&version, data.data() + 8, 4);
    std::memcpy(&n_sections, data.data() + 12, 4);
    std::memcpy(&total, data.data() + 48, 8);
    if (version != kFormatVersion) return "compiled tokenizer format " + std::to_string(version) + ", this build reads " + std::to_string(kFormatVersion);
    if (total != data.size()) return "compiled tokenizer is truncated";
    out.source_sha256.assign(data.substr(16, 32));
    if (!expected_sha256.empty() && expected_sha256 != out.source_sha256) return "compiled tokenizer belongs to another tokenizer.json";
    if (n_sections > 1024 || kHeaderSize + n_sections * sizeof(SectionEntry) > data.size()) return "compiled tokenizer section table is malformed";
    std::vector<SectionEntry> table(n_sections);
    std::memcpy(table.data(), data.data() + kHeaderSize, n_sections * sizeof(SectionEntry));
    std::vector<std::string_view> by_kind[kBlob + 1], blobs;
    for (const SectionEntry& entry : table) {
        if (entry.offset % 8 || entry.offset > data.size() || entry.size > data.size() - entry.offset || entry.kind == 0 || entry.kind > kBlob) {
            return "compiled tokenizer section is out of bounds";
        }
        by_kind[entry.kind].push_back(data.substr(entry.offset, entry.size));
    }
    for (uint32_t kind = kConfig; kind < kBlob; ++kind) {
        if (by_kind[kind].size() != 1) return "compiled tokenizer lacks a section";
    }
    blobs = by_kind[kBlob];

    Reader config(by_kind[kConfig][0]);
    const uint32_t n = config.u32();
    const int32_t unk_id = config.i32();
    const double unk_score = config.f64();
    out.pad_id = config.i32();
    out.vocab_size = config.i64();
    if (out.vocab_size < 0 || out.vocab_size > (int64_t{1} << 26)) return "compiled tokenizer config is malformed";
    for (auto* ids : {&out.pipeline.prefix_ids, &out.pipeline.suffix_ids}) {
        uint32_t count = config.u32();
        if (!config.ok() || count > 64) return "compiled tokenizer config is malformed";
        ids->resize(count);
        for (int32_t& id : *ids) id = config.i32();
    }
    uint32_t n_steps = config.u32();
    for (uint32_t i = 0; i < n_steps && config.ok(); ++i) {
        NormalizerStep step;
        step.kind = static_cast<NormalizerStep::Kind>(config.u32());
        switch (step.kind) {
            case NormalizerStep::kPrecompiled: {
                uint32_t blob = config.u32();
                if (blob >= blobs.size()) return "compiled tokenizer config names a missing charsmap";
                std::string error = step.charsmap.load(blobs[blob]);
                if (!error.empty()) return error;
                break;
            }
            case NormalizerStep::kStrip:
                step.strip_left = config.u32() != 0;
                step.strip_right = config.u32() != 0;
                break;
            case NormalizerStep::kReplaceLiteral:
            case NormalizerStep::kReplaceRun:
                step.pattern = std::string(config.str());
                step.run_min = config.u32();
                step.run_max = config.u32();
                step.content = std::string(config.str());
                if (step.pattern.empty() || step.run_min == 0) return "compiled tokenizer has an empty Replace pattern";
                break;
            default:
                return "compiled tokenizer config has an unknown normaliser";
        }
        out.pipeline.normalizer.add(std::move(step));
    }
    n_steps = config.u32();
    for (uint32_t i = 0; i < n_steps && config.ok(); ++i) {
        PreTokenizerStep step;
        step.kind = static_cast<PreTokenizerStep::Kind>(config.u32());
        step.replacement = std::string(config.str());
        step.scheme = static_cast<PreTokenizerStep::Scheme>(config.u32());
        step.split = config.u32() != 0;
        if (step.kind != PreTokenizerStep::kMetaspace && step.kind != PreTokenizerStep::kWhitespaceSplit) {
            return "compiled tokenizer config has an unknown pre-tokenizer";
        }
        out.pipeline.pre_tokenizer.add(std::move(step));
    }
    uint32_t n_added = config.u32();
    for (uint32_t i = 0; i < n_added && config.ok(); ++i) {
        AddedToken token;
        token.content = std::string(config.str());
        token.id = config.i32();
        uint32_t flags = config.u32();
        token.lstrip = flags & 1;
        token.rstrip = (flags >> 1) & 1;
        token.normalized = (flags >> 2) & 1;
        if (token.content.empty()) return "compiled tokenizer has an empty added token";
        out.pipeline.added_tokens.add(token);
        out.added_tokens.push_back(std::move(token));
    }
    if (!config.ok()) return "compiled tokenizer config is truncated";

    std::string_view offsets = by_kind[kPieceOffsets][0], bytes = by_kind[kPieceBytes][0], trie = by_kind[kTrie][0];
    if (offsets.size() != (static_cast<size_t>(n) + 1) * 4 || trie.size() % sizeof(DoubleArrayUnit)) {
        return "compiled tokenizer arrays have inconsistent sizes";
    }
    const DoubleArray units(reinterpret_cast<const DoubleArrayUnit*>(trie.data()), trie.size() / sizeof(DoubleArrayUnit));
    if (!units.valid(n)) return "compiled tokenizer trie is corrupt";
    out.piece_offsets = reinterpret_cast<const uint32_t*>(offsets.data());
    out.piece_bytes = bytes.data();
    out.piece_bytes_size = bytes.size();
    out.n_pieces = n;
    out.pipeline.model = UnigramModel(units, unk_id, unk_score);
    return {};
}

}  // namespace seatok
