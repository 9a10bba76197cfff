// Python binding for the recorder. No ATen headers here (compile time), only
// pybind11 and the plain-types interface in recorder.h.
//
// Also defines ModuleMarker, the module-boundary mechanism: a C callable
// installed as a module instance's `forward` that brackets the original bound
// forward with module_enter/module_exit. It costs ~0.1 us per module call,
// against ~5 us for Python forward hooks (measured in benchmarks/).
#include <algorithm>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "recorder.h"

namespace py = pybind11;
using namespace torchscope;

namespace {

PyObject* g_tensor_type = nullptr;  // torch.Tensor, set from Python
PyObject* g_shape_log = nullptr;    // list receiving (call, inputs, output) or NULL
PyObject* g_shape_attr = nullptr;   // interned "shape"
PyObject* g_failure_log = nullptr;  // list receiving (module_index, inputs, kw) of failed calls

// Tensors -> torch.Size, tuples/lists -> tuple, dicts -> dict, else None.
PyObject* summarize(PyObject* obj, int depth) {
  if (g_tensor_type && PyObject_TypeCheck(obj, reinterpret_cast<PyTypeObject*>(g_tensor_type)))
    return PyObject_GetAttr(obj, g_shape_attr);
  if (depth < 4 && (PyTuple_Check(obj) || PyList_Check(obj))) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
    PyObject** items = PySequence_Fast_ITEMS(obj);
    PyObject* out = PyTuple_New(n);
    if (!out) return nullptr;
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* s = summarize(items[i], depth + 1);
      if (!s) {
        Py_DECREF(out);
        return nullptr;
      }
      PyTuple_SET_ITEM(out, i, s);
    }
    return out;
  }
  if (depth < 4 && PyDict_Check(obj)) {
    PyObject* out = PyDict_New();
    if (!out) return nullptr;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(obj, &pos, &k, &v)) {
      PyObject* s = summarize(v, depth + 1);
      if (!s || PyDict_SetItem(out, k, s) < 0) {
        Py_XDECREF(s);
        Py_DECREF(out);
        return nullptr;
      }
      Py_DECREF(s);
    }
    return out;
  }
  Py_RETURN_NONE;
}

// Appends (call_id, positional_shapes, kw_shapes_or_None, output_shapes_or_None)
// to `log`. Failures here are swallowed: logging must never break the forward.
void log_shapes(PyObject* log, int64_t call, PyObject* const* args, size_t nargs, PyObject* kwnames,
                PyObject* out) {
  PyObject *exc_type, *exc_value, *exc_tb;
  PyErr_Fetch(&exc_type, &exc_value, &exc_tb);  // keep a pending forward error intact
  PyObject* pos = PyTuple_New(static_cast<Py_ssize_t>(nargs));
  PyObject* kw = nullptr;
  PyObject* res = nullptr;
  PyObject* entry = nullptr;
  bool ok = pos != nullptr;
  for (size_t i = 0; ok && i < nargs; ++i) {
    PyObject* s = summarize(args[i], 1);
    if (!s) ok = false;
    else PyTuple_SET_ITEM(pos, i, s);
  }
  if (ok && kwnames && PyTuple_GET_SIZE(kwnames) > 0) {
    kw = PyDict_New();
    Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; ok && kw && i < nk; ++i) {
      PyObject* s = summarize(args[nargs + i], 1);
      if (!s || PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), s) < 0) ok = false;
      Py_XDECREF(s);
    }
    ok = ok && kw;
  }
  if (ok) res = out ? summarize(out, 0) : (Py_INCREF(Py_None), Py_None);
  if (ok && res) {
    PyObject* id = PyLong_FromLongLong(call);
    if (id) entry = PyTuple_Pack(4, id, pos, kw ? kw : Py_None, res);
    Py_XDECREF(id);
    if (entry) PyList_Append(log, entry);
  }
  Py_XDECREF(entry);
  Py_XDECREF(res);
  Py_XDECREF(kw);
  Py_XDECREF(pos);
  PyErr_Clear();
  PyErr_Restore(exc_type, exc_value, exc_tb);
}

struct ModuleMarker {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  PyObject* wrapped;  // the module's original bound forward
  int32_t module_index;
};

PyObject* marker_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  auto* m = reinterpret_cast<ModuleMarker*>(self);
  int64_t call = module_enter(m->module_index);
  PyObject* out = PyObject_Vectorcall(m->wrapped, args, nargsf, kwnames);
  module_exit(call, out == nullptr);
  if (g_shape_log && call >= 0)
    log_shapes(g_shape_log, call, args, PyVectorcall_NARGS(nargsf), kwnames, out);
  // Failed calls are logged even when not recording (warm-up), innermost first,
  // so the error can name the module and the shapes that reached it.
  if (!out && g_failure_log)
    log_shapes(g_failure_log, m->module_index, args, PyVectorcall_NARGS(nargsf), kwnames, nullptr);
  return out;
}

int marker_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<ModuleMarker*>(self)->wrapped);
  return 0;
}

int marker_clear(PyObject* self) {
  Py_CLEAR(reinterpret_cast<ModuleMarker*>(self)->wrapped);
  return 0;
}

void marker_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  marker_clear(self);
  Py_TYPE(self)->tp_free(self);
}

PyObject* marker_get_wrapped(PyObject* self, void*) {
  PyObject* w = reinterpret_cast<ModuleMarker*>(self)->wrapped;
  if (!w) Py_RETURN_NONE;
  Py_INCREF(w);
  return w;
}

PyObject* marker_get_index(PyObject* self, void*) {
  return PyLong_FromLong(reinterpret_cast<ModuleMarker*>(self)->module_index);
}

PyGetSetDef marker_getset[] = {
    // __wrapped__ lets inspect.signature(module.forward) see the real signature.
    {"__wrapped__", marker_get_wrapped, nullptr, nullptr, nullptr},
    {"module_index", marker_get_index, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject ModuleMarkerType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyObject* make_marker(PyObject* wrapped, int32_t module_index) {
  auto* m = PyObject_GC_New(ModuleMarker, &ModuleMarkerType);
  if (!m) return nullptr;
  m->vectorcall = marker_call;
  Py_INCREF(wrapped);
  m->wrapped = wrapped;
  m->module_index = module_index;
  PyObject_GC_Track(reinterpret_cast<PyObject*>(m));
  return reinterpret_cast<PyObject*>(m);
}

PyObject* forward_name() {
  static PyObject* name = PyUnicode_InternFromString("forward");
  return name;
}

// Appends to `previous` what restore needs; returns false with a Python error set.
bool install_one(PyObject* mod, int32_t index, bool skip, PyObject* previous) {
  PyObject** dict_ptr = _PyObject_GetDictPtr(mod);
  if (skip || !dict_ptr || !*dict_ptr) return PyList_Append(previous, Py_Ellipsis) == 0;
  PyObject* prev = PyDict_GetItemWithError(*dict_ptr, forward_name());  // borrowed
  if (!prev && PyErr_Occurred()) return false;
  PyObject* bound = PyObject_GetAttr(mod, forward_name());
  if (!bound) return false;
  PyObject* marker = make_marker(bound, index);
  Py_DECREF(bound);
  if (!marker) return false;
  if (PyList_Append(previous, prev ? prev : Py_None) < 0 ||
      PyDict_SetItem(*dict_ptr, forward_name(), marker) < 0) {
    Py_DECREF(marker);
    return false;
  }
  Py_DECREF(marker);
  return true;
}

// Puts back each module's previous instance-level forward (or removes ours).
void restore_all(PyObject* modules, PyObject* previous) {
  Py_ssize_t n = std::min(PyList_GET_SIZE(modules), PyList_GET_SIZE(previous));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* prev = PyList_GET_ITEM(previous, i);
    if (prev == Py_Ellipsis) continue;
    PyObject** dict_ptr = _PyObject_GetDictPtr(PyList_GET_ITEM(modules, i));
    if (!dict_ptr || !*dict_ptr) continue;
    int rc = prev == Py_None ? PyDict_DelItem(*dict_ptr, forward_name())
                             : PyDict_SetItem(*dict_ptr, forward_name(), prev);
    if (rc < 0) PyErr_Clear();
  }
}

// Points `slot` at a Python list (new reference) or clears it for None.
void set_log(PyObject*& slot, py::object log, const char* what) {
  Py_CLEAR(slot);
  if (log.is_none()) return;
  if (!PyList_Check(log.ptr())) throw py::type_error(std::string(what) + " must be a list or None");
  slot = log.ptr();
  Py_INCREF(slot);
}

template <class T>
py::array_t<T> to_array(std::vector<T>&& v, py::ssize_t cols) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  py::ssize_t n = cols > 0 ? static_cast<py::ssize_t>(heap->size()) / cols : heap->size();
  if (cols > 0) return py::array_t<T>({n, cols}, heap->data(), owner);
  return py::array_t<T>({n}, heap->data(), owner);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "torchscope C++ recorder";

  ModuleMarkerType.tp_name = "torchscope._C.ModuleMarker";
  ModuleMarkerType.tp_basicsize = sizeof(ModuleMarker);
  ModuleMarkerType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
  ModuleMarkerType.tp_vectorcall_offset = offsetof(ModuleMarker, vectorcall);
  ModuleMarkerType.tp_call = PyVectorcall_Call;
  ModuleMarkerType.tp_traverse = marker_traverse;
  ModuleMarkerType.tp_clear = marker_clear;
  ModuleMarkerType.tp_dealloc = marker_dealloc;
  ModuleMarkerType.tp_getset = marker_getset;
  ModuleMarkerType.tp_doc = "Brackets a module's forward with torchscope module marks.";
  if (PyType_Ready(&ModuleMarkerType) < 0) throw py::error_already_set();
  Py_INCREF(&ModuleMarkerType);
  m.attr("ModuleMarker") = py::handle(reinterpret_cast<PyObject*>(&ModuleMarkerType));
  g_shape_attr = PyUnicode_InternFromString("shape");

  m.def("start", [](bool record_shapes, bool record_memory) {
        Options o;
        o.record_shapes = record_shapes;
        o.record_memory = record_memory;
        return start(o);
      }, py::arg("record_shapes") = true, py::arg("record_memory") = true);
  m.def("stop", &stop);
  m.def("active", &active);
  m.def("memory_tracking", &memory_tracking);
  m.def("profiler_state_occupied", &profiler_state_occupied);
  m.def("thread_has_callbacks", &thread_has_callbacks);
  m.def("set_iteration", &set_iteration);
  m.def("module_enter", &module_enter);
  m.def("module_exit", &module_exit);
  m.def("now_ns", &now_ns);
  m.def("built_for_torch", &built_for_torch);

  m.def("marker", [](py::object wrapped, int32_t module_index) {
    PyObject* r = make_marker(wrapped.ptr(), module_index);
    if (!r) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(r);
  });
  // Installs a marker as `forward` in each module's instance dict; returns the
  // previous instance-level forwards (None: there was none; Ellipsis: module
  // skipped) for restore_markers. On error, undoes what it did, then raises.
  m.def("install_markers", [](py::list modules, py::list skip) {
    py::list previous;
    Py_ssize_t n = PyList_GET_SIZE(modules.ptr());
    if (PyList_GET_SIZE(skip.ptr()) != n) throw py::value_error("skip must have one flag per module");
    for (Py_ssize_t i = 0; i < n; ++i) {
      if (!install_one(PyList_GET_ITEM(modules.ptr(), i), static_cast<int32_t>(i),
                       PyObject_IsTrue(PyList_GET_ITEM(skip.ptr(), i)) == 1, previous.ptr())) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        restore_all(modules.ptr(), previous.ptr());
        PyErr_Restore(t, v, tb);
        throw py::error_already_set();
      }
    }
    return previous;
  });
  m.def("restore_markers", [](py::list modules, py::list previous) {
    restore_all(modules.ptr(), previous.ptr());
  });
  m.def("set_tensor_type", [](py::object t) {
    Py_XDECREF(g_tensor_type);
    g_tensor_type = t.ptr();
    Py_INCREF(g_tensor_type);
  });
  m.def("set_shape_log", [](py::object log) { set_log(g_shape_log, log, "shape log"); });
  m.def("set_failure_log", [](py::object log) { set_log(g_failure_log, log, "failure log"); });

  m.def("collect", []() {
    Snapshot s = collect();
    py::dict d;
    d["ops"] = to_array(std::move(s.ops), kOpCols);
    d["args"] = to_array(std::move(s.args), 0);
    d["calls"] = to_array(std::move(s.calls), kCallCols);
    d["mem"] = to_array(std::move(s.mem), kMemCols);
    d["names"] = s.names;
    d["dropped_ends"] = s.dropped_ends;
    return d;
  });

  // Column layout, so Python never hard-codes it.
  py::dict op_cols, call_cols, mem_cols, tags;
  const char* op_names[] = {"name", "scope", "seq_nr", "fwd_thread", "thread", "start", "end",
                            "parent", "call", "args_off", "args_len", "iter"};
  for (int i = 0; i < kOpCols; ++i) op_cols[op_names[i]] = i;
  const char* call_names[] = {"module", "parent", "depth", "enter", "exit", "thread", "iter", "failed"};
  for (int i = 0; i < kCallCols; ++i) call_cols[call_names[i]] = i;
  const char* mem_names[] = {"time", "ptr", "bytes", "total_allocated", "total_reserved",
                             "device_type", "device_index", "op", "call", "thread"};
  for (int i = 0; i < kMemCols; ++i) mem_cols[mem_names[i]] = i;
  tags["none"] = int(kArgNone);
  tags["tensor"] = int(kArgTensor);
  tags["int"] = int(kArgInt);
  tags["double"] = int(kArgDouble);
  tags["bool"] = int(kArgBool);
  tags["list"] = int(kArgList);
  tags["undef_tensor"] = int(kArgUndefTensor);
  tags["other"] = int(kArgOther);
  tags["opaque_tensor"] = int(kArgOpaqueTensor);
  m.attr("OP_COLS") = op_cols;
  m.attr("CALL_COLS") = call_cols;
  m.attr("MEM_COLS") = mem_cols;
  m.attr("ARG_TAGS") = tags;
}
