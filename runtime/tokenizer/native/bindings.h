// What module.cc registers from the other binding files.
#pragma once
#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace seatok {

// compile(pieces, scores, unk_id, normalizers, pre_tokenizers, added_tokens, prefix_ids,
//         suffix_ids, pad_id, vocab_size, source_sha256) -> bytes
PyObject* compile_tokenizer(PyObject* self, PyObject* args);

}  // namespace seatok
