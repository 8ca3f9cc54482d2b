// The `_native` module: `Core`, a compiled tokenizer loaded from its binary form, encodes batches
// with the GIL released on a pool of threads it owns; `compile` (compile_binding.cc) builds that
// binary form from what compiled_form.py extracts of a tokenizer.json.
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

#include "batch.h"
#include "bindings.h"
#include "compiled_format.h"

#ifndef SEATOK_SOURCE_HASH
#define SEATOK_SOURCE_HASH "unknown"
#endif

namespace {

using namespace seatok;

// Below this many characters in a batch, waking the pool costs more than it saves.
constexpr Py_ssize_t kParallelMinChars = 2048;

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
    std::vector<PyObject*>* int_objects;  // one Python int per id, made on first use; GIL-guarded
};

void Core_dealloc(CoreObject* self) {
    // A pool inherited through fork() has no threads behind it: leave it, never join it.
    if (self->pool && self->pool_pid == static_cast<long>(seatok_getpid())) delete self->pool;
    delete self->pool_mutex;
    delete self->pool_workers;
    delete self->serial_mutex;
    delete self->serial_workers;
    if (self->int_objects) {
        for (PyObject* value : *self->int_objects) Py_XDECREF(value);
        delete self->int_objects;
    }
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
    self->int_objects = new std::vector<PyObject*>();
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

// The Core's pool, created on first use, again after threads changed, and again in a child
// after fork() (the parent's threads do not exist there).
ThreadPool* pool_of(CoreObject* self) {
    const long pid = static_cast<long>(seatok_getpid());
    if (!self->pool || self->pool_pid != pid || self->pool->size() != self->threads) {
        if (self->pool && self->pool_pid == pid) delete self->pool;  // a forked child's copy is abandoned
        self->pool = new ThreadPool(self->threads);
        self->pool_pid = pid;
    }
    return self->pool;
}

PyObject* error_tuple(Py_ssize_t index, const char* kind, PyObject* a, PyObject* b) {
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return nullptr;
    }
    return Py_BuildValue("(OO(nsNN))", Py_None, Py_None, index, kind, a, b);
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
        ThreadPool* pool = pool_of(self);
        batch.workers = self->pool_workers;
        batch.workers->resize(static_cast<size_t>(pool->size()));
        encode_batch(batch, self->compiled->pipeline, pool);
    } else {  // one thread: the Core's warm buffers when free, else this call's own
        if (serial_lock.try_lock()) {
            batch.workers = self->serial_workers;
        } else {
            own_workers.resize(1);
            batch.workers = &own_workers;
        }
        encode_batch(batch, self->compiled->pipeline, nullptr);
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
    if (!padded && self->int_objects->empty()) self->int_objects->assign(static_cast<size_t>(std::max<int64_t>(0, self->compiled->vocab_size)), nullptr);
    PyObject* ids = padded ? padded_arrays(batch, self->compiled->pad_id) : ids_lists(batch, *self->int_objects);
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

PyMethodDef module_methods[] = {
    {"compile", compile_tokenizer, METH_VARARGS, "Build the compact binary form of a validated tokenizer description."},
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
