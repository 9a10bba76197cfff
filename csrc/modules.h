// torchscope's Python-object side: what touches nn.Module and tensor objects
// (module markers, the module-call shape log, the module tree walk and the
// parameter statistics), plus the report's line assembly. CPython API plus
// torch's THPVariable header; no pybind11 here, so bindings.cpp stays a thin
// list of definitions.
//
// Every function runs with the GIL held. Functions returning bool return false
// with a Python error set.
#pragma once
#include <Python.h>

#include <cstdint>
#include <vector>

namespace torchscope {

// ------------------------------------------------------------------ markers
// ModuleMarker: a C callable installed as a module instance's `forward` that
// brackets the original bound forward with module_enter/module_exit.
bool init_marker_type(PyObject* module);  // PyType_Ready + module.ModuleMarker
// Installs markers (skip[i] true: leave module i alone). Returns the previous
// instance-level forwards (None: none; Ellipsis: skipped), or NULL after undoing.
PyObject* install_markers(PyObject* modules, PyObject* skip);
void restore_markers(PyObject* modules, PyObject* previous);

// ------------------------------------------------------------------ shape log
// Input/output shapes of each recorded module call, interned: calls with the
// same structure share one signature, decoded into Python objects once.
void set_shape_log(bool enabled);
// Returns (calls, signatures): calls = [call_id, signature, ...] pairs;
// signatures[i] = (positional, keyword or None, output) with tensors as
// torch.Size, tuples/lists as tuples, dicts as dicts, anything else None.
// Clears the log. Returns false with a Python error set.
bool take_shape_log(std::vector<int64_t>* calls, PyObject** signatures);
// A list receiving (module_index, positional, keyword, None) for every failed
// module call, innermost first; NULL to stop. Borrowed by the caller's ref.
void set_failure_log(PyObject* list);

// ------------------------------------------------------------------ structure
struct ModuleTree {  // pre-order, each module once (named_modules() semantics)
  PyObject* modules = nullptr;      // list of module objects      (new references,
  PyObject* names = nullptr;        // list of qualified names      owned by the
  PyObject* types = nullptr;        // list of class names          caller)
  PyObject* kernel_size = nullptr;  // list: instance attribute `kernel_size` or None
  PyObject* buffers = nullptr;      // list of distinct buffer tensors
  PyObject* buffer_slots = nullptr; // list of (module, name, tensor): every registered buffer
  PyObject* generators = nullptr;   // list of distinct generator_type instances held as module attributes
  std::vector<int64_t> parent, depth;
  std::vector<int64_t> region;      // RegionKind per module
  bool shared_modules = false;      // a module is the child of more than one parent
};
enum RegionKind : int64_t { kRegionNone = 0, kRegionCompiledInPlace = 1, kRegionCompiled = 2,
                            kRegionScripted = 3 };
bool walk_modules(PyObject* root, PyObject* script_module_type, PyObject* generator_type, ModuleTree* out);

struct TensorStats {
  std::vector<int64_t> own_params, own_trainable;  // each Parameter counted at its first module
  std::vector<int64_t> buffer_elems;               // elements of each module's own buffers
  std::vector<int64_t> uninitialized;              // modules holding lazy (uninitialized) params
  bool shared = false;                             // some Parameter appears in several modules
  int64_t param_bytes = 0, buffer_bytes = 0;       // distinct tensors
  PyObject* param_bytes_by_dtype = nullptr;        // dict torch.dtype -> bytes (new reference)
};
bool tensor_stats(PyObject* modules, PyObject* uninitialized_type, TensorStats* out);
// The same counts gathered while the model runs: from begin_tensor_stats on, a marker counts its
// module at the end of the module's first call that returns (its tensors are in cache then);
// pause stops that (keep=false also drops what was counted); finish counts the modules the
// pass did not (never called, lazy, unusual parameter dicts) and returns what
// tensor_stats(modules) returns. `modules`: the list the markers were installed on (held until
// finish or a pause that does not keep).
void begin_tensor_stats(PyObject* modules, PyObject* uninitialized_type);
void pause_tensor_stats(bool keep);
bool finish_tensor_stats(PyObject* modules, TensorStats* out);

// ------------------------------------------------------------------ table text
// The report's per-line loop: line 0 holds the titles, line i > 0 the cell
// cells[inv[i - 1]] of each column, padded to the column's width (left or right
// aligned, never cut), joined by sep, with end appended. The report decides the
// layout (columns, widths, alignment); this only assembles the strings.
struct GridColumn {
  PyObject* title;     // str (borrowed)
  PyObject* cells;     // list of distinct cell strings (borrowed)
  const int64_t* inv;  // per line below the titles: index into cells
  int64_t width;
  bool left;
};
// Returns a new list of str, or NULL with a Python error set.
PyObject* pad_rows(const std::vector<GridColumn>& columns, int64_t n_lines, PyObject* sep, PyObject* end);

// The torchscope style's row labels: for each kept row k (depth d, repeat flag r),
// "  " * d + (the last component of names[k], or all of it at depth 0 or when flat) +
// " (" + types[k] + ")" + (" *" if r); flat: no indent and whole names (sorted tables).
// Returns a new list of str, or NULL with a Python error set.
PyObject* tree_labels(PyObject* names, PyObject* types, const int64_t* keep, const int64_t* depth,
                      const uint8_t* repeat, int64_t n, bool flat);

// Distinct values of v[0..n) in order of first appearance (a hash table: no sort), the
// index of each one's first appearance, and per element the index of its value in uniq.
// Doubles: all NaNs are one value, -0.0 is 0.0. The report's column cells are formatted
// once per distinct value (np.unique did the same job at ~40 us a column, this at ~3).
template <class T>
void factorize(const T* v, int64_t n, std::vector<T>* uniq, std::vector<int64_t>* first, std::vector<int64_t>* inv);

// The report's numeric cells: the distinct values of values[0..n) formatted like report.py's
// fmt_time (after rounding to 3 significant digits, as report._round3), fmt_bytes,
// fmt_count or str(int); NaN is "-". Returns the list of distinct cells (new reference, or
// NULL with a Python error set) and, per value, its cell's index in inv.
enum NumberKind : int { kNumberTime = 0, kNumberBytes = 1, kNumberCount = 2, kNumberInt = 3 };
PyObject* number_cells(const double* values, int64_t n, NumberKind kind, bool ascii, std::vector<int64_t>* inv);
// The same for kNumberInt over int64 values (exact beyond 2**53).
PyObject* int_cells(const int64_t* values, int64_t n, std::vector<int64_t>* inv);


// The torchscope table's title line and body (its rows joined by "\n"), in one pass: no string per
// cell or per line. A column is either distinct str cells with an index per row (kind < 0), or
// numbers formatted here like number_cells (values, or ivalues for kNumberInt) with an optional
// mark per row: 1 appends "+" (a lower bound), 2 shows "?" (unknown), 3 shows "(shared)". Widths are
// those of the Python layout (report.py: every distinct cell a column holds, and its title);
// right-hand columns are dropped while the line is wider than max_width (> 0; two always stay).
// Returns (title, body) as a new tuple, or NULL with a Python error set.
struct RenderColumn {
  PyObject* title = nullptr;     // str (borrowed)
  bool left = false;
  int kind = -1;                 // -1: cells; else a NumberKind
  PyObject* cells = nullptr;     // list of str (borrowed)
  const int64_t* inv = nullptr;  // per row: index into cells
  const double* values = nullptr;
  const int64_t* ivalues = nullptr;
  const uint8_t* marks = nullptr;  // per row, or null
  bool ascii = false;            // "us", not "µs"
  int64_t width = 0;             // (set by render_grid)
  Py_UCS4 maxchar = 0x7f;        // (set by render_grid: of the cells shown)
};
PyObject* render_grid(std::vector<RenderColumn>& columns, int64_t n_rows, PyObject* sep, int64_t max_width,
                      int64_t* width, int64_t* kept);

}  // namespace torchscope
