#include "batch.h"

#include <algorithm>
#include <atomic>

#include "utf8.h"

namespace seatok {
namespace {

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

}  // namespace

void encode_batch(Batch& batch, const Pipeline& pipeline, ThreadPool* pool) {
    for (Worker& worker : *batch.workers) worker.arena.clear();
    const size_t n = batch.items.size();
    if (pool == nullptr) {
        for (size_t i = 0; i < n; ++i) encode_item(pipeline, batch, i, 0);
        return;
    }
    // Texts are handed out in small chunks: lengths vary, so fixed shares would leave a thread idle.
    const size_t chunk = std::clamp<size_t>(n / (static_cast<size_t>(pool->size()) * 64), 1, 16);
    std::atomic<size_t> next{0};
    pool->run([&](int worker) {
        for (;;) {
            const size_t begin = next.fetch_add(chunk);
            if (begin >= n) return;
            for (size_t i = begin; i < std::min(n, begin + chunk); ++i) encode_item(pipeline, batch, i, static_cast<uint32_t>(worker));
        }
    });
}

PyObject* ids_lists(const Batch& batch, std::vector<PyObject*>& int_objects) {
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
            const int32_t id = ids[j];
            const bool cacheable = id >= 0 && static_cast<size_t>(id) < int_objects.size();
            PyObject* value = cacheable ? int_objects[static_cast<size_t>(id)] : nullptr;
            if (value) {
                Py_INCREF(value);
            } else {
                value = PyLong_FromLong(id);
                if (!value) {
                    Py_DECREF(row);
                    Py_DECREF(out);
                    return nullptr;
                }
                if (cacheable) {
                    Py_INCREF(value);
                    int_objects[static_cast<size_t>(id)] = value;
                }
            }
            PyList_SET_ITEM(row, static_cast<Py_ssize_t>(j), value);
        }
        PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), row);
    }
    return out;
}

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

}  // namespace seatok
