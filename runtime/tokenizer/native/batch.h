// One call's batch: Python strings in, ids out. Encoding runs without the GIL (str objects are
// immutable and the batch holds references); the conversions to Python objects need it.
#pragma once
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline.h"
#include "thread_pool.h"

namespace seatok {

struct TextError {
    Py_ssize_t char_index = -1;  // position of a lone surrogate
    uint32_t code_point = 0;
};

struct BatchItem {
    EncodeResult::Status status = EncodeResult::kOk;
    bool truncated = false;
    bool exact = true;
    int64_t n_tokens = 0;
    TextError text_error;
    bool failed = false;  // out of memory inside the core
    uint32_t worker = 0;  // the ids are arenas[worker][offset, offset + length)
    size_t offset = 0, length = 0;
};

// What one thread needs to encode a share of a batch: its scratch and the arena its ids go to.
// Cache-line aligned: neighbouring workers live side by side in one vector, and one thread's
// writes to its arena must not invalidate the line holding the next one's scratch.
struct alignas(64) Worker {
    Scratch scratch;
    EncodeResult result;
    std::vector<int32_t> arena;
};

struct Batch {
    const std::vector<PyObject*>& texts;
    std::string_view prompt;
    EncodeOptions options;
    std::vector<BatchItem> items;
    std::vector<Worker>* workers;  // kept by the Core between calls, so warm buffers are reused

    const int32_t* ids(const BatchItem& item) const { return (*workers)[item.worker].arena.data() + item.offset; }
};

// Encodes every item, on `pool` when given (the caller is one of its threads), else serially.
void encode_batch(Batch& batch, const Pipeline& pipeline, ThreadPool* pool);

// list[list[int]] of the batch's ids. int_objects caches one Python int per id (filled on first
// use, owned by the caller): rows then share them instead of allocating an int per token.
PyObject* ids_lists(const Batch& batch, std::vector<PyObject*>& int_objects);
// (input_ids, attention_mask, rows, width): two bytearrays of row-major int64, right-padded.
PyObject* padded_arrays(const Batch& batch, int32_t pad_id);

}  // namespace seatok
