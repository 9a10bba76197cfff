// See modules.h. Costs measured in benchmarks/ (RESULTS.md): a marker adds
// ~0.2 us per module call (Python forward hooks: ~2 us), the shape log < 0.1 us.
#include "modules.h"

#include <torch/csrc/Size.h>
#include <torch/csrc/autograd/python_variable.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "recorder.h"

namespace torchscope {
namespace {

PyObject* interned(const char* s) { return PyUnicode_InternFromString(s); }

// ------------------------------------------------------------------ shape encoding
// One int64 stream per module call: the positional inputs, the keyword inputs
// and the output, each encoded as
enum ShapeTag : int64_t {
  kShapeNone = 0,    // [0]            anything that is not a tensor/tuple/list/dict
  kShapeTensor = 1,  // [1, ndim, d0, ...]
  kShapeSeq = 2,     // [2, n, item...] tuples and lists (decoded as tuples)
  kShapeDict = 3,    // [3, n, key id, value, ...]
  kShapeOpaque = 4,  // [4]            nested or symbolic-size tensor: no sizes
};
constexpr int kMaxDepth = 4;

struct VecHash {
  size_t operator()(const std::vector<int64_t>& v) const noexcept {
    uint64_t h = 1469598103934665603ull;
    for (int64_t x : v) h = (h ^ static_cast<uint64_t>(x)) * 1099511628211ull;
    return static_cast<size_t>(h);
  }
};

struct ShapeLog {
  bool enabled = false;
  std::vector<PyObject*> keys;            // dict keys / keyword names by id (owned references)
  std::unordered_map<std::vector<int64_t>, int64_t, VecHash> ids;  // signature -> id
  std::vector<const std::vector<int64_t>*> by_id;
  std::vector<int64_t> calls;             // call id, signature id
  // Per open module call (by nesting depth), its inputs encoded before its forward runs: a
  // forward may change them in place (x.unsqueeze_(0), a list it appends to). Reused buffers.
  std::vector<std::vector<int64_t>> open;
  size_t depth = 0;
  uint64_t epoch = 0;  // bumped by clear(): a call encoded before it holds stale key ids

  void clear() {
    ++epoch;
    for (PyObject* k : keys) Py_DECREF(k);
    keys.clear();
    ids.clear();
    by_id.clear();
    calls.clear();
  }
};
ShapeLog g_log;
PyObject* g_failure_log = nullptr;

int64_t key_id(PyObject* key) {
  for (size_t i = 0; i < g_log.keys.size(); ++i) {
    PyObject* k = g_log.keys[i];
    if (k == key || (PyUnicode_CheckExact(k) && PyUnicode_CheckExact(key) && PyUnicode_Compare(k, key) == 0))
      return static_cast<int64_t>(i);
  }
  Py_INCREF(key);
  g_log.keys.push_back(key);
  return static_cast<int64_t>(g_log.keys.size() - 1);
}

void encode_tensor(PyObject* obj, std::vector<int64_t>& out) {
  try {
    const at::Tensor& t = THPVariable_Unpack(obj);
    if (!t.defined() || t.is_nested() || t.unsafeGetTensorImpl()->has_symbolic_sizes_strides()) {
      out.push_back(kShapeOpaque);
      return;
    }
    auto sizes = t.sizes();
    out.push_back(kShapeTensor);
    out.push_back(static_cast<int64_t>(sizes.size()));
    out.insert(out.end(), sizes.begin(), sizes.end());
  } catch (...) {  // a subclass with Python-defined sizes that failed: no sizes
    out.push_back(kShapeOpaque);
  }
}

void encode(PyObject* obj, int depth, std::vector<int64_t>& out) {
  if (THPVariable_Check(obj)) {
    encode_tensor(obj, out);
  } else if (depth < kMaxDepth && (PyTuple_Check(obj) || PyList_Check(obj))) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
    out.push_back(kShapeSeq);
    out.push_back(n);
    for (Py_ssize_t i = 0; i < n; ++i) encode(PySequence_Fast_ITEMS(obj)[i], depth + 1, out);
  } else if (depth < kMaxDepth && PyDict_Check(obj)) {
    out.push_back(kShapeDict);
    out.push_back(PyDict_GET_SIZE(obj));
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(obj, &pos, &k, &v)) {
      out.push_back(key_id(k));
      encode(v, depth + 1, out);
    }
  } else {
    out.push_back(kShapeNone);
  }
}

// A call is [Seq of positional][Dict of keyword or None][output or None]; this writes the inputs.
void encode_inputs(PyObject* const* args, size_t nargs, PyObject* kwnames, std::vector<int64_t>& buf) {
  buf.clear();
  buf.push_back(kShapeSeq);
  buf.push_back(static_cast<int64_t>(nargs));
  for (size_t i = 0; i < nargs; ++i) encode(args[i], 1, buf);
  Py_ssize_t nk = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  if (nk > 0) {
    buf.push_back(kShapeDict);
    buf.push_back(nk);
    for (Py_ssize_t i = 0; i < nk; ++i) {
      buf.push_back(key_id(PyTuple_GET_ITEM(kwnames, i)));
      encode(args[nargs + i], 1, buf);
    }
  } else {
    buf.push_back(kShapeNone);
  }
}

// Decodes one value at v[pos]; returns a new reference or NULL with an error set.
PyObject* decode(const std::vector<int64_t>& v, size_t& pos) {
  int64_t tag = v[pos++];
  if (tag == kShapeTensor) {
    int64_t nd = v[pos++];
    PyObject* dims = PyTuple_New(nd);
    if (!dims) return nullptr;
    for (int64_t i = 0; i < nd; ++i) {
      PyObject* d = PyLong_FromLongLong(v[pos++]);
      if (!d) {
        Py_DECREF(dims);
        return nullptr;
      }
      PyTuple_SET_ITEM(dims, i, d);
    }
    PyObject* size = PyObject_CallOneArg(reinterpret_cast<PyObject*>(&THPSizeType), dims);
    Py_DECREF(dims);
    return size;
  }
  if (tag == kShapeSeq) {
    int64_t n = v[pos++];
    PyObject* t = PyTuple_New(n);
    if (!t) return nullptr;
    for (int64_t i = 0; i < n; ++i) {
      PyObject* item = decode(v, pos);
      if (!item) {
        Py_DECREF(t);
        return nullptr;
      }
      PyTuple_SET_ITEM(t, i, item);
    }
    return t;
  }
  if (tag == kShapeDict) {
    int64_t n = v[pos++];
    PyObject* d = PyDict_New();
    if (!d) return nullptr;
    for (int64_t i = 0; i < n; ++i) {
      PyObject* key = g_log.keys[v[pos++]];
      PyObject* item = decode(v, pos);
      if (!item || PyDict_SetItem(d, key, item) < 0) {
        Py_XDECREF(item);
        Py_DECREF(d);
        return nullptr;
      }
      Py_DECREF(item);
    }
    return d;
  }
  Py_RETURN_NONE;
}

// (positional, keyword or None, output) of one encoded call.
PyObject* decode_call(const std::vector<int64_t>& v) {
  size_t pos = 0;
  PyObject* a = decode(v, pos);
  PyObject* k = a ? decode(v, pos) : nullptr;
  PyObject* o = k ? decode(v, pos) : nullptr;
  PyObject* r = o ? PyTuple_Pack(3, a, k, o) : nullptr;
  Py_XDECREF(a);
  Py_XDECREF(k);
  Py_XDECREF(o);
  return r;
}

// `sig`: the call's encoded inputs; the output is appended.
void log_call(int64_t call, std::vector<int64_t>& sig, PyObject* out) {
  encode(out, 0, sig);
  auto it = g_log.ids.find(sig);
  if (it == g_log.ids.end()) {
    it = g_log.ids.emplace(sig, static_cast<int64_t>(g_log.by_id.size())).first;
    g_log.by_id.push_back(&it->first);
  }
  g_log.calls.push_back(call);
  g_log.calls.push_back(it->second);
}

// Whether exception `e` is `v` or in the chain `v` was raised from (its causes and contexts).
bool in_chain(PyObject* e, PyObject* v) {
  PyObject* todo[64];
  int n = 0, seen = 0;
  if (v) todo[n++] = v;
  while (n > 0 && seen < 64) {
    PyObject* x = todo[--n];  // borrowed: every exception here is kept alive by `v`'s chain
    ++seen;
    if (x == e) return true;
    if (!PyExceptionInstance_Check(x)) continue;
    PyObject* links[2] = {PyException_GetCause(x), PyException_GetContext(x)};  // new references
    for (PyObject* y : links) {
      if (y && n < 64) todo[n++] = y;
      Py_XDECREF(y);  // (still referenced by x)
    }
  }
  return false;
}

// Appends (module_index, positional, keyword, exception) to the failure log. Runs with
// the forward's exception pending: keep it intact, swallow our own errors. Entries of an
// exception the model caught, unrelated to this one, are dropped: the log names the
// module where the exception that propagates came from.
void log_failure(int32_t module_index, PyObject* const* args, size_t nargs, PyObject* kwnames) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  Py_ssize_t n = PyList_GET_SIZE(g_failure_log);
  for (Py_ssize_t i = n; i-- > 0;) {
    PyObject* e = PyTuple_GET_ITEM(PyList_GET_ITEM(g_failure_log, i), 3);
    if (!in_chain(e, value)) PyList_SetSlice(g_failure_log, i, i + 1, nullptr);
  }
  std::vector<int64_t> buf;
  encode_inputs(args, nargs, kwnames, buf);
  buf.push_back(kShapeNone);  // (no output)
  PyObject* sig = decode_call(buf);
  if (sig) {
    PyObject* entry = Py_BuildValue("(iOOO)", module_index, PyTuple_GET_ITEM(sig, 0), PyTuple_GET_ITEM(sig, 1),
                                    value ? value : Py_None);
    if (entry) PyList_Append(g_failure_log, entry);
    Py_XDECREF(entry);
    Py_DECREF(sig);
  }
  PyErr_Clear();
  PyErr_Restore(type, value, tb);
}

// ------------------------------------------------------------------ marker
bool g_stats_on = false;                       // markers count their modules' tensors (below)
void count_in_pass(PyObject* mod, int32_t i);  // (defined with tensor_stats)

struct ModuleMarker {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  PyObject* wrapped;  // the module's original bound forward
  PyObject* module;   // the module (a marker kept past its module's life must not dangle)
  int32_t module_index;
};

// A logged failure is stale once the model runs on (it caught the exception): when a
// call starts, or returns normally. Only the exception in flight keeps its log.
bool clear_stale_failures() {
  Py_ssize_t n = g_failure_log ? PyList_GET_SIZE(g_failure_log) : 0;
  return n == 0 || PyList_SetSlice(g_failure_log, 0, n, nullptr) == 0;
}

PyObject* marker_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  auto* m = reinterpret_cast<ModuleMarker*>(self);
  if (!clear_stale_failures()) return nullptr;
  int64_t call = module_enter(m->module_index);
  bool logged = g_log.enabled && call >= 0;
  size_t level = g_log.depth;
  uint64_t epoch = g_log.epoch;
  if (logged) {  // inputs as they reach forward (it may change them)
    if (level == g_log.open.size()) g_log.open.emplace_back();
    ++g_log.depth;
    encode_inputs(args, PyVectorcall_NARGS(nargsf), kwnames, g_log.open[level]);
  }
  PyObject* out = PyObject_Vectorcall(m->wrapped, args, nargsf, kwnames);
  if (logged) --g_log.depth;
  module_exit(call, out == nullptr);
  if (out && g_stats_on) count_in_pass(m->module, m->module_index);
  if (out && !clear_stale_failures()) Py_CLEAR(out);
  // (by index: nested calls may have grown `open`)
  if (logged && out && g_log.enabled && g_log.epoch == epoch) log_call(call, g_log.open[level], out);
  // Failed calls are logged even when not recording (warm-up), innermost first,
  // so the error can name the module and the shapes that reached it.
  if (!out && g_failure_log) log_failure(m->module_index, args, PyVectorcall_NARGS(nargsf), kwnames);
  return out;
}

int marker_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<ModuleMarker*>(self)->wrapped);
  Py_VISIT(reinterpret_cast<ModuleMarker*>(self)->module);
  return 0;
}

int marker_clear(PyObject* self) {
  Py_CLEAR(reinterpret_cast<ModuleMarker*>(self)->wrapped);
  Py_CLEAR(reinterpret_cast<ModuleMarker*>(self)->module);
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

// Pickling or deep-copying a module during a profiled forward (EMA teachers, checkpoints)
// copies its instance dict: the marker stands for the forward it wraps.
PyObject* marker_reduce(PyObject* self, PyObject*) {
  PyObject* w = reinterpret_cast<ModuleMarker*>(self)->wrapped;
  if (!w) {
    PyErr_SetString(PyExc_TypeError, "torchscope ModuleMarker without a forward cannot be pickled");
    return nullptr;
  }
  return PyObject_CallMethod(w, "__reduce__", nullptr);
}

PyObject* marker_deepcopy(PyObject* self, PyObject* memo) {
  PyObject* w = reinterpret_cast<ModuleMarker*>(self)->wrapped;
  PyObject* copy = PyImport_ImportModule("copy");
  if (!copy) return nullptr;
  PyObject* out = PyObject_CallMethod(copy, "deepcopy", "OO", w ? w : Py_None, memo);
  Py_DECREF(copy);
  return out;
}

PyMethodDef marker_methods[] = {
    {"__reduce__", marker_reduce, METH_NOARGS, nullptr},
    {"__deepcopy__", marker_deepcopy, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef marker_getset[] = {
    // __wrapped__ lets inspect.signature(module.forward) see the real signature.
    {"__wrapped__", marker_get_wrapped, nullptr, nullptr, nullptr},
    {"module_index", marker_get_index, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject ModuleMarkerType = {PyVarObject_HEAD_INIT(nullptr, 0)};

// A new marker around `wrapped` (new reference).
PyObject* make_marker(PyObject* wrapped, PyObject* module, int32_t module_index) {
  auto* m = PyObject_GC_New(ModuleMarker, &ModuleMarkerType);
  if (!m) return nullptr;
  m->vectorcall = marker_call;
  Py_INCREF(wrapped);
  m->wrapped = wrapped;
  Py_INCREF(module);
  m->module = module;
  m->module_index = module_index;
  PyObject_GC_Track(reinterpret_cast<PyObject*>(m));
  return reinterpret_cast<PyObject*>(m);
}

PyObject* forward_name() {
  static PyObject* name = interned("forward");
  return name;
}

// Appends to `previous` what restore needs; returns false with a Python error set.
// `how`: false wraps `forward`, true skips the module, a str names the instance attribute
// to wrap instead (`_compiled_call_impl` of a module compiled in place: the marker must
// stay outside the compiled call); its entry in `previous` is then (name, previous value).
bool install_one(PyObject* mod, int32_t index, PyObject* how, PyObject* previous) {
  PyObject** dict_ptr = _PyObject_GetDictPtr(mod);
  bool other = PyUnicode_Check(how);
  if ((!other && PyObject_IsTrue(how) == 1) || !dict_ptr || !*dict_ptr)
    return PyList_Append(previous, Py_Ellipsis) == 0;
  PyObject* key = other ? how : forward_name();
  PyObject* prev = PyDict_GetItemWithError(*dict_ptr, key);  // borrowed
  if (!prev && PyErr_Occurred()) return false;
  PyObject* bound = PyObject_GetAttr(mod, key);
  if (!bound) return false;
  PyObject* marker = make_marker(bound, mod, index);
  Py_DECREF(bound);
  if (!marker) return false;
  PyObject* was = prev ? prev : Py_None;
  PyObject* entry = other ? PyTuple_Pack(2, key, was) : was;  // what restore_markers puts back
  bool ok = entry && PyList_Append(previous, entry) == 0 && PyDict_SetItem(*dict_ptr, key, marker) == 0;
  if (other) Py_XDECREF(entry);
  Py_DECREF(marker);
  return ok;
}

// ------------------------------------------------------------------ structure
// Identity set of objects for the walks (modules, parameters, buffers seen): open
// addressing in one array, so a 600-module model costs no allocation per insert
// (std::unordered_set allocated a node per object: ~1,200 mallocs per profile).
class PtrSet {
 public:
  explicit PtrSet(size_t expected = 512) {
    size_t cap = 64;
    while (cap < 2 * expected) cap *= 2;
    slots_.assign(cap, nullptr);
  }
  bool insert(const void* p) {  // true if p was not in the set
    if (2 * (size_ + 1) > slots_.size()) grow();
    if (place(slots_, p)) {
      ++size_;
      return true;
    }
    return false;
  }

 private:
  static bool place(std::vector<const void*>& slots, const void* p) {
    size_t mask = slots.size() - 1;
    size_t i = (reinterpret_cast<uintptr_t>(p) >> 4) * 0x9E3779B97F4A7C15ull >> 20 & mask;
    while (slots[i]) {
      if (slots[i] == p) return false;
      i = (i + 1) & mask;
    }
    slots[i] = p;
    return true;
  }
  void grow() {
    std::vector<const void*> bigger(2 * slots_.size(), nullptr);
    for (const void* p : slots_)
      if (p) place(bigger, p);
    slots_.swap(bigger);
  }
  std::vector<const void*> slots_;
  size_t size_ = 0;
};

PyObject* instance_dict(PyObject* obj) {  // borrowed, or NULL
  PyObject** p = _PyObject_GetDictPtr(obj);
  return p ? *p : nullptr;
}

// A module's `_modules`/`_parameters`/`_buffers` entry as a dict: a new reference,
// NULL (true) when absent, false with an error set. A ScriptModule keeps them in
// mapping wrappers (OrderedDictWrapper), copied here.
bool entry_as_dict(PyObject* d, PyObject* key, PyObject** out) {
  *out = nullptr;
  PyObject* m = d ? PyDict_GetItemWithError(d, key) : nullptr;
  if (!m) return !PyErr_Occurred();
  if (m == Py_None) return true;
  if (PyDict_Check(m)) {
    Py_INCREF(m);
    *out = m;
    return true;
  }
  PyObject* copy = PyDict_New();
  if (!copy || PyDict_Merge(copy, m, 1) < 0) {
    Py_XDECREF(copy);
    return false;
  }
  *out = copy;
  return true;
}

// type.__name__ without the attribute lookup (heap types keep it in ht_name).
PyObject* type_name(PyTypeObject* t) {
  if (t->tp_flags & Py_TPFLAGS_HEAPTYPE) {
    PyObject* n = reinterpret_cast<PyHeapTypeObject*>(t)->ht_name;
    Py_INCREF(n);
    return n;
  }
  const char* dot = std::strrchr(t->tp_name, '.');
  return PyUnicode_FromString(dot ? dot + 1 : t->tp_name);
}

}  // namespace

bool init_marker_type(PyObject* module) {
  ModuleMarkerType.tp_name = "torchscope._C.ModuleMarker";
  ModuleMarkerType.tp_basicsize = sizeof(ModuleMarker);
  ModuleMarkerType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
  ModuleMarkerType.tp_vectorcall_offset = offsetof(ModuleMarker, vectorcall);
  ModuleMarkerType.tp_call = PyVectorcall_Call;
  ModuleMarkerType.tp_traverse = marker_traverse;
  ModuleMarkerType.tp_clear = marker_clear;
  ModuleMarkerType.tp_dealloc = marker_dealloc;
  ModuleMarkerType.tp_getset = marker_getset;
  ModuleMarkerType.tp_methods = marker_methods;
  ModuleMarkerType.tp_doc = "Brackets a module's forward with torchscope module marks.";
  if (PyType_Ready(&ModuleMarkerType) < 0) return false;
  Py_INCREF(&ModuleMarkerType);
  return PyModule_AddObject(module, "ModuleMarker", reinterpret_cast<PyObject*>(&ModuleMarkerType)) == 0;
}


PyObject* install_markers(PyObject* modules, PyObject* skip) {
  Py_ssize_t n = PyList_GET_SIZE(modules);
  if (PyList_GET_SIZE(skip) != n) {
    PyErr_SetString(PyExc_ValueError, "skip must have one flag per module");
    return nullptr;
  }
  PyObject* previous = PyList_New(0);
  if (!previous) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (!install_one(PyList_GET_ITEM(modules, i), static_cast<int32_t>(i), PyList_GET_ITEM(skip, i), previous)) {
      PyObject *t, *v, *tb;
      PyErr_Fetch(&t, &v, &tb);
      restore_markers(modules, previous);
      Py_DECREF(previous);
      PyErr_Restore(t, v, tb);
      return nullptr;
    }
  }
  return previous;
}

// Puts back each module's previous instance-level forward (or removes ours).
void restore_markers(PyObject* modules, PyObject* previous) {
  Py_ssize_t n = std::min(PyList_GET_SIZE(modules), PyList_GET_SIZE(previous));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* prev = PyList_GET_ITEM(previous, i);
    if (prev == Py_Ellipsis) continue;
    PyObject* d = instance_dict(PyList_GET_ITEM(modules, i));
    if (!d) continue;
    PyObject* key = forward_name();
    if (PyTuple_Check(prev) && PyTuple_GET_SIZE(prev) == 2 && PyUnicode_Check(PyTuple_GET_ITEM(prev, 0))) {
      key = PyTuple_GET_ITEM(prev, 0);  // (attribute, previous value): see install_one
      prev = PyTuple_GET_ITEM(prev, 1);
    }
    int rc = prev == Py_None ? PyDict_DelItem(d, key) : PyDict_SetItem(d, key, prev);
    if (rc < 0) PyErr_Clear();
  }
}

void set_shape_log(bool enabled) {
  if (enabled && !g_log.enabled) g_log.clear();
  g_log.enabled = enabled;
}

bool take_shape_log(std::vector<int64_t>* calls, PyObject** signatures) {
  g_log.enabled = false;
  PyObject* sigs = PyList_New(static_cast<Py_ssize_t>(g_log.by_id.size()));
  bool ok = sigs != nullptr;
  for (size_t i = 0; ok && i < g_log.by_id.size(); ++i) {
    PyObject* s = decode_call(*g_log.by_id[i]);
    if (!s) ok = false;
    else PyList_SET_ITEM(sigs, static_cast<Py_ssize_t>(i), s);
  }
  if (ok) {
    calls->swap(g_log.calls);
    *signatures = sigs;
  } else {
    Py_XDECREF(sigs);
  }
  g_log.clear();
  return ok;
}

void set_failure_log(PyObject* list) {
  Py_XINCREF(list);
  Py_XSETREF(g_failure_log, list);
}

namespace {
bool listed(PyObject* list, PyObject* obj) {  // by identity (a few generators at most: no set)
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); ++i)
    if (PyList_GET_ITEM(list, i) == obj) return true;
  return false;
}
}  // namespace

bool walk_modules(PyObject* root, PyObject* script_module_type, PyObject* generator_type, ModuleTree* out) {
  static PyObject* s_modules = interned("_modules");
  static PyObject* s_buffers = interned("_buffers");
  static PyObject* s_kernel = interned("kernel_size");
  static PyObject* s_compiled = interned("_compiled_call_impl");
  static PyObject* s_orig = interned("_orig_mod");
  out->modules = PyList_New(0);
  out->names = PyList_New(0);
  out->types = PyList_New(0);
  out->kernel_size = PyList_New(0);
  out->buffers = PyList_New(0);
  out->buffer_slots = PyList_New(0);
  out->generators = PyList_New(0);
  PtrSet seen, seen_buffers;
  auto* gen_type = reinterpret_cast<PyTypeObject*>(generator_type);
  seen.insert(root);
  struct TypeInfo {
    PyObject* name;  // owned until the walk ends
    bool scripted;
    bool own_attrs;  // a class defined outside torch: its instances' attributes are read for generators
  };
  std::unordered_map<PyTypeObject*, TypeInfo> types;
  struct Frame { PyObject* children; Py_ssize_t pos; PyObject* prefix; int64_t parent, depth; };
  std::vector<Frame> stack;
  PyObject* empty = PyUnicode_FromString("");
  bool ok = out->modules && out->names && out->types && out->kernel_size && out->buffers && out->buffer_slots &&
            out->generators && empty;

  // Appends one module; its children (if any) become the next frame (pre-order).
  auto visit = [&](PyObject* mod, PyObject* name, int64_t parent, int64_t depth) -> bool {
    PyTypeObject* tp = Py_TYPE(mod);
    auto t = types.find(tp);
    if (t == types.end()) {
      PyObject* tn = type_name(tp);
      if (!tn) return false;
      int sub = script_module_type ? PyObject_IsSubclass(reinterpret_cast<PyObject*>(tp), script_module_type) : 0;
      if (sub < 0) {
        Py_DECREF(tn);
        return false;
      }
      // torch's own module classes hold no generator: their instances' ~20 attributes are not
      // read (on a 600-module model, reading them all cost more than the rest of the walk).
      PyObject* where = PyObject_GetAttrString(reinterpret_cast<PyObject*>(tp), "__module__");  // once per class
      const char* mod_name = where && PyUnicode_Check(where) ? PyUnicode_AsUTF8(where) : nullptr;
      if (!mod_name) PyErr_Clear();
      bool torch_class = mod_name && (std::strncmp(mod_name, "torch.", 6) == 0 || std::strcmp(mod_name, "torch") == 0);
      Py_XDECREF(where);
      t = types.emplace(tp, TypeInfo{tn, sub != 0, !torch_class}).first;
    }
    PyObject* d = instance_dict(mod);
    PyObject* kernel = d ? PyDict_GetItemWithError(d, s_kernel) : nullptr;
    PyObject* compiled = d ? PyDict_GetItemWithError(d, s_compiled) : nullptr;
    if (PyErr_Occurred()) return false;
    PyObject *children, *bufs;  // owned below
    if (!entry_as_dict(d, s_modules, &children)) return false;
    if (!entry_as_dict(d, s_buffers, &bufs)) {
      Py_XDECREF(children);
      return false;
    }
    int64_t region = kRegionNone;
    if (compiled && compiled != Py_None) {
      region = kRegionCompiledInPlace;  // nn.Module.compile() in place
    } else if (children && PyDict_GetItemWithError(children, s_orig) &&
               PyUnicode_CompareWithASCIIString(t->second.name, "OptimizedModule") == 0) {
      region = kRegionCompiled;  // torch.compile(module)
    } else if (t->second.scripted) {
      region = kRegionScripted;
    }
    bool appended = !PyErr_Occurred() && PyList_Append(out->modules, mod) == 0 &&
                    PyList_Append(out->names, name) == 0 && PyList_Append(out->types, t->second.name) == 0 &&
                    PyList_Append(out->kernel_size, kernel ? kernel : Py_None) == 0;
    if (appended) {
      out->parent.push_back(parent);
      out->depth.push_back(depth);
      out->region.push_back(region);
    }
    PyObject *k, *b;
    Py_ssize_t pos = 0;
    while (appended && bufs && PyDict_Next(bufs, &pos, &k, &b)) {
      if (b == Py_None) continue;
      PyObject* slot = PyTuple_Pack(3, mod, k, b);
      if (!slot || PyList_Append(out->buffer_slots, slot) < 0 ||
          (seen_buffers.insert(b) && PyList_Append(out->buffers, b) < 0))
        appended = false;
      Py_XDECREF(slot);
    }
    Py_XDECREF(bufs);
    // Generators the module holds as attributes (its own random stream, used in forward):
    // profiling puts their states back as it does torch's global one.
    PyObject *attr, *value;
    pos = 0;
    while (appended && gen_type && d && t->second.own_attrs && PyDict_Next(d, &pos, &attr, &value))
      if (PyObject_TypeCheck(value, gen_type) && !listed(out->generators, value) &&
          PyList_Append(out->generators, value) < 0)
        appended = false;
    if (!appended) {
      Py_XDECREF(children);
      return false;
    }
    if (children && PyDict_GET_SIZE(children) > 0) {
      Py_INCREF(name);  // the frame owns both
      stack.push_back({children, 0, name, static_cast<int64_t>(out->parent.size()) - 1, depth + 1});
    } else {
      Py_XDECREF(children);
    }
    return true;
  };

  ok = ok && visit(root, empty, -1, 0);
  while (ok && !stack.empty()) {
    size_t top = stack.size() - 1;  // by index: visit() may grow the stack
    PyObject *key, *child;
    bool descended = false;
    while (ok && !descended && PyDict_Next(stack[top].children, &stack[top].pos, &key, &child)) {
      if (child == Py_None) continue;
      if (!seen.insert(child)) {
        out->shared_modules = true;
        continue;
      }
      PyObject* prefix = stack[top].prefix;
      PyObject* qual = PyUnicode_GET_LENGTH(prefix) ? PyUnicode_FromFormat("%U.%S", prefix, key) : PyObject_Str(key);
      if (!qual) {
        ok = false;
        break;
      }
      ok = visit(child, qual, stack[top].parent, stack[top].depth);
      Py_DECREF(qual);
      descended = stack.size() > top + 1;  // pre-order: walk the child's children first
    }
    if (ok && !descended) {
      Py_DECREF(stack[top].children);
      Py_DECREF(stack[top].prefix);
      stack.pop_back();
    }
  }
  for (Frame& f : stack) {
    Py_DECREF(f.children);
    Py_DECREF(f.prefix);
  }
  for (auto& t : types) Py_DECREF(t.second.name);
  Py_XDECREF(empty);
  if (!ok) {
    Py_CLEAR(out->modules);
    Py_CLEAR(out->names);
    Py_CLEAR(out->types);
    Py_CLEAR(out->kernel_size);
    Py_CLEAR(out->buffers);
    Py_CLEAR(out->buffer_slots);
    Py_CLEAR(out->generators);
  }
  return ok;
}

namespace {
// What tensor_stats accumulates over modules. Shared by the one-call walk and by the counting
// that module markers do while the pass runs (each parameter counted once across both).
struct StatsState {
  TensorStats out;
  PtrSet seen;
  PyObject* uninitialized_type = nullptr;                  // borrowed (lives in torch)
  std::unordered_map<PyTypeObject*, bool> lazy_type;
  std::vector<std::pair<int, PyObject*>> dtypes;           // ScalarType -> torch.dtype (singletons)
  std::vector<std::pair<PyObject*, int64_t>> by_dtype;
  std::vector<uint8_t> counted;                            // per module: its tensors are in `out`
  PyObject* modules = nullptr;                             // the list counted (held; release_stats
                                                           // drops it, never a destructor after exit)

  StatsState(Py_ssize_t n, PyObject* uninitialized) : uninitialized_type(uninitialized), counted(n, 0) {
    out.own_params.assign(n, 0);
    out.own_trainable.assign(n, 0);
    out.buffer_elems.assign(n, 0);
  }
};

PyObject* s_params_name() {
  static PyObject* s = interned("_parameters");
  return s;
}
PyObject* s_buffers_name() {
  static PyObject* s = interned("_buffers");
  return s;
}

// Adds module i's own parameters and buffers (its `_parameters` and `_buffers` dicts, either may
// be null); false with a Python error set.
bool add_tensors(StatsState& st, PyObject* params, PyObject* bufs, Py_ssize_t i) {
  static PyObject* s_dtype = interned("dtype");
  TensorStats* out = &st.out;
  st.counted[i] = 1;
  bool ok = true;
  try {
    PyObject *k, *p;
    Py_ssize_t pos = 0;
    bool flagged = false;
    while (ok && params && PyDict_Next(params, &pos, &k, &p)) {
      if (p == Py_None || !THPVariable_Check(p)) continue;
      auto lt = st.lazy_type.find(Py_TYPE(p));
      if (lt == st.lazy_type.end()) {
        int r = st.uninitialized_type ? PyObject_IsInstance(p, st.uninitialized_type) : 0;
        if (r < 0) {
          ok = false;
          break;
        }
        lt = st.lazy_type.emplace(Py_TYPE(p), r == 1).first;
      }
      if (lt->second) {  // a lazy module not yet run: its size is unknown, not 0
        if (!flagged) out->uninitialized.push_back(i);
        flagged = true;
        continue;
      }
      if (!st.seen.insert(p)) {
        out->shared = true;
        continue;
      }
      const at::Tensor& t = THPVariable_Unpack(p);
      int64_t numel = t.numel();
      out->own_params[i] += numel;
      if (t.requires_grad()) out->own_trainable[i] += numel;
      int64_t nbytes = numel * t.element_size();
      out->param_bytes += nbytes;
      int sc = static_cast<int>(t.scalar_type());
      auto dt = std::find_if(st.dtypes.begin(), st.dtypes.end(), [sc](auto& e) { return e.first == sc; });
      if (dt == st.dtypes.end()) {
        PyObject* obj = PyObject_GetAttr(p, s_dtype);  // torch.dtype objects are singletons
        if (!obj) {
          ok = false;
          break;
        }
        Py_DECREF(obj);
        st.dtypes.emplace_back(sc, obj);
        dt = st.dtypes.end() - 1;
      }
      auto bd = std::find_if(st.by_dtype.begin(), st.by_dtype.end(), [&](auto& e) { return e.first == dt->second; });
      if (bd == st.by_dtype.end()) st.by_dtype.emplace_back(dt->second, nbytes);
      else bd->second += nbytes;
    }
    pos = 0;
    while (ok && bufs && PyDict_Next(bufs, &pos, &k, &p)) {
      if (p == Py_None || !THPVariable_Check(p)) continue;
      const at::Tensor& t = THPVariable_Unpack(p);
      int64_t numel = t.numel();
      out->buffer_elems[i] += numel;
      if (st.seen.insert(p)) out->buffer_bytes += numel * t.element_size();
    }
    if (PyErr_Occurred()) ok = false;
  } catch (const std::exception& e) {  // e.g. symbolic sizes
    PyErr_Format(PyExc_RuntimeError, "torchscope: could not read a parameter's size: %s", e.what());
    ok = false;
  }
  return ok;
}

// The same, read from the module (a ScriptModule's mapping wrappers copied into dicts).
bool add_module_tensors(StatsState& st, PyObject* mod, Py_ssize_t i) {
  st.counted[i] = 1;
  PyObject* d = instance_dict(mod);
  if (!d) return true;
  PyObject *params = nullptr, *bufs = nullptr;  // owned
  bool ok = entry_as_dict(d, s_params_name(), &params) && entry_as_dict(d, s_buffers_name(), &bufs) &&
            add_tensors(st, params, bufs, i);
  Py_XDECREF(params);
  Py_XDECREF(bufs);
  return ok;
}

// Moves the totals out of `st` (param_bytes_by_dtype as a dict); false with a Python error set.
bool finish_stats(StatsState& st, TensorStats* out) {
  PyObject* by = PyDict_New();
  bool ok = by != nullptr;
  for (auto& e : st.by_dtype) {
    PyObject* v = ok ? PyLong_FromLongLong(e.second) : nullptr;
    if (!v || PyDict_SetItem(by, e.first, v) < 0) ok = false;
    Py_XDECREF(v);
  }
  if (!ok) {
    Py_XDECREF(by);
    return false;
  }
  *out = std::move(st.out);
  out->param_bytes_by_dtype = by;
  return true;
}

// The counting markers do at the end of each module's first call, while the module's tensors
// are in cache from its forward (after the pass, counting them all again cost ~0.35 ms on a
// 600-module model: each parameter a chain of cache misses). Null: not counting.
std::unique_ptr<StatsState> g_stats;

// Counts module i at the end of a call that returned, if it is the plain case: `_parameters`
// and `_buffers` real dicts, every parameter an initialised nn.Parameter. Anything else (a lazy
// parameter, tensors swapped in by functional_call, a mapping wrapper) is left to
// finish_tensor_stats after the pass, as are modules never called. Never raises.
void count_in_pass(PyObject* mod, int32_t i) {
  StatsState& st = *g_stats;
  if (i < 0 || static_cast<size_t>(i) >= st.counted.size() || st.counted[i]) return;
  if (i >= PyList_GET_SIZE(st.modules) || PyList_GET_ITEM(st.modules, i) != mod)
    return;  // a marker of another profile, kept and called now
  PyObject* d = instance_dict(mod);
  if (!d) return;
  PyObject* params = PyDict_GetItemWithError(d, s_params_name());
  PyObject* bufs = params ? PyDict_GetItemWithError(d, s_buffers_name()) : nullptr;
  if (!params || !bufs || !PyDict_CheckExact(params) || !PyDict_CheckExact(bufs)) {
    PyErr_Clear();
    return;
  }
  PyObject *k, *p;
  Py_ssize_t pos = 0;
  while (PyDict_Next(params, &pos, &k, &p))
    if (p != Py_None && Py_TYPE(p) != reinterpret_cast<PyTypeObject*>(ParameterClass)) return;
  pos = 0;
  while (PyDict_Next(bufs, &pos, &k, &p))
    if (p != Py_None && !THPVariable_CheckExact(p)) return;
  if (!add_tensors(st, params, bufs, i)) {  // (cannot fail on these; if it did, count it again later)
    PyErr_Clear();
    st.counted[i] = 0;
  }
}
}  // namespace

bool tensor_stats(PyObject* modules, PyObject* uninitialized_type, TensorStats* out) {
  Py_ssize_t n = PyList_GET_SIZE(modules);
  StatsState st(n, uninitialized_type);
  for (Py_ssize_t i = 0; i < n; ++i)
    if (!add_module_tensors(st, PyList_GET_ITEM(modules, i), i)) return false;
  return finish_stats(st, out);
}

namespace {
std::unique_ptr<StatsState> release_stats() {  // (with the GIL held)
  std::unique_ptr<StatsState> st = std::move(g_stats);
  g_stats_on = false;
  if (st) Py_CLEAR(st->modules);
  return st;
}
}  // namespace

void begin_tensor_stats(PyObject* modules, PyObject* uninitialized_type) {
  release_stats();
  g_stats = std::make_unique<StatsState>(PyList_GET_SIZE(modules), uninitialized_type);
  Py_INCREF(modules);
  g_stats->modules = modules;
  g_stats_on = true;
}

void pause_tensor_stats(bool keep) {
  if (keep) g_stats_on = false;
  else release_stats();  // (a failed profile: the model is not kept alive by the counting)
}

bool finish_tensor_stats(PyObject* modules, TensorStats* out) {
  bool same = g_stats && g_stats->modules == modules;
  std::unique_ptr<StatsState> st = release_stats();
  Py_ssize_t n = PyList_GET_SIZE(modules);
  if (!st || !same || static_cast<Py_ssize_t>(st->counted.size()) != n) {
    PyErr_SetString(PyExc_RuntimeError, "finish_tensor_stats: no counting begun for these modules");
    return false;
  }
  for (Py_ssize_t i = 0; i < n; ++i)
    if (!st->counted[i] && !add_module_tensors(*st, PyList_GET_ITEM(modules, i), i)) return false;
  // Lazy modules counted after the pass come after those the pass counted: keep the list in
  // module order, as the one-call walk gives it.
  std::sort(st->out.uninitialized.begin(), st->out.uninitialized.end());
  return finish_stats(*st, out);
}

// ------------------------------------------------------------------ table text
namespace {
// Writes `s` at `pos` of `out` (whose kind is at least s's kind).
inline void put(PyObject* out, Py_ssize_t pos, PyObject* s) {
  Py_ssize_t n = PyUnicode_GET_LENGTH(s);
  int out_kind = PyUnicode_KIND(out), kind = PyUnicode_KIND(s);
  void* dst = PyUnicode_DATA(out);
  const void* src = PyUnicode_DATA(s);
  if (kind == out_kind) {
    std::memcpy(static_cast<char*>(dst) + pos * kind, src, static_cast<size_t>(n) * kind);
  } else {
    for (Py_ssize_t i = 0; i < n; ++i) PyUnicode_WRITE(out_kind, dst, pos + i, PyUnicode_READ(kind, src, i));
  }
}

inline void spaces(PyObject* out, Py_ssize_t pos, Py_ssize_t n) {
  int kind = PyUnicode_KIND(out);
  void* dst = PyUnicode_DATA(out);
  if (kind == PyUnicode_1BYTE_KIND) {
    std::memset(static_cast<char*>(dst) + pos, ' ', static_cast<size_t>(n));
  } else {
    for (Py_ssize_t i = 0; i < n; ++i) PyUnicode_WRITE(kind, dst, pos + i, ' ');
  }
}
}  // namespace

PyObject* pad_rows(const std::vector<GridColumn>& columns, int64_t n_lines, PyObject* sep, PyObject* end) {
  if (!PyUnicode_Check(sep) || !PyUnicode_Check(end)) {
    PyErr_SetString(PyExc_TypeError, "pad_rows: sep and end must be str");
    return nullptr;
  }
  for (const GridColumn& c : columns) {
    if (!PyUnicode_Check(c.title) || !PyList_Check(c.cells)) {
      PyErr_SetString(PyExc_TypeError, "pad_rows: each column needs a str title and a list of cells");
      return nullptr;
    }
    Py_ssize_t n_cells = PyList_GET_SIZE(c.cells);
    for (Py_ssize_t i = 0; i < n_cells; ++i) {
      if (!PyUnicode_Check(PyList_GET_ITEM(c.cells, i))) {
        PyErr_Format(PyExc_TypeError, "pad_rows: column '%U' has a cell that is not a str", c.title);
        return nullptr;
      }
    }
    for (int64_t i = 0; i + 1 < n_lines; ++i) {
      if (c.inv[i] < 0 || c.inv[i] >= n_cells) {
        PyErr_Format(PyExc_IndexError, "pad_rows: column '%U' line %lld refers to cell %lld of %zd", c.title,
                     static_cast<long long>(i + 1), static_cast<long long>(c.inv[i]), n_cells);
        return nullptr;
      }
    }
  }
  const Py_ssize_t sep_len = PyUnicode_GET_LENGTH(sep), end_len = PyUnicode_GET_LENGTH(end);
  const Py_UCS4 base_max = std::max(PyUnicode_MAX_CHAR_VALUE(sep), PyUnicode_MAX_CHAR_VALUE(end));
  PyObject* lines = PyList_New(static_cast<Py_ssize_t>(n_lines));
  if (!lines) return nullptr;
  std::vector<PyObject*> cells(columns.size());
  for (int64_t line = 0; line < n_lines; ++line) {
    // The line's cells; its length and widest character kind (canonical strings need the exact kind).
    Py_ssize_t len = end_len + (columns.empty() ? 0 : sep_len * static_cast<Py_ssize_t>(columns.size() - 1));
    Py_UCS4 maxchar = base_max;
    for (size_t j = 0; j < columns.size(); ++j) {
      const GridColumn& c = columns[j];
      PyObject* s = line == 0 ? c.title : PyList_GET_ITEM(c.cells, c.inv[line - 1]);
      cells[j] = s;
      len += std::max<Py_ssize_t>(PyUnicode_GET_LENGTH(s), c.width);
      maxchar = std::max(maxchar, PyUnicode_MAX_CHAR_VALUE(s));
    }
    PyObject* out = PyUnicode_New(len, maxchar);
    if (!out) {
      Py_DECREF(lines);
      return nullptr;
    }
    Py_ssize_t pos = 0;
    for (size_t j = 0; j < columns.size(); ++j) {
      if (j) {
        put(out, pos, sep);
        pos += sep_len;
      }
      Py_ssize_t n = PyUnicode_GET_LENGTH(cells[j]);
      Py_ssize_t pad = std::max<Py_ssize_t>(columns[j].width - n, 0);
      if (!columns[j].left) {
        spaces(out, pos, pad);
        pos += pad;
      }
      put(out, pos, cells[j]);
      pos += n;
      if (columns[j].left) {
        spaces(out, pos, pad);
        pos += pad;
      }
    }
    put(out, pos, end);
    PyList_SET_ITEM(lines, static_cast<Py_ssize_t>(line), out);
  }
  return lines;
}

// ------------------------------------------------------------------ labels
PyObject* tree_labels(PyObject* names, PyObject* types, const int64_t* keep, const int64_t* depth,
                      const uint8_t* repeat, int64_t n, bool flat) {
  if (!PyList_Check(names) || !PyList_Check(types)) {
    PyErr_SetString(PyExc_TypeError, "tree_labels: names and types must be lists");
    return nullptr;
  }
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(n));
  if (!out) return nullptr;
  std::string buf;
  std::vector<PyObject*> held;  // UTF-8 copies of names with lone surrogates (surrogatepass)
  // A str's UTF-8 form; a name with lone surrogates (legal in Python) through surrogatepass.
  auto utf8 = [&held](PyObject* str, Py_ssize_t* len) -> const char* {
    const char* u = PyUnicode_AsUTF8AndSize(str, len);
    if (u || !PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return u;
    PyErr_Clear();
    PyObject* b = PyUnicode_AsEncodedString(str, "utf-8", "surrogatepass");
    if (!b) return nullptr;
    held.push_back(b);
    *len = PyBytes_GET_SIZE(b);
    return PyBytes_AS_STRING(b);
  };
  auto release = [&held]() {
    for (PyObject* b : held) Py_DECREF(b);
    held.clear();
  };
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = keep[i];
    if (k < 0 || k >= PyList_GET_SIZE(names) || k >= PyList_GET_SIZE(types)) {
      Py_DECREF(out);
      PyErr_Format(PyExc_IndexError, "tree_labels: row %lld out of range", static_cast<long long>(k));
      return nullptr;
    }
    Py_ssize_t name_len = 0, type_len = 0;
    const char* name = utf8(PyList_GET_ITEM(names, k), &name_len);
    const char* type = name ? utf8(PyList_GET_ITEM(types, k), &type_len) : nullptr;
    if (!type) {
      release();
      Py_DECREF(out);
      return nullptr;
    }
    buf.clear();
    if (!flat && depth[i] != 0) {  // (as the f-string: no indent below depth 0, yet the last component)
      if (depth[i] > 0) buf.append(static_cast<size_t>(2 * depth[i]), ' ');
      const char* dot = static_cast<const char*>(memrchr(name, '.', static_cast<size_t>(name_len)));
      if (dot) {  // '.' is ASCII: never inside a multi-byte UTF-8 sequence
        name_len -= dot + 1 - name;
        name = dot + 1;
      }
    }
    buf.append(name, static_cast<size_t>(name_len)).append(" (").append(type, static_cast<size_t>(type_len)).append(")");
    if (repeat[i]) buf.append(" *");
    PyObject* s = PyUnicode_DecodeUTF8(buf.data(), static_cast<Py_ssize_t>(buf.size()),
                                       held.empty() ? "strict" : "surrogatepass");
    release();
    if (!s) {
      Py_DECREF(out);
      return nullptr;
    }
    PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), s);
  }
  return out;
}

// ------------------------------------------------------------------ factorize
namespace {
inline uint64_t key_of(int64_t x) { return static_cast<uint64_t>(x); }
inline uint64_t key_of(double x) {
  if (x != x) return 0x7ff8000000000000ull;  // every NaN
  if (x == 0.0) return 0;                     // -0.0 and 0.0
  uint64_t k;
  std::memcpy(&k, &x, sizeof(k));
  return k;
}
inline int64_t value_of(int64_t x) { return x; }
inline double value_of(double x) { return x == 0.0 ? 0.0 : x; }
inline uint64_t mix(uint64_t k) {  // splitmix64 finaliser
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ull;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebull;
  return k ^ (k >> 31);
}
}  // namespace

template <class T>
void factorize(const T* v, int64_t n, std::vector<T>* uniq, std::vector<int64_t>* first, std::vector<int64_t>* inv) {
  size_t cap = 8;
  while (cap < static_cast<size_t>(n) * 2) cap <<= 1;
  std::vector<int64_t> slot(cap, -1);  // index into uniq
  std::vector<uint64_t> keys;
  uniq->clear();
  first->clear();
  inv->resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t k = key_of(v[i]);
    size_t h = mix(k) & (cap - 1);
    while (slot[h] >= 0 && keys[slot[h]] != k) h = (h + 1) & (cap - 1);
    if (slot[h] < 0) {
      slot[h] = static_cast<int64_t>(keys.size());
      keys.push_back(k);
      uniq->push_back(value_of(v[i]));
      first->push_back(i);
    }
    (*inv)[i] = slot[h];
  }
}
template void factorize<int64_t>(const int64_t*, int64_t, std::vector<int64_t>*, std::vector<int64_t>*,
                                 std::vector<int64_t>*);
template void factorize<double>(const double*, int64_t, std::vector<double>*, std::vector<int64_t>*,
                                std::vector<int64_t>*);


// ------------------------------------------------------------------ number cells
namespace {
constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

double round3(double a) {  // report._round3: 3 significant digits, halves to even (np.round)
  double m = std::fabs(a);
  if (!(m < 1e18)) {  // (NaN, huge)
    double scale = std::pow(10.0, std::floor(std::log10(m)) - 2);
    return std::nearbyint(a / scale) * scale;
  }
  int mag = 0;  // floor(log10(max(|a|, 1))), by comparison: exact at powers of ten
  while (mag < 18 && m >= kPow10[mag + 1]) ++mag;
  double scale = mag >= 2 ? kPow10[mag - 2] : (mag == 1 ? 0.1 : 0.01);
  return std::nearbyint(a / scale) * scale;
}

// "<q / 10^decimals>.<rest>" of a non-negative integer count q of 10^-decimals units (decimals
// 1 or 2), written by hand: snprintf's format parsing was most of a time column's cost.
int fixed_point(int64_t q, int decimals, const char* unit, char* buf, size_t size) {
  char tmp[48];
  int n = 0;
  for (int i = 0; i < decimals; ++i, q /= 10) tmp[n++] = static_cast<char>('0' + q % 10);
  tmp[n++] = '.';
  do {
    tmp[n++] = static_cast<char>('0' + q % 10);
    q /= 10;
  } while (q > 0);
  size_t unit_len = std::strlen(unit);
  if (static_cast<size_t>(n) + unit_len + 1 > size) return 0;
  for (int i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  std::memcpy(buf + n, unit, unit_len + 1);
  return n + static_cast<int>(unit_len);
}

// v / 2^shift with 2 decimals, rounded like printf (the quotient is exact in binary: halves to even).
int binary_fixed(double v, int shift, const char* sign, const char* unit, char* buf, size_t size) {
  auto n = static_cast<int64_t>(v) * 100;
  int64_t q = n >> shift, rem = n & ((int64_t{1} << shift) - 1), half = int64_t{1} << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;
  int len = *sign ? 1 : 0;  // ("-" or "")
  if (len) buf[0] = '-';
  return len + fixed_point(q, 2, unit, buf + len, size - len);
}

// report.fmt_time / fmt_bytes / fmt_count / str(int): the output of Python's format (printf's
// %.Nf rounds the same way). Times already rounded to 3 digits and whole byte counts take
// integer paths where the decimals shown are exact (no halfway case to round); the rest goes
// through snprintf.
int format_number(double v, NumberKind kind, bool ascii, char* buf, size_t size) {
  if (v != v) return snprintf(buf, size, "-");
  switch (kind) {
    case kNumberTime:
      if (v >= 1e9) return v < 1e17 ? fixed_point(std::llround(v / 1e7), 2, " s", buf, size)
                                     : snprintf(buf, size, "%.2f s", v / 1e9);
      if (v >= 1e6) return fixed_point(std::llround(v / 1e4), 2, " ms", buf, size);
      if (v >= 1e3) {  // (a multiple of 10 ns: tenths of a us are exact, unless halfway: printf decides)
        const char* us = ascii ? " us" : " \xc2\xb5s";
        if (std::fmod(v, 100.0) == 50.0) return snprintf(buf, size, ascii ? "%.1f us" : "%.1f \xc2\xb5s", v / 1e3);
        return fixed_point(std::llround(v / 1e2), 1, us, buf, size);
      }
      return snprintf(buf, size, "%.0f ns", v);
    case kNumberBytes: {
      const char* sign = v < 0 ? "-" : "";
      double a = std::fabs(v);
      bool whole = a == std::floor(a) && a < 9e16;  // (v * 100 fits in int64)
      if (a >= 1073741824.0)
        return whole ? binary_fixed(a, 30, sign, " GiB", buf, size) : snprintf(buf, size, "%s%.2f GiB", sign, a / 1073741824.0);
      if (a >= 1048576.0)
        return whole ? binary_fixed(a, 20, sign, " MiB", buf, size) : snprintf(buf, size, "%s%.2f MiB", sign, a / 1048576.0);
      if (a >= 1024.0)
        return whole ? binary_fixed(a, 10, sign, " KiB", buf, size) : snprintf(buf, size, "%s%.2f KiB", sign, a / 1024.0);
      return snprintf(buf, size, "%s%lld B", sign, static_cast<long long>(a));
    }
    case kNumberCount: {
      double a = std::fabs(v);
      if (a >= 1e12) return snprintf(buf, size, "%.2fT", v / 1e12);
      if (a >= 1e9) return snprintf(buf, size, "%.2fG", v / 1e9);
      if (a >= 1e6) return snprintf(buf, size, "%.2fM", v / 1e6);
      if (a >= 1e3) return snprintf(buf, size, "%.2fK", v / 1e3);
      return snprintf(buf, size, "%lld", static_cast<long long>(v));
    }
    case kNumberInt:  // (integer arrays go through int_cells; a double here is whole)
      return snprintf(buf, size, "%.0f", v);
  }
  return snprintf(buf, size, "-");
}
}  // namespace

PyObject* number_cells(const double* values, int64_t n, NumberKind kind, bool ascii, std::vector<int64_t>* inv) {
  std::vector<double> rounded;
  if (kind == kNumberTime) {
    rounded.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) rounded[i] = round3(values[i]);
    values = rounded.data();
  }
  std::vector<double> uniq;
  std::vector<int64_t> first;
  factorize(values, n, &uniq, &first, inv);
  PyObject* cells = PyList_New(static_cast<Py_ssize_t>(uniq.size()));
  if (!cells) return nullptr;
  char buf[400];  // (%.2f of the largest double: 309 digits)
  for (size_t i = 0; i < uniq.size(); ++i) {
    int len = format_number(uniq[i], kind, ascii, buf, sizeof(buf));
    PyObject* s = PyUnicode_DecodeUTF8(buf, std::min<Py_ssize_t>(len, sizeof(buf) - 1), "strict");
    if (!s) {
      Py_DECREF(cells);
      return nullptr;
    }
    PyList_SET_ITEM(cells, static_cast<Py_ssize_t>(i), s);
  }
  return cells;
}

PyObject* int_cells(const int64_t* values, int64_t n, std::vector<int64_t>* inv) {
  std::vector<int64_t> uniq, first;
  factorize(values, n, &uniq, &first, inv);
  PyObject* cells = PyList_New(static_cast<Py_ssize_t>(uniq.size()));
  if (!cells) return nullptr;
  for (size_t i = 0; i < uniq.size(); ++i) {
    PyObject* s = PyUnicode_FromFormat("%lld", static_cast<long long>(uniq[i]));
    if (!s) {
      Py_DECREF(cells);
      return nullptr;
    }
    PyList_SET_ITEM(cells, static_cast<Py_ssize_t>(i), s);
  }
  return cells;
}


// ------------------------------------------------------------------ table body
namespace {
// A numeric column's distinct values formatted once each (as number_cells: a time column repeats
// few values, a count column fewer), as Latin-1 bytes: the cells are ASCII but for "µs".
struct NumberTexts {
  std::string text;              // the cells, back to back
  std::vector<int32_t> off, len;  // per distinct value
  std::vector<int64_t> inv;      // per row: its value's index
  std::vector<uint8_t> latin1;   // per distinct value: holds a non-ASCII character
};

void format_column(const RenderColumn& c, int64_t n, NumberTexts* out) {
  char buf[400];
  auto add = [&](int len) {
    len = std::max(0, std::min<int>(len, static_cast<int>(sizeof(buf)) - 1));
    int w = 0;  // UTF-8 "µ" (c2 b5) -> Latin-1 b5: one character
    bool wide = false;
    for (int r = 0; r < len; ++r) {
      if (static_cast<unsigned char>(buf[r]) == 0xc2 && r + 1 < len) continue;
      wide |= static_cast<unsigned char>(buf[r]) > 0x7f;
      buf[w++] = buf[r];
    }
    out->off.push_back(static_cast<int32_t>(out->text.size()));
    out->len.push_back(w);
    out->latin1.push_back(wide);
    out->text.append(buf, static_cast<size_t>(w));
  };
  if (c.kind == kNumberInt) {
    std::vector<int64_t> uniq, first;
    factorize(c.ivalues, n, &uniq, &first, &out->inv);
    for (int64_t v : uniq) add(snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v)));
    return;
  }
  std::vector<double> rounded, uniq;
  std::vector<int64_t> first;
  const double* values = c.values;
  if (c.kind == kNumberTime) {
    rounded.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) rounded[i] = round3(values[i]);
    values = rounded.data();
  }
  factorize(values, n, &uniq, &first, &out->inv);
  for (double v : uniq) add(format_number(v, static_cast<NumberKind>(c.kind), c.ascii, buf, sizeof(buf)));
}

// One cell to write: characters of one kind (a str's data, or Latin-1 bytes), and a "+" after them.
struct CellRef {
  const void* data;
  int kind;
  Py_ssize_t len;
  bool plus;
};

// The cell padded to its column's width at o, one byte per character (the usual table); returns
// the cursor after it (by value: it stays in a register, where a reference made it a store per byte).
inline Py_UCS1* put_bytes(Py_UCS1* o, const RenderColumn& c, const CellRef& x) {
  Py_ssize_t pad = std::max<Py_ssize_t>(c.width - x.len - (x.plus ? 1 : 0), 0);
  if (!c.left) {
    std::memset(o, ' ', static_cast<size_t>(pad));
    o += pad;
  }
  const auto* src = static_cast<const Py_UCS1*>(x.data);
  for (Py_ssize_t i = 0; i < x.len; ++i) o[i] = src[i];
  o += x.len;
  if (x.plus) *o++ = '+';
  if (c.left) {
    std::memset(o, ' ', static_cast<size_t>(pad));
    o += pad;
  }
  return o;
}

// The same at pos of a str of any kind; returns the position after it.
Py_ssize_t put_chars(PyObject* out, Py_ssize_t pos, const RenderColumn& c, const CellRef& x) {
  Py_ssize_t len = x.len + (x.plus ? 1 : 0);
  Py_ssize_t pad = std::max<Py_ssize_t>(c.width - len, 0);
  if (!c.left) {
    spaces(out, pos, pad);
    pos += pad;
  }
  int kind = PyUnicode_KIND(out);
  void* dst = PyUnicode_DATA(out);
  for (Py_ssize_t i = 0; i < x.len; ++i) PyUnicode_WRITE(kind, dst, pos + i, PyUnicode_READ(x.kind, x.data, i));
  pos += x.len;
  if (x.plus) PyUnicode_WRITE(kind, dst, pos++, '+');
  if (c.left) {
    spaces(out, pos, pad);
    pos += pad;
  }
  return pos;
}

inline CellRef str_cell(PyObject* s) {
  return {PyUnicode_DATA(s), static_cast<int>(PyUnicode_KIND(s)), PyUnicode_GET_LENGTH(s), false};
}
}  // namespace

PyObject* render_grid(std::vector<RenderColumn>& columns, int64_t n_rows, PyObject* sep, int64_t max_width,
                      int64_t* width_out, int64_t* kept_out) {
  if (!PyUnicode_Check(sep)) {
    PyErr_SetString(PyExc_TypeError, "render_grid: sep must be a str");
    return nullptr;
  }
  static const char* kMarks[] = {"", "+", "?", "(shared)"};
  std::vector<NumberTexts> texts(columns.size());
  // Widths: as the Python layout computes them, over every distinct cell the column holds
  // (a MAC column with lower bounds holds each value with and without "+", and "?").
  for (size_t j = 0; j < columns.size(); ++j) {
    RenderColumn& c = columns[j];
    if (!PyUnicode_Check(c.title)) {
      PyErr_SetString(PyExc_TypeError, "render_grid: titles must be str");
      return nullptr;
    }
    c.width = PyUnicode_GET_LENGTH(c.title);
    c.maxchar = 0x7f;
    if (c.kind < 0) {
      Py_ssize_t n_cells = PyList_GET_SIZE(c.cells);
      for (Py_ssize_t i = 0; i < n_cells; ++i) {
        PyObject* s = PyList_GET_ITEM(c.cells, i);
        if (!PyUnicode_Check(s)) {
          PyErr_Format(PyExc_TypeError, "render_grid: column '%U' has a cell that is not a str", c.title);
          return nullptr;
        }
        c.width = std::max<int64_t>(c.width, PyUnicode_GET_LENGTH(s));
      }
      for (int64_t r = 0; r < n_rows; ++r) {
        if (c.inv[r] < 0 || c.inv[r] >= n_cells) {
          PyErr_Format(PyExc_IndexError, "render_grid: column '%U' row %lld refers to cell %lld of %zd", c.title,
                       static_cast<long long>(r), static_cast<long long>(c.inv[r]), n_cells);
          return nullptr;
        }
        c.maxchar = std::max(c.maxchar, PyUnicode_MAX_CHAR_VALUE(PyList_GET_ITEM(c.cells, c.inv[r])));
      }
      continue;
    }
    bool bound = false, shared = false;
    for (int64_t r = 0; c.marks && r < n_rows; ++r) {
      if (c.marks[r] > 3) {
        PyErr_Format(PyExc_ValueError, "render_grid: column '%U' has an unknown mark", c.title);
        return nullptr;
      }
      bound |= c.marks[r] == 1 || c.marks[r] == 2;
      shared |= c.marks[r] == 3;
    }
    NumberTexts& t = texts[j];
    format_column(c, n_rows, &t);
    int64_t widest = 0;
    for (int32_t len : t.len) widest = std::max<int64_t>(widest, len);
    for (int64_t r = 0; r < n_rows; ++r)
      if ((!c.marks || c.marks[r] < 2) && t.latin1[t.inv[r]]) c.maxchar = 0xff;  // (a cell shown)
    if (shared) widest = std::max<int64_t>(widest, 8);
    if (bound) widest = n_rows ? widest + 1 : 1;  // every value with "+", and "?"
    c.width = std::max(c.width, widest);
  }
  // Columns on the right are dropped until the line fits (at least two stay).
  const Py_ssize_t sep_len = PyUnicode_GET_LENGTH(sep);
  size_t kept = columns.size();
  auto line_len = [&](size_t k) {
    int64_t len = k ? sep_len * static_cast<int64_t>(k - 1) : 0;
    for (size_t j = 0; j < k; ++j) len += columns[j].width;
    return len;
  };
  if (max_width > 0)
    while (kept > 2 && line_len(kept) > max_width) --kept;
  const int64_t L = line_len(kept);
  *width_out = L;
  *kept_out = static_cast<int64_t>(kept);
  // Each string takes the kind of the widest character it holds (Python compares canonical strings).
  Py_UCS4 title_max = kept > 1 ? PyUnicode_MAX_CHAR_VALUE(sep) : 0x7f, body_max = title_max;
  for (size_t j = 0; j < kept; ++j) {
    title_max = std::max(title_max, PyUnicode_MAX_CHAR_VALUE(columns[j].title));
    body_max = std::max(body_max, columns[j].maxchar);
  }
  PyObject* title = PyUnicode_New(L, title_max);
  int64_t body_len = n_rows ? n_rows * (L + 1) - 1 : 0;
  PyObject* body = title ? PyUnicode_New(body_len, body_max) : nullptr;
  if (!body) {
    Py_XDECREF(title);
    return nullptr;
  }
  // Titles take their column's alignment, as the cells do.
  Py_ssize_t pos = 0;
  for (size_t j = 0; j < kept; ++j) {
    if (j) {
      put(title, pos, sep);
      pos += sep_len;
    }
    pos = put_chars(title, pos, columns[j], str_cell(columns[j].title));
  }
  auto cell_of = [&](size_t j, int64_t r) -> CellRef {
    const RenderColumn& c = columns[j];
    if (c.kind < 0) return str_cell(PyList_GET_ITEM(c.cells, c.inv[r]));
    uint8_t mark = c.marks ? c.marks[r] : 0;
    if (mark == 2 || mark == 3)
      return {kMarks[mark], PyUnicode_1BYTE_KIND, static_cast<Py_ssize_t>(std::strlen(kMarks[mark])), false};
    const NumberTexts& t = texts[j];
    int64_t u = t.inv[r];
    return {t.text.data() + t.off[u], PyUnicode_1BYTE_KIND, t.len[u], mark == 1};
  };
  // The usual table (ASCII and "µ") is one byte per character, cells included: written through a
  // raw cursor; any other through PyUnicode_WRITE.
  const bool one_byte = PyUnicode_KIND(body) == PyUnicode_1BYTE_KIND && PyUnicode_KIND(sep) == PyUnicode_1BYTE_KIND;
  Py_UCS1* o = one_byte ? PyUnicode_1BYTE_DATA(body) : nullptr;
  const Py_UCS1* sep_bytes = one_byte ? PyUnicode_1BYTE_DATA(sep) : nullptr;
  pos = 0;
  for (int64_t r = 0; r < n_rows; ++r) {
    if (r) {
      if (o) *o++ = '\n';
      else PyUnicode_WRITE(PyUnicode_KIND(body), PyUnicode_DATA(body), pos++, '\n');
    }
    for (size_t j = 0; j < kept; ++j) {
      if (j && o) {
        for (Py_ssize_t i = 0; i < sep_len; ++i) o[i] = sep_bytes[i];
        o += sep_len;
      } else if (j) {
        put(body, pos, sep);
        pos += sep_len;
      }
      if (o) o = put_bytes(o, columns[j], cell_of(j, r));
      else pos = put_chars(body, pos, columns[j], cell_of(j, r));
    }
  }
  PyObject* result = PyTuple_Pack(2, title, body);
  Py_DECREF(title);
  Py_DECREF(body);
  return result;
}

}  // namespace torchscope
