// Python binding: a list of definitions over recorder.h (the ATen-side
// recorder), modules.h (markers, shape log, module walk) and kernels.h
// (the attribution and counting kernels). No ATen or torch
// Python headers here, so this file compiles fast.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <type_traits>

#include "kernels.h"
#include "modules.h"
#include "recorder.h"

namespace py = pybind11;
using namespace torchscope;

namespace {

template <class T>
py::array_t<T> to_array(std::vector<T>&& v, py::ssize_t cols) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  py::ssize_t n = cols > 0 ? static_cast<py::ssize_t>(heap->size()) / cols : heap->size();
  if (cols > 0) return py::array_t<T>({n, cols}, heap->data(), owner);
  return py::array_t<T>({n}, heap->data(), owner);
}

py::dict stats_dict(TensorStats& s) {
  py::dict d;
  d["own_params"] = to_array(std::move(s.own_params), 0);
  d["own_trainable"] = to_array(std::move(s.own_trainable), 0);
  d["buffer_elems"] = to_array(std::move(s.buffer_elems), 0);
  d["uninitialized"] = s.uninitialized;
  d["shared"] = s.shared;
  d["param_bytes"] = s.param_bytes;
  d["buffer_bytes"] = s.buffer_bytes;
  d["param_bytes_by_dtype"] = py::reinterpret_steal<py::dict>(s.param_bytes_by_dtype);
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "torchscope C++ recorder";

  if (!init_marker_type(m.ptr())) throw py::error_already_set();

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

  // Installs a marker as `forward` in each module's instance dict; returns the
  // previous instance-level forwards for restore_markers. On error, undoes what it did, then raises.
  m.def("install_markers", [](py::list modules, py::list skip) {
    PyObject* r = install_markers(modules.ptr(), skip.ptr());
    if (!r) throw py::error_already_set();
    return py::reinterpret_steal<py::list>(r);
  });
  m.def("restore_markers", [](py::list modules, py::list previous) {
    restore_markers(modules.ptr(), previous.ptr());
  });
  m.def("set_shape_log", &set_shape_log);
  // (calls: n x 2 array of call id, signature; signatures: (positional, keyword, output) each)
  m.def("take_shape_log", []() {
    std::vector<int64_t> calls;
    PyObject* sigs = nullptr;
    if (!take_shape_log(&calls, &sigs)) throw py::error_already_set();
    return py::make_tuple(to_array(std::move(calls), 2), py::reinterpret_steal<py::list>(sigs));
  });
  m.def("set_failure_log", [](py::object log) {
    if (!log.is_none() && !PyList_Check(log.ptr())) throw py::type_error("failure log must be a list or None");
    set_failure_log(log.is_none() ? nullptr : log.ptr());
  });
  m.def("walk_modules", [](py::object root, py::object script_module_type, py::object generator_type) {
    ModuleTree t;
    if (!generator_type.is_none() && !PyType_Check(generator_type.ptr()))
      throw py::type_error("walk_modules: generator_type must be a type or None");
    if (!walk_modules(root.ptr(), script_module_type.is_none() ? nullptr : script_module_type.ptr(),
                      generator_type.is_none() ? nullptr : generator_type.ptr(), &t))
      throw py::error_already_set();
    py::dict d;
    d["modules"] = py::reinterpret_steal<py::list>(t.modules);
    d["names"] = py::reinterpret_steal<py::list>(t.names);
    d["types"] = py::reinterpret_steal<py::list>(t.types);
    d["kernel_size"] = py::reinterpret_steal<py::list>(t.kernel_size);
    d["buffers"] = py::reinterpret_steal<py::list>(t.buffers);
    d["buffer_slots"] = py::reinterpret_steal<py::list>(t.buffer_slots);
    d["generators"] = py::reinterpret_steal<py::list>(t.generators);
    d["parent"] = to_array(std::move(t.parent), 0);
    d["depth"] = to_array(std::move(t.depth), 0);
    d["region"] = to_array(std::move(t.region), 0);
    d["shared_modules"] = t.shared_modules;
    return d;
  });
  m.def("tensor_stats", [](py::list modules, py::object uninitialized_type) {
    TensorStats s;
    if (!tensor_stats(modules.ptr(), uninitialized_type.is_none() ? nullptr : uninitialized_type.ptr(), &s))
      throw py::error_already_set();
    return stats_dict(s);
  });
  m.def("begin_tensor_stats", [](py::list modules, py::object uninitialized_type) {
    begin_tensor_stats(modules.ptr(), uninitialized_type.is_none() ? nullptr : uninitialized_type.ptr());
  });
  m.def("pause_tensor_stats", &pause_tensor_stats, py::arg("keep") = true);
  m.def("finish_tensor_stats", [](py::list modules) {
    TensorStats s;
    if (!finish_tensor_stats(modules.ptr(), &s)) throw py::error_already_set();
    return stats_dict(s);
  });
  // The report's line assembly: columns = [(title, cells, inv, width, left)], inv an int64
  // array of indices into cells (one per line below the titles).
  m.def("pad_rows", [](py::list columns, py::str sep, py::str end) {
    std::vector<GridColumn> cols;
    std::vector<py::array_t<int64_t, py::array::c_style | py::array::forcecast>> keep;  // inv arrays alive
    int64_t n_lines = -1;
    for (py::handle item : columns) {
      auto t = py::reinterpret_borrow<py::tuple>(item);
      if (t.size() != 5) throw py::value_error("pad_rows: each column is (title, cells, inv, width, left)");
      keep.emplace_back(t[2]);
      const auto& inv = keep.back();
      if (inv.ndim() != 1) throw py::value_error("pad_rows: inv must be one-dimensional");
      if (n_lines >= 0 && inv.shape(0) + 1 != n_lines) throw py::value_error("pad_rows: columns differ in length");
      n_lines = inv.shape(0) + 1;
      cols.push_back({t[0].ptr(), t[1].ptr(), inv.data(), t[3].cast<int64_t>(), t[4].cast<bool>()});
    }
    PyObject* r = pad_rows(cols, std::max<int64_t>(n_lines, 1), sep.ptr(), end.ptr());
    if (!r) throw py::error_already_set();
    return py::reinterpret_steal<py::list>(r);
  });
  // The torchscope table's (title line, body, width, columns kept): columns = [(title, left, kind,
  // data, index)], kind -1: data a list of str and index an int64 array of indices into it, one
  // per line; else a NUMBER_KINDS value: data the numbers (int64 for "int", else float64) and index
  // None or a uint8 mark per number (modules.h: render_grid). keep: None, or the rows of the numbers
  // and marks shown, in order (the summary's columns go in whole: no copy per column in Python).
  m.def("render_grid", [](py::list columns, py::object keep_obj, py::str sep, bool ascii, int64_t max_width) {
    using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
    using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
    using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
    std::vector<RenderColumn> cols;
    std::vector<py::object> alive;  // the converted arrays, until rendered
    std::vector<std::vector<int64_t>> gathered_i;  // numbers and marks of the kept rows
    std::vector<std::vector<double>> gathered_f;
    std::vector<std::vector<uint8_t>> gathered_m;
    gathered_i.reserve(py::len(columns));
    gathered_f.reserve(py::len(columns));
    gathered_m.reserve(py::len(columns));
    const int64_t* keep = nullptr;
    int64_t n_keep = -1;
    if (!keep_obj.is_none()) {
      I64 k(keep_obj);
      if (k.ndim() != 1) throw py::value_error("render_grid: keep must be one-dimensional");
      keep = k.data();
      n_keep = k.shape(0);
      alive.push_back(k);
    }
    // The kept rows of a column of numbers (all of them without keep), bounds-checked.
    auto gather = [&](auto* data, int64_t n, auto& store) {
      using T = std::remove_const_t<std::remove_pointer_t<decltype(data)>>;
      if (!keep) return data;
      auto& out = store.emplace_back(static_cast<size_t>(n_keep));
      for (int64_t r = 0; r < n_keep; ++r) {
        if (keep[r] < 0 || keep[r] >= n) throw py::index_error("render_grid: keep refers past a column's end");
        out[r] = static_cast<T>(data[keep[r]]);
      }
      return const_cast<const T*>(out.data());
    };
    int64_t n_rows = -1;
    for (py::handle item : columns) {
      auto t = py::reinterpret_borrow<py::tuple>(item);
      if (t.size() != 5) throw py::value_error("render_grid: each column is (title, left, kind, data, index)");
      RenderColumn c;
      c.title = t[0].ptr();
      c.left = t[1].cast<bool>();
      c.kind = t[2].cast<int>();
      c.ascii = ascii;
      int64_t n;
      if (c.kind < 0) {
        if (!PyList_Check(t[3].ptr())) throw py::type_error("render_grid: cells must be a list of str");
        I64 inv(t[4]);
        if (inv.ndim() != 1) throw py::value_error("render_grid: index must be one-dimensional");
        c.cells = t[3].ptr();
        c.inv = inv.data();
        n = inv.shape(0);
        alive.push_back(inv);
      } else {
        if (c.kind > kNumberInt) throw py::value_error("render_grid: unknown number kind");
        py::array a = py::reinterpret_borrow<py::array>(py::array::ensure(t[3]));
        if (!a || a.ndim() != 1) throw py::value_error("render_grid: numbers must be a one-dimensional array");
        n = a.shape(0);
        if (c.kind == kNumberInt) {
          if (a.dtype().kind() != 'i') throw py::type_error("render_grid: kind 'int' takes a signed integer array");
          I64 v(a);
          c.ivalues = gather(v.data(), n, gathered_i);
          alive.push_back(v);
        } else {
          F64 v(a);
          c.values = gather(v.data(), n, gathered_f);
          alive.push_back(v);
        }
        if (!t[4].is_none()) {
          U8 m(t[4]);
          if (m.ndim() != 1 || m.shape(0) != n) throw py::value_error("render_grid: one mark per row");
          c.marks = gather(m.data(), n, gathered_m);
          alive.push_back(m);
        }
        if (keep) n = n_keep;
      }
      if (n_rows >= 0 && n != n_rows) throw py::value_error("render_grid: columns differ in length");
      n_rows = n;
      cols.push_back(c);
    }
    int64_t width = 0, kept = 0;
    PyObject* r = render_grid(cols, std::max<int64_t>(n_rows, 0), sep.ptr(), max_width, &width, &kept);
    if (!r) throw py::error_already_set();
    auto pair = py::reinterpret_steal<py::tuple>(r);
    return py::make_tuple(pair[0], pair[1], width, kept);
  });
  m.def("tree_labels", [](py::list names, py::list types, py::array_t<int64_t, py::array::c_style | py::array::forcecast> keep,
                          py::array_t<int64_t, py::array::c_style | py::array::forcecast> depth,
                          py::array_t<uint8_t, py::array::c_style | py::array::forcecast> repeat, bool flat) {
    if (keep.ndim() != 1 || depth.ndim() != 1 || repeat.ndim() != 1 || depth.size() != keep.size() ||
        repeat.size() != keep.size())
      throw py::value_error("tree_labels: keep, depth and repeat must be 1-D arrays of one length");
    PyObject* r = tree_labels(names.ptr(), types.ptr(), keep.data(), depth.data(), repeat.data(), keep.size(), flat);
    if (!r) throw py::error_already_set();
    return py::reinterpret_steal<py::list>(r);
  });
  // (distinct formatted cells, index per value) of a numeric column; kind: NUMBER_KINDS.
  m.def("number_cells", [](py::array values, int kind, bool ascii) {
    if (values.ndim() != 1) throw py::value_error("number_cells: expects a one-dimensional array");
    if (kind < kNumberTime || kind > kNumberInt) throw py::value_error("number_cells: unknown kind");
    std::vector<int64_t> inv;
    PyObject* cells;
    if (kind == kNumberInt) {  // integers as they are (a double holds only 53 bits)
      if (values.dtype().kind() != 'i') throw py::type_error("number_cells: kind 'int' takes a signed integer array");
      auto a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(values);
      cells = int_cells(a.data(), a.shape(0), &inv);
    } else {
      auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(values);
      cells = number_cells(a.data(), a.shape(0), static_cast<NumberKind>(kind), ascii, &inv);
    }
    if (!cells) throw py::error_already_set();
    return py::make_tuple(py::reinterpret_steal<py::list>(cells), to_array(std::move(inv), 0));
  });
  // (first position of each distinct object, index per position) of items[keep[i]], by
  // identity: rows of calls with one shape signature share one object (report.shape_cells).
  m.def("factorize_objects", [](py::list items, py::array_t<int64_t, py::array::c_style | py::array::forcecast> keep) {
    if (keep.ndim() != 1) throw py::value_error("factorize_objects: keep must be one-dimensional");
    int64_t n = keep.size(), len = static_cast<int64_t>(PyList_GET_SIZE(items.ptr()));
    std::vector<int64_t> ids(static_cast<size_t>(n)), uniq, first, inv;
    for (int64_t i = 0; i < n; ++i) {
      int64_t k = keep.data()[i];
      if (k < 0 || k >= len) throw py::index_error("factorize_objects: keep out of range");
      ids[i] = static_cast<int64_t>(reinterpret_cast<intptr_t>(PyList_GET_ITEM(items.ptr(), k)));
    }
    factorize(ids.data(), n, &uniq, &first, &inv);
    return py::make_tuple(to_array(std::move(first), 0), to_array(std::move(inv), 0));
  });
  // (distinct values in order of first appearance, first index of each, index per element)
  // of a 1-D numeric array: floats as float64, integers and bools as int64.
  m.def("factorize", [](py::array values) -> py::tuple {
    if (values.ndim() != 1) throw py::value_error("factorize: expects a one-dimensional array");
    char kind = values.dtype().kind();
    std::vector<int64_t> first, inv;
    if (kind == 'f') {
      auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(values);
      std::vector<double> uniq;
      factorize(a.data(), a.shape(0), &uniq, &first, &inv);
      return py::make_tuple(to_array(std::move(uniq), 0), to_array(std::move(first), 0), to_array(std::move(inv), 0));
    }
    if (kind != 'i' && kind != 'u' && kind != 'b')
      throw py::type_error(std::string("factorize: expects an integer, bool or float array, got dtype kind '") +
                           kind + "'");
    auto a = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(values);
    std::vector<int64_t> uniq;
    factorize(a.data(), a.shape(0), &uniq, &first, &inv);
    return py::make_tuple(to_array(std::move(uniq), 0), to_array(std::move(first), 0), to_array(std::move(inv), 0));
  });

  m.def("collect", []() {
    Snapshot s = collect();
    py::dict d;
    d["ops"] = to_array(std::move(s.ops), kOpCols);
    d["args"] = to_array(std::move(s.args), 0);
    d["calls"] = to_array(std::move(s.calls), kCallCols);
    d["mem"] = to_array(std::move(s.mem), kMemCols);
    d["names"] = s.names;
    d["dropped_ends"] = s.dropped_ends;
    d["foreign_calls"] = s.foreign_calls;
    return d;
  });

  // None when the trace is outside the kernel's case (attribute.py then does it all).
  m.def("attribute_forward", [](py::array_t<int64_t, py::array::c_style | py::array::forcecast> ops,
                                py::array_t<int64_t, py::array::c_style | py::array::forcecast> calls,
                                py::object mem, py::array_t<uint8_t, py::array::c_style | py::array::forcecast> engine,
                                int64_t iters, int64_t device_type) -> py::object {
    using Table = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
    if ((ops.ndim() != 2 || ops.shape(1) != kOpCols) && ops.size())
      throw py::value_error("attribute_forward: ops must be n x len(OP_COLS)");
    if ((calls.ndim() != 2 || calls.shape(1) != kCallCols) && calls.size())
      throw py::value_error("attribute_forward: calls must be n x len(CALL_COLS)");
    Table mem_t;
    if (!mem.is_none()) {
      mem_t = Table::ensure(mem);
      if (!mem_t || ((mem_t.ndim() != 2 || mem_t.shape(1) != kMemCols) && mem_t.size()))
        throw py::value_error("attribute_forward: mem must be n x len(MEM_COLS)");
    }
    ForwardTables t{ops.data(), ops.size() / kOpCols, calls.data(), calls.size() / kCallCols,
                    mem.is_none() ? nullptr : mem_t.data(), mem.is_none() ? 0 : mem_t.size() / kMemCols,
                    engine.data(), engine.size(), iters, device_type};
    ForwardRows r;
    if (!attribute_forward(t, &r).empty()) return py::none();
    py::dict d;
    d["call_ids"] = to_array(std::move(r.call_ids), 0);
    d["module"] = to_array(std::move(r.module), 0);
    d["parent"] = to_array(std::move(r.parent), 0);
    d["depth"] = to_array(std::move(r.depth), 0);
    d["num_ops"] = to_array(std::move(r.num_ops), 0);
    d["fwd_time_ns"] = to_array(std::move(r.fwd_time_ns), 0);
    d["fwd_self_time_ns"] = to_array(std::move(r.fwd_self_time_ns), 0);
    d["fwd_time_min_ns"] = to_array(std::move(r.fwd_time_min_ns), 0);
    d["op_row"] = to_array(std::move(r.op_row), 0);
    d["differing_iters"] = r.differing_iters;
    if (r.memory) {
      py::dict mem_cols;
      mem_cols["allocated"] = to_array(std::move(r.mem_allocated), 0);
      mem_cols["freed"] = to_array(std::move(r.mem_freed), 0);
      mem_cols["retained"] = to_array(std::move(r.mem_retained), 0);
      mem_cols["peak"] = to_array(std::move(r.mem_peak), 0);
      d["mem"] = mem_cols;
      d["peak_memory"] = r.has_pass_peak ? py::object(py::int_(r.pass_peak)) : py::object(py::none());
    } else {
      d["mem"] = py::none();
      d["peak_memory"] = py::none();
    }
    return d;
  });

  // count.py's op-tree flags (bool arrays): some proper ancestor / descendant flagged.
  for (bool under : {true, false}) {
    m.def(under ? "flags_under" : "flags_above",
          [under](py::array_t<bool, py::array::c_style | py::array::forcecast> flag,
                  py::array_t<int64_t, py::array::c_style | py::array::forcecast> parent) {
            if (flag.ndim() != 1 || parent.ndim() != 1 || flag.size() != parent.size())
              throw py::value_error("flags: flag and parent must be 1-D arrays of one length");
            py::array_t<bool> out(flag.size());
            auto* f = reinterpret_cast<const uint8_t*>(flag.data());
            auto* o = reinterpret_cast<uint8_t*>(out.mutable_data());
            if (!(under ? flags_under : flags_above)(f, parent.data(), flag.size(), o))
              throw py::value_error("flags: ops must come after their parent (parent[i] < i)");
            return out;
          });
  }

  // Integer subtree sums over a pre-order tree (kernels.h); None for floats (numpy keeps their
  // order of additions) or a tree out of pre-order.
  m.def("subtree_sum", [](py::array values, py::array_t<int64_t, py::array::c_style | py::array::forcecast> parent)
                           -> py::object {
    char kind = values.dtype().kind();
    if (kind != 'i' && kind != 'u' && kind != 'b') return py::none();
    auto v = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(values);
    if (!v || v.ndim() != 1 || parent.ndim() != 1 || v.size() != parent.size())
      throw py::value_error("subtree_sum: values and parent must be 1-D arrays of one length");
    py::array_t<int64_t> out(v.size());
    if (!subtree_sum(v.data(), parent.data(), v.size(), out.mutable_data())) return py::none();
    return std::move(out);
  });

  using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
  using Flags = py::array_t<bool, py::array::c_style | py::array::forcecast>;
  auto op_table = [](const I64& ops) {
    if ((ops.ndim() != 2 || ops.shape(1) != kOpCols) && ops.size()) throw py::value_error("ops must be n x len(OP_COLS)");
    return ops.size() / kOpCols;
  };
  auto flags_of = [](const Flags& f, int64_t n) {
    if (f.ndim() != 1 || f.size() != n) throw py::value_error("a flag array does not match the ops");
    return reinterpret_cast<const uint8_t*>(f.data());
  };
  // (todo ops, group per todo op, first op per group) of one counting round (kernels.h).
  m.def("count_todo", [op_table, flags_of](I64 ops, I64 args, Flags candidate, Flags counted) {
    int64_t n = op_table(ops);
    CountTodo t;
    if (!count_todo(ops.data(), n, args.data(), args.size(), flags_of(candidate, n), flags_of(counted, n), &t))
      throw py::value_error("count_todo: malformed op table (parent or argument offsets)");
    return py::make_tuple(to_array(std::move(t.todo), 0), to_array(std::move(t.group), 0), to_array(std::move(t.rep), 0));
  });
  // The ops to report as uncounted (bool per op; kernels.h).
  m.def("count_top", [op_table, flags_of](I64 ops, Flags mask, Flags counted, Flags failed, Flags scope_name) {
    int64_t n = op_table(ops);
    py::array_t<bool> top(n);
    if (scope_name.ndim() != 1) throw py::value_error("count_top: scope_name must be one-dimensional");
    if (!count_top(ops.data(), n, flags_of(mask, n), flags_of(counted, n), flags_of(failed, n),
                   reinterpret_cast<const uint8_t*>(scope_name.data()), scope_name.size(),
                   reinterpret_cast<uint8_t*>(top.mutable_data())))
      throw py::value_error("count_top: malformed op table (parent or name ids)");
    return top;
  });

  // api._build's count columns of the forward case (kernels.h); None when they cannot be made so.
  m.def("count_columns", [](I64 op_row, I64 op_macs, Flags listed, I64 parent, I64 module,
                            py::array_t<double, py::array::c_style | py::array::forcecast> fwd_time_ns,
                            I64 params, I64 trainable, I64 buffers) -> py::object {
    int64_t n_ops = op_row.size(), n_rows = module.size(), n_modules = params.size();
    if (op_macs.size() != n_ops || listed.size() != n_ops || parent.size() != n_rows ||
        fwd_time_ns.size() != n_rows || trainable.size() != n_modules || buffers.size() != n_modules)
      throw py::value_error("count_columns: arrays of mismatched lengths");
    CountColumns c;
    if (!count_columns(op_row.data(), op_macs.data(), reinterpret_cast<const uint8_t*>(listed.data()), n_ops,
                       parent.data(), module.data(), fwd_time_ns.data(), n_rows, params.data(), trainable.data(),
                       buffers.data(), n_modules, &c))
      return py::none();
    py::dict d;
    d["self_macs"] = to_array(std::move(c.self_macs), 0);
    d["macs"] = to_array(std::move(c.macs), 0);
    d["flops"] = to_array(std::move(c.flops), 0);
    d["macs_uncounted_ops"] = to_array(std::move(c.macs_uncounted), 0);
    d["params"] = to_array(std::move(c.params), 0);
    d["trainable_params"] = to_array(std::move(c.trainable), 0);
    d["buffers"] = to_array(std::move(c.buffers), 0);
    d["flops_per_s"] = to_array(std::move(c.flops_per_s), 0);
    py::list repeat(n_rows);
    for (int64_t r = 0; r < n_rows; ++r) repeat[r] = py::bool_(c.repeat[r] != 0);
    d["repeat"] = repeat;
    d["total_macs"] = c.total_macs;
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
  py::dict kinds;
  kinds["time"] = int(kNumberTime);
  kinds["bytes"] = int(kNumberBytes);
  kinds["count"] = int(kNumberCount);
  kinds["int"] = int(kNumberInt);
  m.attr("NUMBER_KINDS") = kinds;
}
