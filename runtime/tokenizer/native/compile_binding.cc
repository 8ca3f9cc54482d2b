// `_native.compile(...)`: the Python side's description of a validated tokenizer.json (see
// compiled_form.py) → the compact binary form (compiled_format.h).
#include "bindings.h"

#include <string>
#include <vector>

#include "compiled_format.h"

namespace seatok {
namespace {

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

}  // namespace

// compile(pieces, scores, unk_id, normalizers, pre_tokenizers, added_tokens, prefix_ids,
//         suffix_ids, pad_id, vocab_size, source_sha256) -> bytes
PyObject* compile_tokenizer(PyObject*, PyObject* args) {
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

}  // namespace seatok
