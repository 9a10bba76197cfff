// Kernels (kernels.h): each step mirrors the numpy code of attribute.py or count.py it
// replaces, named in the comments, so that both give the same numbers.
#include "kernels.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "recorder.h"

namespace torchscope {
namespace {

constexpr int64_t kScopeFunction = 0;  // at::RecordScope::FUNCTION (attribute.SCOPE_FUNCTION)

// max(a[lo:hi]) for many ranges (attribute._range_max): maxima of blocks of 64, a sparse table
// over those, and a scan of the partial blocks at both ends. O(n) memory.
class RangeMax {
 public:
  explicit RangeMax(const std::vector<int64_t>& a) : a_(a) {
    int64_t nb = (static_cast<int64_t>(a.size()) + kBlock - 1) / kBlock;
    std::vector<int64_t> level0(nb, std::numeric_limits<int64_t>::min());
    for (size_t i = 0; i < a.size(); ++i) level0[i / kBlock] = std::max(level0[i / kBlock], a[i]);
    table_.push_back(std::move(level0));
    for (int64_t span = 1; span * 2 <= nb; span *= 2) {
      const auto& prev = table_.back();
      std::vector<int64_t> next(prev.size() - span);
      for (size_t i = 0; i < next.size(); ++i) next[i] = std::max(prev[i], prev[i + span]);
      table_.push_back(std::move(next));
    }
  }
  int64_t max(int64_t lo, int64_t hi) const {  // requires lo < hi
    int64_t b_lo = lo / kBlock, b_hi = (hi - 1) / kBlock;
    if (b_hi - b_lo < 2) return scan(lo, hi);
    int64_t m = std::max(scan(lo, (b_lo + 1) * kBlock), scan(b_hi * kBlock, hi));
    int64_t first = b_lo + 1, count = b_hi - first;  // full blocks [first, b_hi)
    int k = 63 - __builtin_clzll(static_cast<uint64_t>(count));
    return std::max({m, table_[k][first], table_[k][b_hi - (int64_t{1} << k)]});
  }

 private:
  static constexpr int64_t kBlock = 64;
  int64_t scan(int64_t lo, int64_t hi) const {
    int64_t m = std::numeric_limits<int64_t>::min();
    for (int64_t i = lo; i < hi; ++i) m = std::max(m, a_[i]);
    return m;
  }
  const std::vector<int64_t>& a_;
  std::vector<std::vector<int64_t>> table_;
};

// Inclusive sums over the call tree in place (rows are in entry order: pre-order, which the
// exported subtree_sum below requires and rows always meet).
void subtree_sum(std::vector<int64_t>& v, const std::vector<int64_t>& parent) {
  torchscope::subtree_sum(v.data(), parent.data(), static_cast<int64_t>(v.size()), v.data());
}

double median(std::vector<double>& v) {  // numpy's: the mean of the middle two for an even count
  size_t k = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + k, v.end());
  if (v.size() % 2) return v[k];
  double upper = v[k];
  double lower = *std::max_element(v.begin(), v.begin() + k);
  return (lower + upper) / 2.0;
}

void memory(const ForwardTables& t, const std::vector<int64_t>& id_to_row, ForwardRows* out,
            const std::vector<int64_t>& enter, const std::vector<int64_t>& exit) {
  // attribute._memory
  const auto n = static_cast<int64_t>(out->call_ids.size());
  const auto& parent = out->parent;
  std::vector<const int64_t*> ev;  // this device's events, in time order
  ev.reserve(t.n_mem);
  bool sorted = true;
  for (int64_t i = 0; i < t.n_mem; ++i) {
    const int64_t* e = t.mem + i * kMemCols;
    if (e[kMemDeviceType] != t.device_type) continue;
    if (!ev.empty() && e[kMemTime] < ev.back()[kMemTime]) sorted = false;
    ev.push_back(e);
  }
  if (!sorted)  // several threads' buffers: interleave by time
    std::stable_sort(ev.begin(), ev.end(), [](const int64_t* a, const int64_t* b) { return a[kMemTime] < b[kMemTime]; });
  const auto m = static_cast<int64_t>(ev.size());
  out->memory = true;
  out->mem_allocated.assign(n, 0);
  out->mem_freed.assign(n, 0);
  out->mem_retained.assign(n, 0);
  out->mem_peak.assign(n, 0);
  std::vector<int64_t> times(m), level(m), row(m), free_time(m, std::numeric_limits<int64_t>::max());
  int64_t total = 0;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t* e = ev[i];
    int64_t bytes = e[kMemBytes], call = e[kMemCall];
    times[i] = e[kMemTime];
    level[i] = total += bytes;
    row[i] = call >= 0 && call < t.n_calls ? id_to_row[call] : -1;
    if (row[i] >= 0) (bytes > 0 ? out->mem_allocated[row[i]] : out->mem_freed[row[i]]) += bytes > 0 ? bytes : -bytes;
  }
  // Pairs each allocation with the next event on its pointer: the last event per pointer in an
  // open-addressing hash table (one pass in time order, no sort by pointer).
  int bits = 4;
  while ((size_t{1} << bits) < static_cast<size_t>(m) * 2) ++bits;
  const size_t cap = size_t{1} << bits;
  std::vector<int64_t> last(cap, -1);  // event index, by pointer slot
  for (int64_t i = 0; i < m; ++i) {
    const int64_t ptr = ev[i][kMemPtr];
    size_t h = static_cast<size_t>((static_cast<uint64_t>(ptr) * 0x9e3779b97f4a7c15ull) >> (64 - bits));
    while (last[h] >= 0 && ev[last[h]][kMemPtr] != ptr) h = (h + 1) & (cap - 1);
    const int64_t a = last[h];
    if (a >= 0 && ev[a][kMemBytes] > 0 && ev[i][kMemBytes] < 0) free_time[a] = times[i];
    last[h] = i;
  }
  subtree_sum(out->mem_allocated, parent);
  subtree_sum(out->mem_freed, parent);
  // Retained: allocated inside the call, still alive at its exit (inner calls exit first:
  // once freed inside a call, freed for all its ancestors).
  for (int64_t i = 0; i < m; ++i) {
    if (row[i] < 0 || ev[i][kMemBytes] <= 0) continue;
    for (int64_t r = row[i]; r >= 0 && free_time[i] > exit[r]; r = parent[r]) out->mem_retained[r] += ev[i][kMemBytes];
  }
  // Peak: highest live level inside the call's window, above the level at entry.
  out->has_pass_peak = n > 0;  // tracked, and nothing allocated: a measured 0
  if (m == 0 || n == 0) return;
  RangeMax rmax(level);
  int64_t w_lo = std::numeric_limits<int64_t>::max(), w_hi = std::numeric_limits<int64_t>::min();
  int64_t lo = 0;
  for (int64_t r = 0; r < n; ++r) {
    // The call's events are times[lo:hi]. Rows enter in time order, so lo only moves forward
    // (a binary search where it would not); hi is found by galloping from lo: most windows
    // hold a few events, and a search over all of them per row was most of this function.
    if (r == 0 || enter[r] < enter[r - 1])
      lo = std::lower_bound(times.begin(), times.end(), enter[r]) - times.begin();
    else
      while (lo < m && times[lo] < enter[r]) ++lo;
    int64_t step = 1, below = lo;  // times[below] <= exit[r] or below == lo
    while (below + step < m && times[below + step] <= exit[r]) {
      below += step;
      step *= 2;
    }
    int64_t hi = std::upper_bound(times.begin() + below, times.begin() + std::min(below + step, m), exit[r]) -
                 times.begin();
    if (hi > lo) out->mem_peak[r] = std::max<int64_t>(rmax.max(lo, hi) - (lo > 0 ? level[lo - 1] : 0), 0);
    if (parent[r] < 0) {
      w_lo = std::min(w_lo, lo);
      w_hi = std::max(w_hi, hi);
    }
  }
  if (w_hi > w_lo) out->pass_peak = std::max<int64_t>(rmax.max(w_lo, w_hi) - (w_lo > 0 ? level[w_lo - 1] : 0), 0);
}

}  // namespace

std::string attribute_forward(const ForwardTables& t, ForwardRows* out) {
  if (t.n_calls == 0) return "no module calls";
  const int64_t owner = t.calls[kCallThread];
  for (int64_t i = 0; i < t.n_ops; ++i) {
    const int64_t* op = t.ops + i * kOpCols;
    if (op[kOpScope] != kScopeFunction) return "autograd nodes recorded";
    int64_t name = op[kOpName];
    if (name < 0 || name >= t.n_names || t.engine_name[name]) return "autograd engine records";
    if (op[kOpThread] != owner) return "ops on several threads";
    if (op[kOpParent] < -1 || op[kOpParent] >= i) return "op parents out of order";  // (never from collect())
  }
  for (int64_t c = 0; c < t.n_calls; ++c) {
    const int64_t* call = t.calls + c * kCallCols;
    if (call[kCallThread] != owner) return "calls on several threads";
    if (call[kCallFailed]) return "a module call raised";
  }

  // Rows: the calls of iteration 0, in entry (call id) order.
  std::vector<int64_t> id_to_row(t.n_calls, -1);
  std::vector<int64_t> enter, exit;
  for (int64_t c = 0; c < t.n_calls; ++c) {
    const int64_t* call = t.calls + c * kCallCols;
    if (call[kCallIter] != 0) continue;
    id_to_row[c] = static_cast<int64_t>(out->call_ids.size());
    out->call_ids.push_back(c);
    out->module.push_back(call[kCallModule]);
    int64_t p = call[kCallParent];
    out->parent.push_back(p >= 0 && p < t.n_calls ? id_to_row[p] : -1);
    out->depth.push_back(call[kCallDepth]);
    enter.push_back(call[kCallEnter]);
    exit.push_back(call[kCallExit]);
  }
  const auto n = static_cast<int64_t>(out->call_ids.size());
  const auto& parent = out->parent;

  // Times: per iteration when every iteration made the same calls, else iteration 0's.
  std::vector<std::vector<double>> dur(1, std::vector<double>(n));
  for (int64_t r = 0; r < n; ++r) dur[0][r] = static_cast<double>(exit[r] - enter[r]);
  if (t.iters > 1) {
    std::vector<std::vector<int64_t>> ids(t.iters);
    for (int64_t c = 0; c < t.n_calls; ++c) {
      int64_t it = t.calls[c * kCallCols + kCallIter];
      if (it >= 1 && it < t.iters) ids[it].push_back(c);
    }
    for (int64_t it = 1; it < t.iters; ++it) {
      bool same = static_cast<int64_t>(ids[it].size()) == n;
      for (int64_t r = 0; same && r < n; ++r) same = t.calls[ids[it][r] * kCallCols + kCallModule] == out->module[r];
      if (!same) {
        out->differing_iters.push_back(it);
        continue;
      }
      auto& d = dur.emplace_back(n);
      for (int64_t r = 0; r < n; ++r) {
        const int64_t* call = t.calls + ids[it][r] * kCallCols;
        d[r] = static_cast<double>(call[kCallExit] - call[kCallEnter]);
      }
    }
  }
  std::vector<std::vector<double>> self(dur.size());
  for (size_t k = 0; k < dur.size(); ++k) {  // (attribute._children_sum: added in row order)
    std::vector<double> children(n, 0.0);
    for (int64_t r = 0; r < n; ++r)
      if (parent[r] >= 0) children[parent[r]] += dur[k][r];
    self[k].resize(n);
    for (int64_t r = 0; r < n; ++r) self[k][r] = dur[k][r] - children[r];
  }
  if (dur.size() == 1) {
    out->fwd_time_ns = dur[0];
    out->fwd_self_time_ns = self[0];
    out->fwd_time_min_ns = dur[0];
  } else {
    out->fwd_time_ns.resize(n);
    out->fwd_self_time_ns.resize(n);
    out->fwd_time_min_ns.resize(n);
    std::vector<double> col(dur.size());
    for (int64_t r = 0; r < n; ++r) {
      for (size_t k = 0; k < dur.size(); ++k) col[k] = dur[k][r];
      out->fwd_time_min_ns[r] = *std::min_element(col.begin(), col.end());
      out->fwd_time_ns[r] = median(col);
      for (size_t k = 0; k < dur.size(); ++k) col[k] = self[k][r];
      out->fwd_self_time_ns[r] = median(col);
    }
  }

  // Ops: each forward op of iteration 0 goes to its call's row; an op is top-level in its
  // call when no op of the same call encloses it (num_ops counts those).
  out->op_row.assign(t.n_ops, -1);
  out->num_ops.assign(n, 0);
  for (int64_t i = 0; i < t.n_ops; ++i) {
    const int64_t* op = t.ops + i * kOpCols;
    int64_t call = op[kOpCall];
    if (op[kOpIter] != 0 || call < 0 || call >= t.n_calls) continue;
    int64_t r = id_to_row[call];
    out->op_row[i] = r;
    if (r < 0) continue;
    int64_t p = op[kOpParent];
    if (p < 0 || t.ops[p * kOpCols + kOpCall] != call) ++out->num_ops[r];
  }
  subtree_sum(out->num_ops, parent);

  if (t.mem) memory(t, id_to_row, out, enter, exit);
  return "";
}

bool flags_under(const uint8_t* flag, const int64_t* parent, int64_t n, uint8_t* under) {
  for (int64_t i = 0; i < n; ++i) {  // a parent comes first: its own answer is known
    int64_t p = parent[i];
    if (p >= i) return false;
    under[i] = p >= 0 && (flag[p] || under[p]);
  }
  return true;
}

bool flags_above(const uint8_t* flag, const int64_t* parent, int64_t n, uint8_t* above) {
  std::fill(above, above + n, 0);
  for (int64_t i = n; i-- > 0;) {  // children come after their parent: done before it
    int64_t p = parent[i];
    if (p >= i) return false;
    if (p >= 0 && (flag[i] || above[i])) above[p] = 1;
  }
  return true;
}

bool subtree_sum(const int64_t* values, const int64_t* parent, int64_t n, int64_t* out) {  // (out may be values)
  for (int64_t i = 0; i < n; ++i) {
    if (parent[i] >= i) return false;
    out[i] = values[i];
  }
  for (int64_t i = n; i-- > 0;)  // every child comes after its parent: complete before it is added
    if (parent[i] >= 0) out[parent[i]] += out[i];
  return true;
}

bool count_todo(const int64_t* ops, int64_t n_ops, const int64_t* args, int64_t n_args, const uint8_t* candidate,
                const uint8_t* counted, CountTodo* out) {
  std::vector<uint8_t> under(n_ops);
  std::vector<int64_t> parent(n_ops);
  for (int64_t i = 0; i < n_ops; ++i) parent[i] = ops[i * kOpCols + kOpParent];
  if (!flags_under(candidate, parent.data(), n_ops, under.data())) return false;
  // Groups by (name, arguments): a hash of both, confirmed by comparing the arguments.
  std::unordered_map<uint64_t, std::vector<int64_t>> groups_of_hash;  // hash -> group ids
  for (int64_t i = 0; i < n_ops; ++i) {
    if (!candidate[i] || counted[i] || under[i]) continue;
    const int64_t* op = ops + i * kOpCols;
    int64_t off = op[kOpArgsOff], len = op[kOpArgsLen];
    if (off < 0 || len < 0 || off + len > n_args) return false;
    uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(op[kOpName]);
    for (int64_t k = 0; k < len; ++k) h = (h ^ static_cast<uint64_t>(args[off + k])) * 1099511628211ull;
    h ^= static_cast<uint64_t>(len) << 32;
    auto& ids = groups_of_hash[h];
    int64_t g = -1;
    for (int64_t id : ids) {
      const int64_t* r = ops + out->rep[id] * kOpCols;
      if (r[kOpName] == op[kOpName] && r[kOpArgsLen] == len &&
          std::equal(args + off, args + off + len, args + r[kOpArgsOff])) {
        g = id;
        break;
      }
    }
    if (g < 0) {
      g = static_cast<int64_t>(out->rep.size());
      out->rep.push_back(i);
      ids.push_back(g);
    }
    out->todo.push_back(i);
    out->group.push_back(g);
  }
  return true;
}

bool count_top(const int64_t* ops, int64_t n_ops, const uint8_t* mask, const uint8_t* counted,
               const uint8_t* failed_in, const uint8_t* scope_name, int64_t n_names, uint8_t* top) {
  std::vector<int64_t> parent(n_ops);
  for (int64_t i = 0; i < n_ops; ++i) parent[i] = ops[i * kOpCols + kOpParent];
  std::vector<uint8_t> above(n_ops), under(n_ops), open(n_ops), failed(n_ops);
  if (!flags_above(counted, parent.data(), n_ops, above.data()) ||
      !flags_under(counted, parent.data(), n_ops, under.data()))
    return false;
  bool any_failed = false;
  for (int64_t i = 0; i < n_ops; ++i) {
    int64_t name = ops[i * kOpCols + kOpName];
    if (name < 0 || name >= n_names) return false;
    open[i] = mask[i] && !counted[i] && !above[i] && !under[i] && !scope_name[name];
    failed[i] = failed_in[i] && open[i];
    any_failed |= failed[i] != 0;
  }
  for (int64_t i = 0; i < n_ops; ++i) top[i] = open[i] && !(parent[i] >= 0 && open[parent[i]]);
  if (any_failed) {  // the outermost failed formula op of a chain stands for it
    std::vector<uint8_t> f_under(n_ops), f_above(n_ops);
    flags_under(failed.data(), parent.data(), n_ops, f_under.data());
    flags_above(failed.data(), parent.data(), n_ops, f_above.data());
    for (int64_t i = 0; i < n_ops; ++i) top[i] = (failed[i] && !f_under[i]) || (top[i] && !f_above[i]);
  }
  return true;
}

bool count_columns(const int64_t* op_row, const int64_t* op_macs, const uint8_t* listed, int64_t n_ops,
                   const int64_t* parent, const int64_t* module, const double* fwd_time_ns, int64_t n_rows,
                   const int64_t* params, const int64_t* trainable, const int64_t* buffers, int64_t n_modules,
                   CountColumns* out) {
  out->self_macs.assign(n_rows, 0);
  out->macs_uncounted.assign(n_rows, 0);
  out->total_macs = 0;
  for (int64_t i = 0; i < n_ops; ++i) {
    int64_t r = op_row[i];
    if (r < 0) continue;
    if (r >= n_rows) return false;
    out->self_macs[r] += op_macs[i];
    out->total_macs += op_macs[i];
    out->macs_uncounted[r] += listed[i] ? 1 : 0;
  }
  out->macs.resize(n_rows);
  if (!subtree_sum(out->self_macs.data(), parent, n_rows, out->macs.data()) ||
      !subtree_sum(out->macs_uncounted.data(), parent, n_rows, out->macs_uncounted.data()))
    return false;
  out->flops.resize(n_rows);
  out->flops_per_s.resize(n_rows);
  out->params.resize(n_rows);
  out->trainable.resize(n_rows);
  out->buffers.resize(n_rows);
  out->repeat.assign(n_rows, 0);
  std::vector<uint8_t> seen(n_modules, 0);
  for (int64_t r = 0; r < n_rows; ++r) {
    int64_t m = module[r];
    if (m < 0 || m >= n_modules) return false;
    out->repeat[r] = seen[m];
    seen[m] = 1;
    out->params[r] = params[m];
    out->trainable[r] = trainable[m];
    out->buffers[r] = buffers[m];
    out->flops[r] = 2 * out->macs[r];
    // achieved FLOP/s of the forward: counted FLOPs over measured time (children included)
    double t = fwd_time_ns[r];
    out->flops_per_s[r] = t > 0 ? 2.0 * static_cast<double>(out->macs[r]) / std::max(t, 1.0) * 1e9 : 0.0;
  }
  return true;
}

}  // namespace torchscope
