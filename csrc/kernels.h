// torchscope kernels: the hot steps of the attribute and count stages in C, one sweep each
// instead of dozens of numpy calls (each ~2-10 us on 601 rows).
// - attribute_forward: attribute.py's common case (forward passes recorded on one thread,
//   no autograd-engine work, no module call that raised). attribute.py checks nothing itself:
//   the kernel says when a trace is outside that case, and the vectorised Python path, the
//   reference the tests compare the kernel with, handles it.
// - flags_under / flags_above / count_todo / count_top: count.py's op-tree steps (numpy
//   twins in _pyrecorder.py for the pure-Python recorder).
// Plain C++: no Python, no torch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace torchscope {

struct ForwardTables {      // row-major int64 tables as collect() returns them (recorder.h columns)
  const int64_t* ops;       // n_ops x kOpCols
  int64_t n_ops;
  const int64_t* calls;     // n_calls x kCallCols
  int64_t n_calls;
  const int64_t* mem;       // n_mem x kMemCols (nullptr: memory not tracked)
  int64_t n_mem;
  const uint8_t* engine_name;  // per op-name id: an autograd-engine record (attribute.ENGINE_PREFIX)
  int64_t n_names;
  int64_t iters;            // measured iterations 0..iters-1 (warm-up ones are negative)
  int64_t device_type;      // memory events of this device type only
};

struct ForwardRows {        // one row per module call of iteration 0 (attribute.Attribution)
  std::vector<int64_t> call_ids, module, parent, depth, num_ops;
  std::vector<double> fwd_time_ns, fwd_self_time_ns, fwd_time_min_ns;
  std::vector<int64_t> op_row;            // per op
  std::vector<int64_t> differing_iters;   // iterations whose calls differ from iteration 0's (times unused)
  bool memory = false;                    // the four memory columns and peak below are set
  std::vector<int64_t> mem_allocated, mem_freed, mem_retained, mem_peak;
  bool has_pass_peak = false;
  int64_t pass_peak = 0;
};

// Returns "" and fills out, or the reason the trace is outside the kernel's case.
std::string attribute_forward(const ForwardTables& t, ForwardRows* out);

// Op-tree flags for count.py (ops nest: parent[i] < i, -1 for none; false if not so):
// under[i] = some proper ancestor of op i is flagged; above[i] = some proper descendant is.
bool flags_under(const uint8_t* flag, const int64_t* parent, int64_t n, uint8_t* under);
bool flags_above(const uint8_t* flag, const int64_t* parent, int64_t n, uint8_t* above);

// attribute.subtree_sum for integers: out[i] = values[i] plus out[c] of each child c. Rows in
// pre-order (parent[i] < i, -1 for a root); false if not so (numpy then does it level by level).
bool subtree_sum(const int64_t* values, const int64_t* parent, int64_t n, int64_t* out);

// count.count_ops, one round: the outermost candidates (no candidate above them) not yet
// counted, grouped by (name, packed arguments): todo ops, group of each, first op of each group.
struct CountTodo {
  std::vector<int64_t> todo, group, rep;
};
bool count_todo(const int64_t* ops, int64_t n_ops, const int64_t* args, int64_t n_args, const uint8_t* candidate,
                const uint8_t* counted, CountTodo* out);
// count.count_ops, the ops reported as uncounted: in the mask, not counted, with no counted op
// above or below them, not a transparent scope (scope_name per name id); one per chain: the
// outermost failed formula op in it, else its top op.
bool count_top(const int64_t* ops, int64_t n_ops, const uint8_t* mask, const uint8_t* counted,
               const uint8_t* failed, const uint8_t* scope_name, int64_t n_names, uint8_t* top);

// api._build's per-row count columns of the forward case, in one sweep: per op its row (-1: none),
// its MACs and whether it is listed as uncounted work; per row its parent row (pre-order) and
// module index; per module index its parameters (children included), trainable ones and buffer
// elements; per row its forward time (for FLOP/s). False if the rows are not in pre-order or an
// index is out of range.
struct CountColumns {
  std::vector<int64_t> self_macs, macs, flops, macs_uncounted, params, trainable, buffers;
  std::vector<uint8_t> repeat;   // a module's second and later calls
  std::vector<double> flops_per_s;
  int64_t total_macs = 0;        // every op in a row
};
bool count_columns(const int64_t* op_row, const int64_t* op_macs, const uint8_t* listed, int64_t n_ops,
                   const int64_t* parent, const int64_t* module, const double* fwd_time_ns, int64_t n_rows,
                   const int64_t* params, const int64_t* trainable, const int64_t* buffers, int64_t n_modules,
                   CountColumns* out);

}  // namespace torchscope
