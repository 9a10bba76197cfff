// torchscope attribution kernel: the common case of attribute.py (forward passes recorded on
// one thread, no autograd-engine work, no module call that raised) in one sweep over the
// recorded tables, instead of ~100 numpy calls. attribute.py checks nothing itself: the kernel
// says when a trace is outside that case, and the vectorised Python path handles it (it is
// also the reference the tests compare this kernel with). Plain C++: no Python, no torch.
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

}  // namespace torchscope
