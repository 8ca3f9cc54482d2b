// CPython binding of the compiled tokenizer: `_native.compile(...)` builds the compact binary
// form from what tokenizer_native.py extracts of a tokenizer.json, and `_native.Core` encodes
// batches from it with the GIL released, on a pool of threads the Core owns.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#ifdef _WIN32
#include <process.h>
#define seatok_getpid _getpid
#else
#include <unistd.h>
#define seatok_getpid getpid
#endif

#include "compiled_format.h"
#include "pipeline.h"
#include "thread_pool.h"
#include "utf8.h"

#ifndef SEATOK_SOURCE_HASH
#define SEATOK_SOURCE_HASH "unknown"
#endif

namespace {

using namespace seatok;

// Below this many characters in a batch, waking the pool costs more than it saves.
constexpr Py_ssize_t kParallelMinChars = 2048;

// ---- text conversion (no GIL needed: str objects are immutable and we hold references) ----

struct TextError {
    Py_ssize_t char_index = -1;  // position of a lone surrogate
    uint32_t code_point = 0;
};

bool append_utf8_of(PyObject* text, std::string& out, TextError& error) {
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void* data = PyUnicode_DATA(text);
    if (PyUnicode_IS_ASCII(text)) {
        out.append(static_cast<const char*>(data), static_cast<size_t>(n));
        return true;
    }
    const int kind = PyUnicode_KIND(text);
    out.reserve(out.size() + static_cast<size_t>(n) * (kind == PyUnicode_1BYTE_KIND ? 2 : 4));
    for (Py_ssize_t i = 0; i < n; ++i) {
        char32_t cp = PyUnicode_READ(kind, data, i);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            error.char_index = i;
            error.code_point = cp;
            return false;
        }
        append_utf8(out, cp);
    }
    return true;
}

// ---- Core ----

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
struct Worker {
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

void encode_item(const Pipeline& pipeline, Batch& batch, size_t i, uint32_t worker_index) {
    Worker& worker = (*batch.workers)[worker_index];
    BatchItem& item = batch.items[i];
    try {
        worker.scratch.text.assign(batch.prompt);
        if (!append_utf8_of(batch.texts[i], worker.scratch.text, item.text_error)) return;
        pipeline.encode(worker.scratch.text, batch.options, worker.result, worker.scratch);
        item.status = worker.result.status;
        item.truncated = worker.result.truncated;
        item.exact = worker.result.exact;
        item.n_tokens = worker.result.n_tokens;
        item.worker = worker_index;
        item.offset = worker.arena.size();
        item.length = worker.result.ids.size();
        worker.arena.insert(worker.arena.end(), worker.result.ids.begin(), worker.result.ids.end());
    } catch (const std::exception&) {
        item.failed = true;
    }
}

struct CoreObject {
    PyObject_HEAD
    Py_buffer view;
    bool has_view;
    CompiledTokenizer* compiled;
    int threads;
    std::mutex* pool_mutex;
    ThreadPool* pool;
    long pool_pid;
    std::vector<Worker>* pool_workers;  // guarded by pool_mutex
    std::mutex* serial_mutex;
    std::vector<Worker>* serial_workers;  // guarded by serial_mutex
};

void Core_dealloc(CoreObject* self) {
    // A pool inherited through fork() has no threads behind it: leave it, never join it.
    if (self->pool && self->pool_pid == static_cast<long>(seatok_getpid())) delete self->pool;
    delete self->pool_mutex;
    delete self->pool_workers;
    delete self->serial_mutex;
    delete self->serial_workers;
    delete self->compiled;
    if (self->has_view) PyBuffer_Release(&self->view);
    Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

PyObject* Core_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"buffer", "threads", "expected_sha256", nullptr};
    PyObject* buffer;
    int threads;
    const char* sha = "";
    Py_ssize_t sha_len = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oi|y#", const_cast<char**>(keywords), &buffer, &threads, &sha, &sha_len)) {
        return nullptr;
    }
    auto* self = reinterpret_cast<CoreObject*>(type->tp_alloc(type, 0));
    if (!self) return nullptr;
    self->has_view = false;
    self->compiled = nullptr;
    self->pool = nullptr;
    self->pool_mutex = new std::mutex();
    self->pool_workers = new std::vector<Worker>();
    self->serial_mutex = new std::mutex();
    self->serial_workers = new std::vector<Worker>(1);
    self->threads = std::max(1, threads);
    if (PyObject_GetBuffer(buffer, &self->view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(self);
        return nullptr;
    }
    self->has_view = true;
    self->compiled = new CompiledTokenizer();
    std::string error = load_compiled(std::string_view(static_cast<const char*>(self->view.buf), static_cast<size_t>(self->view.len)),
                                      std::string_view(sha, static_cast<size_t>(sha_len)), *self->compiled);
    if (!error.empty()) {
        PyErr_SetString(PyExc_ValueError, error.c_str());
        Py_DECREF(self);
        return nullptr;
    }
    return reinterpret_cast<PyObject*>(self);
}

void encode_parallel(CoreObject* self, Batch& batch) {
    const Pipeline& pipeline = self->compiled->pipeline;
    const long pid = static_cast<long>(seatok_getpid());
    if (!self->pool || self->pool_pid != pid || self->pool->size() != self->threads) {
        if (self->pool && self->pool_pid == pid) delete self->pool;  // a forked child's copy is abandoned
        self->pool = new ThreadPool(self->threads);
        self->pool_pid = pid;
    }
    const size_t n = batch.items.size();
    const size_t chunk = std::clamp<size_t>(n / (static_cast<size_t>(self->pool->size()) * 16), 1, 64);
    std::atomic<size_t> next{0};
    batch.workers = self->pool_workers;
    batch.workers->resize(static_cast<size_t>(self->pool->size()));
    for (Worker& worker : *batch.workers) worker.arena.clear();
    self->pool->run([&](int worker) {
        for (;;) {
            const size_t begin = next.fetch_add(chunk);
            if (begin >= n) return;
            for (size_t i = begin; i < std::min(n, begin + chunk); ++i) encode_item(pipeline, batch, i, static_cast<uint32_t>(worker));
        }
    });
}

void encode_serial(Batch& batch, const Pipeline& pipeline) {
    (*batch.workers)[0].arena.clear();
    for (size_t i = 0; i < batch.items.size(); ++i) encode_item(pipeline, batch, i, 0);
}

PyObject* error_tuple(Py_ssize_t index, const char* kind, PyObject* a, PyObject* b) {
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return nullptr;
    }
    return Py_BuildValue("(OO(nsNN))", Py_None, Py_None, index, kind, a, b);
}

PyObject* ids_lists(const Batch& batch) {
    PyObject* out = PyList_New(static_cast<Py_ssize_t>(batch.items.size()));
    if (!out) return nullptr;
    for (size_t i = 0; i < batch.items.size(); ++i) {
        const BatchItem& item = batch.items[i];
        const int32_t* ids = batch.ids(item);
        PyObject* row = PyList_New(static_cast<Py_ssize_t>(item.length));
        if (!row) {
            Py_DECREF(out);
            return nullptr;
        }
        for (size_t j = 0; j < item.length; ++j) {
            PyObject* value = PyLong_FromLong(ids[j]);
            if (!value) {
                Py_DECREF(row);
                Py_DECREF(out);
                return nullptr;
            }
            PyList_SET_ITEM(row, static_cast<Py_ssize_t>(j), value);
        }
        PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), row);
    }
    return out;
}

// (input_ids, attention_mask, rows, width): two bytearrays of row-major int64, right-padded.
PyObject* padded_arrays(const Batch& batch, int32_t pad_id) {
    size_t width = 0;
    for (const BatchItem& item : batch.items) width = std::max(width, item.length);
    const size_t rows = batch.items.size();
    PyObject* ids_buffer = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(rows * width * 8));
    PyObject* mask_buffer = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(rows * width * 8));
    if (!ids_buffer || !mask_buffer) {
        Py_XDECREF(ids_buffer);
        Py_XDECREF(mask_buffer);
        return nullptr;
    }
    auto* ids = reinterpret_cast<int64_t*>(PyByteArray_AS_STRING(ids_buffer));
    auto* mask = reinterpret_cast<int64_t*>(PyByteArray_AS_STRING(mask_buffer));
    for (size_t row = 0; row < rows; ++row) {
        const BatchItem& item = batch.items[row];
        const int32_t* source = batch.ids(item);
        int64_t* id_row = ids + row * width;
        int64_t* mask_row = mask + row * width;
        for (size_t j = 0; j < width; ++j) {
            const bool real = j < item.length;
            id_row[j] = real ? source[j] : pad_id;
            mask_row[j] = real;
        }
    }
    return Py_BuildValue("(NNnn)", ids_buffer, mask_buffer, static_cast<Py_ssize_t>(rows), static_cast<Py_ssize_t>(width));
}

// encode(texts, prompt, max_tokens, truncate, keep_end, add_special_tokens, padded)
//   -> (ids, truncated_indices, None), or (None, None, (index, kind, detail, detail)) for the
//      first input that cannot be encoded: kind "type", "surrogate" or "too_long".
PyObject* Core_encode(CoreObject* self, PyObject* args) {
    PyObject* texts;
    const char* prompt;
    Py_ssize_t prompt_len, max_tokens;
    int truncate, keep_end, add_special, padded;
    if (!PyArg_ParseTuple(args, "Os#npppp", &texts, &prompt, &prompt_len, &max_tokens, &truncate, &keep_end, &add_special, &padded)) {
        return nullptr;
    }
    const Pipeline& pipeline = self->compiled->pipeline;
    if (max_tokens <= static_cast<Py_ssize_t>(pipeline.prefix_ids.size() + pipeline.suffix_ids.size())) {
        PyErr_Format(PyExc_ValueError, "max_tokens=%zd leaves no room for text between the special tokens", max_tokens);
        return nullptr;
    }
    PyObject* sequence = PySequence_Fast(texts, "texts must be a list or tuple of str");
    if (!sequence) return nullptr;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    PyObject** objects = PySequence_Fast_ITEMS(sequence);
    std::vector<PyObject*> strings;  // owned references: the caller's list may change meanwhile
    strings.reserve(static_cast<size_t>(n));
    Py_ssize_t total_chars = 0;
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* text = objects[i];
        if (!PyUnicode_Check(text)) break;
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(text) < 0) break;
#endif
        Py_INCREF(text);
        strings.push_back(text);
        total_chars += PyUnicode_GET_LENGTH(text);
    }
    PyErr_Clear();
    PyObject* first_non_str = static_cast<Py_ssize_t>(strings.size()) < n ? objects[strings.size()] : nullptr;
    Py_XINCREF(first_non_str);
    Py_DECREF(sequence);

    Batch batch{strings, std::string_view(prompt, static_cast<size_t>(prompt_len)), EncodeOptions(), {}, nullptr};
    batch.options.max_tokens = static_cast<size_t>(max_tokens);
    batch.options.truncate = truncate;
    batch.options.keep_end = keep_end;
    batch.options.add_special_tokens = add_special;
    batch.items.resize(strings.size());
    // The locks are held until the output is built: it reads the workers' arenas.
    std::unique_lock<std::mutex> pool_lock(*self->pool_mutex, std::defer_lock);
    std::unique_lock<std::mutex> serial_lock(*self->serial_mutex, std::defer_lock);
    std::vector<Worker> own_workers;
    Py_BEGIN_ALLOW_THREADS
    if (self->threads > 1 && strings.size() > 1 && total_chars >= kParallelMinChars && pool_lock.try_lock()) {
        encode_parallel(self, batch);
    } else {  // one thread: the Core's warm buffers when free, else this call's own
        if (serial_lock.try_lock()) {
            batch.workers = self->serial_workers;
        } else {
            own_workers.resize(1);
            batch.workers = &own_workers;
        }
        encode_serial(batch, self->compiled->pipeline);
    }
    Py_END_ALLOW_THREADS
    for (PyObject* text : strings) Py_DECREF(text);

    PyObject* result = nullptr;
    for (size_t i = 0; i < batch.items.size() && !result; ++i) {
        const BatchItem& item = batch.items[i];
        const auto index = static_cast<Py_ssize_t>(i);
        if (item.failed) {
            Py_XDECREF(first_non_str);
            return PyErr_NoMemory();
        }
        if (item.text_error.char_index >= 0) {
            result = error_tuple(index, "surrogate", PyLong_FromUnsignedLong(item.text_error.code_point), PyLong_FromSsize_t(item.text_error.char_index));
        } else if (item.status == EncodeResult::kTooLong) {
            result = error_tuple(index, "too_long", PyLong_FromLongLong(item.n_tokens), PyBool_FromLong(item.exact));
        }
    }
    if (!result && first_non_str) {
        result = error_tuple(static_cast<Py_ssize_t>(batch.items.size()), "type", PyUnicode_FromString(Py_TYPE(first_non_str)->tp_name), (Py_INCREF(Py_None), Py_None));
    }
    Py_XDECREF(first_non_str);
    if (result) return result;

    PyObject* truncated = PyList_New(0);
    if (!truncated) return nullptr;
    for (size_t i = 0; i < batch.items.size(); ++i) {
        if (!batch.items[i].truncated) continue;
        PyObject* index = PyLong_FromSize_t(i);
        if (!index || PyList_Append(truncated, index) < 0) {
            Py_XDECREF(index);
            Py_DECREF(truncated);
            return nullptr;
        }
        Py_DECREF(index);
    }
    // Thousands of new lists would trigger the cyclic GC again and again; they cannot form cycles.
    const int gc_was_enabled = PyGC_Disable();
    PyObject* ids = padded ? padded_arrays(batch, self->compiled->pad_id) : ids_lists(batch);
    if (gc_was_enabled) PyGC_Enable();
    if (!ids) {
        Py_DECREF(truncated);
        return nullptr;
    }
    return Py_BuildValue("(NNO)", ids, truncated, Py_None);
}

// count(text) -> number of content ids (no special tokens, no truncation); text must be valid.
PyObject* Core_count(CoreObject* self, PyObject* arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "count takes a str");
        return nullptr;
    }
    Py_ssize_t size;
    const char* utf8 = PyUnicode_AsUTF8AndSize(arg, &size);
    if (!utf8) return nullptr;
    std::vector<int32_t> ids;
    Py_BEGIN_ALLOW_THREADS
    Scratch scratch;
    self->compiled->pipeline.content_ids(std::string_view(utf8, static_cast<size_t>(size)), ids, scratch);
    Py_END_ALLOW_THREADS
    return PyLong_FromSize_t(ids.size());
}

// piece(id) -> the vocabulary piece with this id, or None (unknown id, or a duplicate piece
// whose text resolves to a later id).
PyObject* Core_piece(CoreObject* self, PyObject* arg) {
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) return nullptr;
    if (id < 0) Py_RETURN_NONE;
    std::string_view piece = self->compiled->piece(static_cast<size_t>(id));
    if (piece.empty() || self->compiled->pipeline.model.trie().find(piece) != id) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(piece.data(), static_cast<Py_ssize_t>(piece.size()), "strict");
}

PyObject* int_list(const std::vector<int32_t>& values) {
    PyObject* out = PyList_New(static_cast<Py_ssize_t>(values.size()));
    if (!out) return nullptr;
    for (size_t i = 0; i < values.size(); ++i) PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), PyLong_FromLong(values[i]));
    return out;
}

PyObject* Core_info(CoreObject* self, PyObject*) {
    const CompiledTokenizer& compiled = *self->compiled;
    PyObject* added = PyList_New(0);
    if (!added) return nullptr;
    for (const AddedToken& token : compiled.added_tokens) {
        PyObject* entry = Py_BuildValue("(s#i)", token.content.data(), static_cast<Py_ssize_t>(token.content.size()), token.id);
        if (!entry || PyList_Append(added, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(added);
            return nullptr;
        }
        Py_DECREF(entry);
    }
    return Py_BuildValue("{s:N,s:N,s:i,s:L,s:N,s:y#}", "prefix_ids", int_list(compiled.pipeline.prefix_ids), "suffix_ids",
                         int_list(compiled.pipeline.suffix_ids), "pad_id", compiled.pad_id, "vocab_size",
                         static_cast<long long>(compiled.vocab_size), "added_tokens", added, "source_sha256",
                         compiled.source_sha256.data(), static_cast<Py_ssize_t>(compiled.source_sha256.size()));
}

PyObject* Core_get_threads(CoreObject* self, void*) { return PyLong_FromLong(self->threads); }

int Core_set_threads(CoreObject* self, PyObject* value, void*) {
    long threads = value ? PyLong_AsLong(value) : -1;
    if (threads == -1 && PyErr_Occurred()) return -1;
    if (threads < 1 || threads > 1024) {
        PyErr_Format(PyExc_ValueError, "threads must be between 1 and 1024, got %ld", threads);
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    std::lock_guard<std::mutex> lock(*self->pool_mutex);  // waits for a running batch
    self->threads = static_cast<int>(threads);
    Py_END_ALLOW_THREADS
    return 0;
}

PyMethodDef Core_methods[] = {
    {"encode", reinterpret_cast<PyCFunction>(Core_encode), METH_VARARGS, "Encode a batch with the GIL released."},
    {"count", reinterpret_cast<PyCFunction>(Core_count), METH_O, "Content tokens of one text."},
    {"piece", reinterpret_cast<PyCFunction>(Core_piece), METH_O, "The vocabulary piece of an id, or None."},
    {"info", reinterpret_cast<PyCFunction>(Core_info), METH_NOARGS, "Special ids, pad id, vocabulary size, added tokens."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef Core_getset[] = {
    {"threads", reinterpret_cast<getter>(Core_get_threads), reinterpret_cast<setter>(Core_set_threads), "Threads a batch may use.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyTypeObject CoreType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// ---- compile ----

bool parse_int_list(PyObject* list, std::vector<int32_t>& out) {
    PyObject* sequence = PySequence_Fast(list, "expected a list of ints");
    if (!sequence) return false;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); ++i) {
        long value = PyLong_AsLong(PySequence_Fast_GET_ITEM(sequence, i));
        if (value == -1 && PyErr_Occurred()) {
            Py_DECREF(sequence);
            return false;
        }
        out.push_back(static_cast<int32_t>(value));
    }
    Py_DECREF(sequence);
    return true;
}

bool parse_normalizer(PyObject* spec, NormalizerStep& step) {
    const char* kind = PyUnicode_Check(PyTuple_GET_ITEM(spec, 0)) ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0)) : nullptr;
    if (!kind) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a step starts with its kind, a str");
        return false;
    }
    std::string name(kind);
    const char *a = nullptr, *b = nullptr;
    Py_ssize_t a_len = 0, b_len = 0;
    int left = 0, right = 0;
    unsigned int run_min = 1, run_max = 0;
    if (name == "precompiled") {
        if (!PyArg_ParseTuple(spec, "sy#", &kind, &a, &a_len)) return false;
        step.kind = NormalizerStep::kPrecompiled;
        step.pattern.assign(a, static_cast<size_t>(a_len));
    } else if (name == "strip") {
        if (!PyArg_ParseTuple(spec, "spp", &kind, &left, &right)) return false;
        step.kind = NormalizerStep::kStrip;
        step.strip_left = left;
        step.strip_right = right;
    } else if (name == "replace_literal") {
        if (!PyArg_ParseTuple(spec, "ss#s#", &kind, &a, &a_len, &b, &b_len)) return false;
        step.kind = NormalizerStep::kReplaceLiteral;
        step.pattern.assign(a, static_cast<size_t>(a_len));
        step.content.assign(b, static_cast<size_t>(b_len));
    } else if (name == "replace_run") {
        if (!PyArg_ParseTuple(spec, "ss#IIs#", &kind, &a, &a_len, &run_min, &run_max, &b, &b_len)) return false;
        step.kind = NormalizerStep::kReplaceRun;
        step.pattern.assign(a, static_cast<size_t>(a_len));
        step.run_min = run_min;
        step.run_max = run_max;
        step.content.assign(b, static_cast<size_t>(b_len));
    } else {
        PyErr_Format(PyExc_ValueError, "unknown normaliser step %s", kind);
        return false;
    }
    if ((step.kind == NormalizerStep::kReplaceLiteral || step.kind == NormalizerStep::kReplaceRun) && (step.pattern.empty() || step.run_min == 0)) {
        PyErr_SetString(PyExc_ValueError, "a Replace step needs a non-empty pattern and a minimum run of at least 1");
        return false;
    }
    return true;
}

bool parse_pre_tokenizer(PyObject* spec, PreTokenizerStep& step) {
    const char* kind = PyUnicode_Check(PyTuple_GET_ITEM(spec, 0)) ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0)) : nullptr;
    if (!kind) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a step starts with its kind, a str");
        return false;
    }
    std::string name(kind);
    if (name == "metaspace") {
        const char* replacement;
        Py_ssize_t length;
        unsigned int scheme;
        int split;
        if (!PyArg_ParseTuple(spec, "ss#Ip", &kind, &replacement, &length, &scheme, &split)) return false;
        if (scheme > PreTokenizerStep::kNever) {
            PyErr_Format(PyExc_ValueError, "unknown Metaspace scheme %u", scheme);
            return false;
        }
        step.kind = PreTokenizerStep::kMetaspace;
        step.replacement.assign(replacement, static_cast<size_t>(length));
        step.scheme = static_cast<PreTokenizerStep::Scheme>(scheme);
        step.split = split;
    } else if (name == "whitespace_split") {
        step.kind = PreTokenizerStep::kWhitespaceSplit;
    } else {
        PyErr_Format(PyExc_ValueError, "unknown pre-tokenizer step %s", kind);
        return false;
    }
    return true;
}

template <typename Step, typename Parse>
bool parse_steps(PyObject* list, std::vector<Step>& out, Parse parse) {
    PyObject* sequence = PySequence_Fast(list, "expected a list of tuples");
    if (!sequence) return false;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(sequence); ++i) {
        PyObject* spec = PySequence_Fast_GET_ITEM(sequence, i);
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) == 0) {
            PyErr_SetString(PyExc_TypeError, "each step is a non-empty tuple");
            Py_DECREF(sequence);
            return false;
        }
        Step step;
        if (!parse(spec, step)) {
            Py_DECREF(sequence);
            return false;
        }
        out.push_back(std::move(step));
    }
    Py_DECREF(sequence);
    return true;
}

// compile(pieces, scores, unk_id, normalizers, pre_tokenizers, added_tokens, prefix_ids,
//         suffix_ids, pad_id, vocab_size, source_sha256) -> bytes
PyObject* native_compile(PyObject*, PyObject* args) {
    PyObject *pieces, *scores, *normalizers, *pre_tokenizers, *added, *prefix, *suffix;
    int unk_id, pad_id;
    long long vocab_size;
    const char* sha;
    Py_ssize_t sha_len;
    if (!PyArg_ParseTuple(args, "OOiOOOOOiLy#", &pieces, &scores, &unk_id, &normalizers, &pre_tokenizers, &added, &prefix, &suffix,
                          &pad_id, &vocab_size, &sha, &sha_len)) {
        return nullptr;
    }
    CompileInput input;
    input.unk_id = unk_id;
    input.pad_id = pad_id;
    input.vocab_size = vocab_size;
    input.source_sha256.assign(sha, static_cast<size_t>(sha_len));
    PyObject* piece_seq = PySequence_Fast(pieces, "pieces must be a list of str");
    PyObject* score_seq = piece_seq ? PySequence_Fast(scores, "scores must be a list of float") : nullptr;
    if (!score_seq) {
        Py_XDECREF(piece_seq);
        return nullptr;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(piece_seq);
    bool ok = n == PySequence_Fast_GET_SIZE(score_seq);
    if (!ok) PyErr_SetString(PyExc_ValueError, "pieces and scores differ in length");
    input.pieces.resize(static_cast<size_t>(ok ? n : 0));
    input.scores.resize(static_cast<size_t>(ok ? n : 0));
    for (Py_ssize_t i = 0; ok && i < n; ++i) {
        Py_ssize_t size;
        const char* utf8 = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(piece_seq, i), &size);
        if (utf8) {
            input.pieces[static_cast<size_t>(i)].assign(utf8, static_cast<size_t>(size));
        } else if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();  // a piece with a lone surrogate can never match valid text
        } else {
            ok = false;
        }
        double score = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(score_seq, i));
        if (score == -1.0 && PyErr_Occurred()) ok = false;
        input.scores[static_cast<size_t>(i)] = score;
    }
    Py_DECREF(piece_seq);
    Py_DECREF(score_seq);
    if (!ok || !parse_steps(normalizers, input.normalizers, parse_normalizer) ||
        !parse_steps(pre_tokenizers, input.pre_tokenizers, parse_pre_tokenizer) || !parse_int_list(prefix, input.prefix_ids) ||
        !parse_int_list(suffix, input.suffix_ids)) {
        return nullptr;
    }
    PyObject* added_seq = PySequence_Fast(added, "added_tokens must be a list of tuples");
    if (!added_seq) return nullptr;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(added_seq); ++i) {
        const char* content;
        Py_ssize_t length;
        int id, lstrip, rstrip, normalized;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(added_seq, i), "s#ippp", &content, &length, &id, &lstrip, &rstrip, &normalized)) {
            Py_DECREF(added_seq);
            return nullptr;
        }
        if (length == 0) {
            Py_DECREF(added_seq);
            PyErr_Format(PyExc_ValueError, "added token %d has empty content", id);
            return nullptr;
        }
        input.added_tokens.push_back({std::string(content, static_cast<size_t>(length)), id, lstrip != 0, rstrip != 0, normalized != 0});
    }
    Py_DECREF(added_seq);
    std::string compiled;
    Py_BEGIN_ALLOW_THREADS
    compiled = write_compiled(input);
    Py_END_ALLOW_THREADS
    return PyBytes_FromStringAndSize(compiled.data(), static_cast<Py_ssize_t>(compiled.size()));
}

PyMethodDef module_methods[] = {
    {"compile", native_compile, METH_VARARGS, "Build the compact binary form of a validated tokenizer description."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_native", "Compiled core of seaembed's tokenizer.", -1, module_methods};

}  // namespace

PyMODINIT_FUNC PyInit__native(void) {
    CoreType.tp_name = "seaembed.runtime.tokenizer._native.Core";
    CoreType.tp_basicsize = sizeof(CoreObject);
    CoreType.tp_flags = Py_TPFLAGS_DEFAULT;
    CoreType.tp_doc = "A compiled tokenizer loaded from its binary form: Core(buffer, threads, expected_sha256=b'').";
    CoreType.tp_new = Core_new;
    CoreType.tp_dealloc = reinterpret_cast<destructor>(Core_dealloc);
    CoreType.tp_methods = Core_methods;
    CoreType.tp_getset = Core_getset;
    if (PyType_Ready(&CoreType) < 0) return nullptr;
    PyObject* module = PyModule_Create(&module_def);
    if (!module) return nullptr;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(module, "Core", reinterpret_cast<PyObject*>(&CoreType)) < 0 ||
        PyModule_AddIntConstant(module, "FORMAT_VERSION", kFormatVersion) < 0 ||
        PyModule_AddStringConstant(module, "SOURCE_HASH", SEATOK_SOURCE_HASH) < 0) {
        Py_DECREF(module);
        return nullptr;
    }
    return module;
}
