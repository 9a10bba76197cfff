// torchscope recorder: RecordFunction callbacks, module marks and allocator
// events, appended to per-thread buffers. See ../shared/DESIGN.md for the
// verified PyTorch facts this relies on.
//
// Hot-path rules: callbacks never throw, never touch Python, never call ops,
// and allocate only when a buffer grows (amortised) or a new op name is seen.
#include "recorder.h"

#include <ATen/record_function.h>
#include <c10/core/Allocator.h>
#include <c10/util/ApproximateClock.h>
#include <c10/util/Logging.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/csrc/profiler/orchestration/observer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

// Integer defines from the build (a string define does not survive every
// build tool's quoting): the torch minor version this file is compiled for.
#define TORCHSCOPE_STR2(x) #x
#define TORCHSCOPE_STR(x) TORCHSCOPE_STR2(x)
#if defined(TORCHSCOPE_TORCH_MAJOR) && defined(TORCHSCOPE_TORCH_MINOR)
#define TORCHSCOPE_TORCH_VERSION \
  TORCHSCOPE_STR(TORCHSCOPE_TORCH_MAJOR) "." TORCHSCOPE_STR(TORCHSCOPE_TORCH_MINOR)
#else
#define TORCHSCOPE_TORCH_VERSION "unknown"
#endif

namespace torchscope {
namespace {

struct OpRec {
  int64_t seq_nr, fwd_thread, start, end, args_off;
  int32_t name, parent, args_len;
  int32_t iter;
  int64_t call;
  int8_t scope;
};
struct CallRec {
  int64_t id, parent, depth, enter, exit, iter;
  int32_t module;
  bool failed;
};
struct MemRec {
  int64_t time, ptr, bytes, total_allocated, total_reserved;
  int64_t op, call;  // op is a thread-local index until collect()
  int16_t device_type, device_index;
};

// A growable int64 array written through a raw cursor (the packed arguments): capacity is
// ensured once per op, then values are stored without a check each (std::vector cannot
// take values written past its size).
class IntStream {
 public:
  size_t size() const { return size_; }
  const int64_t* data() const { return data_.get(); }
  void reserve(size_t n) {
    if (n > cap_) grow(n);
  }
  int64_t* room(size_t k) {  // where to write up to k more values
    if (cap_ - size_ < k) grow(std::max(size_ + k, 2 * cap_));
    return data_.get() + size_;
  }
  void end_at(const int64_t* end) { size_ = static_cast<size_t>(end - data_.get()); }
  void truncate(size_t n) { size_ = n; }

 private:
  void grow(size_t cap) {
    std::unique_ptr<int64_t[]> d(new int64_t[cap]);
    if (size_) std::memcpy(d.get(), data_.get(), size_ * sizeof(int64_t));
    data_ = std::move(d);
    cap_ = cap;
  }
  std::unique_ptr<int64_t[]> data_;
  size_t size_ = 0, cap_ = 0;
};

// One per thread per session; owned by the registry so it outlives the
// thread (autograd workers may exit before collect()).
struct ThreadBuffer {
  uint64_t thread_id = 0;
  std::vector<OpRec> ops;
  IntStream args;
  std::vector<CallRec> calls;
  std::vector<MemRec> mem;
};

struct OpenOp {
  const at::RecordFunction* fn;  // identity check for start/end pairing
  int32_t index;
};
struct OpenCall {
  int64_t id;
  int32_t index;
};

struct ThreadState {
  uint64_t generation = 0;
  std::shared_ptr<ThreadBuffer> buffer;
  std::vector<OpenOp> op_stack;
  std::vector<OpenCall> call_stack;
  // name -> id cache; views point into the process-wide name storage.
  std::unordered_map<std::string_view, int32_t> name_cache;
  // In front of it, by the name's address: an op's schema name lives as long as the op, so
  // its address repeats. A record named by a string (autograd nodes) may reuse an address
  // for another name: a hit is confirmed by comparing the text (cheaper than hashing it).
  struct Recent {
    const char* address = nullptr;
    const char* text = nullptr;  // the interned copy
    int32_t id = -1;
  };
  Recent recent[256];
  // Per op-name id, where that op's last two distinct argument lists were written in this
  // session's buffer: an op called again with equal arguments (a model repeats its layers)
  // points at them instead of adding a copy (two: as_strided alternates between t() and
  // expand()). The stream stays small and in cache (benchmarks/recorder_ab.py prints its size).
  struct LastArgs {
    int64_t off[2] = {-1, -1};
    int32_t len[2] = {0, 0};
  };
  std::vector<LastArgs> last_args;
  // Encoding an op's arguments: a tensor subclass may run Python, and ops, to report its
  // sizes. Those are this observation's own, not the model's: not recorded (they would
  // write into the argument stream being filled).
  bool encoding = false;
};
thread_local ThreadState tls;

std::atomic<uint64_t> g_generation{0};
std::atomic<bool> g_recording{false};
std::atomic<bool> g_record_shapes{true};
std::atomic<int64_t> g_next_call{0};
std::atomic<int32_t> g_iter{0};
std::atomic<int64_t> g_dropped_ends{0};
std::atomic<int64_t> g_foreign_calls{0};  // module calls on other threads (not recorded)

std::mutex g_session_mu;  // start/stop/collect
bool g_active = false;
bool g_memory = false;
int g_saved_log_level = 0;
std::thread::id g_owner;
at::CallbackHandle g_handle = 0;

std::mutex g_registry_mu;
std::vector<std::shared_ptr<ThreadBuffer>> g_buffers;

std::mutex g_names_mu;
std::deque<std::string> g_names;  // deque: stable addresses for the views
std::unordered_map<std::string_view, int32_t> g_name_ids;

inline int64_t clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Record timestamps come from the CPU's counter where there is one
// (c10::getApproximateTime: rdtsc on x86, cntvct on arm, else a clock read):
// ~40 ns per op cheaper than steady_clock here. collect() converts them to
// clock_ns() nanoseconds with a two-point fit taken at start() and stop().
inline int64_t stamp() { return static_cast<int64_t>(c10::getApproximateTime()); }

struct ClockPair {
  int64_t stamp, ns;
};
ClockPair clock_pair() {  // a clock read bracketed by two counter reads
  int64_t a = stamp();
  int64_t ns = clock_ns();
  int64_t b = stamp();
  return {a + (b - a) / 2, ns};
}
ClockPair g_clock_start{0, 0}, g_clock_stop{0, 0};

ThreadBuffer* refresh(ThreadState& ts, uint64_t generation) {
  auto buf = std::make_shared<ThreadBuffer>();
  buf->thread_id = at::RecordFunction::currentThreadId();
  buf->ops.reserve(4096);
  buf->args.reserve(32768);
  buf->calls.reserve(512);
  buf->mem.reserve(2048);
  {
    std::lock_guard<std::mutex> lk(g_registry_mu);
    g_buffers.push_back(buf);
  }
  ts.buffer = std::move(buf);
  ts.op_stack.clear();
  ts.call_stack.clear();
  ts.last_args.clear();  // offsets into the previous buffer
  ts.generation = generation;
  return ts.buffer.get();
}

inline ThreadBuffer* buffer_of(ThreadState& ts) {
  uint64_t gen = g_generation.load(std::memory_order_acquire);
  if (C10_UNLIKELY(ts.generation != gen)) return refresh(ts, gen);
  return ts.buffer.get();
}

int32_t intern_slow(std::string_view name) {
  std::lock_guard<std::mutex> lk(g_names_mu);
  auto it = g_name_ids.find(name);
  if (it != g_name_ids.end()) return it->second;
  g_names.emplace_back(name);
  std::string_view stable(g_names.back());
  int32_t id = static_cast<int32_t>(g_names.size() - 1);
  g_name_ids.emplace(stable, id);
  return id;
}

// The thread's cache entry for a name: its key views the interned copy (NUL-terminated).
std::pair<const std::string_view, int32_t>& intern_cached(ThreadState& ts, const char* name) {
  std::string_view key(name);
  auto it = ts.name_cache.find(key);
  if (it != ts.name_cache.end()) return *it;
  int32_t id = intern_slow(key);
  std::lock_guard<std::mutex> lk(g_names_mu);
  return *ts.name_cache.emplace(std::string_view(g_names[id]), id).first;
}

inline int32_t intern(ThreadState& ts, const char* name) {
  if (C10_UNLIKELY(!name)) name = "";
  auto& slot = ts.recent[(reinterpret_cast<uintptr_t>(name) >> 3) & 255];
  if (C10_LIKELY(slot.address == name && std::strcmp(slot.text, name) == 0)) return slot.id;
  auto& entry = intern_cached(ts, name);
  slot = {name, entry.first.data(), entry.second};
  return entry.second;
}

// Packed arguments are written through a raw cursor: capacity is ensured once per op for
// the most its arguments can take (kArgMaxSlots each, a list's elements each), instead of a
// capacity check per value.
constexpr int64_t kMaxRecordedDims = 64;                  // a tensor with more is recorded opaque
constexpr size_t kArgMaxSlots = 3 + kMaxRecordedDims;     // [tag, dtype, ndim, sizes...]

inline int64_t* encode_tensor(const at::Tensor& t, int64_t* p) {
  if (!t.defined()) {
    *p++ = kArgUndefTensor;
    return p;
  }
  auto dtype = static_cast<int64_t>(t.scalar_type());
  // sizes() throws on these (DESIGN.md): record the dtype only. A functorch batched tensor
  // (vmap, jacrev) reports one sample's sizes: opaque too, so the formula steps aside and the
  // real batched ops underneath are counted.
  bool opaque = t.is_nested() || t.unsafeGetTensorImpl()->has_symbolic_sizes_strides() ||
                t.key_set().has(c10::DispatchKey::FuncTorchBatched);
  c10::IntArrayRef sizes;
  if (!opaque) {
    sizes = t.sizes();
    opaque = static_cast<int64_t>(sizes.size()) > kMaxRecordedDims;  // (what was reserved)
  }
  if (opaque) {
    *p++ = kArgOpaqueTensor;
    *p++ = dtype;
    return p;
  }
  *p++ = kArgTensor;
  *p++ = dtype;
  *p++ = static_cast<int64_t>(sizes.size());
  for (int64_t d : sizes) *p++ = d;
  return p;
}

inline int64_t* encode_scalar(const c10::IValue& v, int64_t* p) {
  if (v.isTensor()) return encode_tensor(v.toTensor(), p);
  if (v.isNone()) {
    *p++ = kArgNone;
  } else if (v.isInt()) {
    *p++ = kArgInt;
    *p++ = v.toInt();
  } else if (v.isBool()) {
    *p++ = kArgBool;
    *p++ = v.toBool() ? 1 : 0;
  } else if (v.isDouble()) {
    double d = v.toDouble();
    *p++ = kArgDouble;
    std::memcpy(p++, &d, sizeof(d));
  } else {
    *p++ = kArgOther;
  }
  return p;
}

inline void encode_inputs(c10::ArrayRef<const c10::IValue> inputs, IntStream& out) {
  size_t most = 0;
  for (const c10::IValue& v : inputs) most += v.isList() ? 2 + kArgMaxSlots * v.toListRef().size() : kArgMaxSlots;
  int64_t* p = out.room(most);
  for (const c10::IValue& v : inputs) {
    if (v.isList()) {
      auto elems = v.toListRef();
      *p++ = kArgList;
      *p++ = static_cast<int64_t>(elems.size());
      for (const c10::IValue& e : elems) {
        if (e.isList()) *p++ = kArgOther;  // deeper nesting: not needed by any formula
        else p = encode_scalar(e, p);
      }
    } else {
      p = encode_scalar(v, p);
    }
  }
  out.end_at(p);
}

// Argument lists are a few values long: an inline loop, not a call to memcmp per op (which showed
// up in a perf profile of the tiny MLP).
inline bool same_values(const int64_t* a, const int64_t* b, int32_t n) {
  for (int32_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction& fn) {
  if (!g_recording.load(std::memory_order_relaxed)) return nullptr;
  ThreadState& ts = tls;
  if (C10_UNLIKELY(ts.encoding)) return nullptr;
  try {
    ThreadBuffer* buf = buffer_of(ts);
    auto index = static_cast<int32_t>(buf->ops.size());
    OpRec& r = buf->ops.emplace_back();
    r.name = intern(ts, fn.name());
    r.scope = static_cast<int8_t>(fn.scope());
    r.seq_nr = fn.seqNr();
    r.fwd_thread = static_cast<int64_t>(fn.forwardThreadId());
    r.parent = ts.op_stack.empty() ? -1 : ts.op_stack.back().index;
    r.call = ts.call_stack.empty() ? -1 : ts.call_stack.back().id;
    r.iter = g_iter.load(std::memory_order_relaxed);
    r.args_off = static_cast<int64_t>(buf->args.size());
    r.args_len = 0;
    r.end = -1;
    if (g_record_shapes.load(std::memory_order_relaxed)) {
      ts.encoding = true;
      try {  // (a failure commits nothing: the op keeps no arguments, its formula steps aside)
        encode_inputs(fn.inputs(), buf->args);
      } catch (...) {
      }
      ts.encoding = false;
      r.args_len = static_cast<int32_t>(static_cast<int64_t>(buf->args.size()) - r.args_off);
      if (C10_UNLIKELY(static_cast<size_t>(r.name) >= ts.last_args.size())) ts.last_args.resize(r.name + 1);
      auto& last = ts.last_args[r.name];
      const int64_t* data = buf->args.data();
      int hit = -1;
      for (int k = 0; k < 2 && hit < 0; ++k)
        if (last.len[k] == r.args_len && last.off[k] >= 0 && same_values(data + last.off[k], data + r.args_off, r.args_len))
          hit = k;
      if (hit >= 0) {
        buf->args.truncate(static_cast<size_t>(r.args_off));  // the same values are already there
        r.args_off = last.off[hit];
      } else {
        last.off[1] = last.off[0];
        last.len[1] = last.len[0];
        last.off[0] = r.args_off;
        last.len[0] = r.args_len;
      }
    }
    ts.op_stack.push_back({&fn, index});
    r.start = stamp();  // last: our bookkeeping is not charged to the op
  } catch (...) {
    // Never let an exception escape into the dispatcher.
  }
  return nullptr;
}

void on_op_end(const at::RecordFunction& fn, at::ObserverContext*) {
  int64_t t = stamp();
  ThreadState& ts = tls;
  if (C10_UNLIKELY(ts.encoding)) return;  // an op run while encoding: never started either
  if (ts.generation != g_generation.load(std::memory_order_acquire) || ts.op_stack.empty()) {
    g_dropped_ends.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Ops nest on a thread, so the match is normally the top; an op whose start
  // we did not see (recording paused) must not pop someone else's entry.
  auto& st = ts.op_stack;
  for (size_t i = st.size(); i-- > 0;) {
    if (st[i].fn == &fn) {
      ts.buffer->ops[st[i].index].end = t;
      st.resize(i);
      return;
    }
  }
  g_dropped_ends.fetch_add(1, std::memory_order_relaxed);
}

// Receives allocator events through the PROFILER_STATE debug-info slot.
// Called from inside allocator locks: record plain data only.
struct MemoryReporter final : public torch::profiler::impl::ProfilerStateBase {
  MemoryReporter()
      : ProfilerStateBase(torch::profiler::impl::ProfilerConfig(
            torch::profiler::impl::ProfilerState::Disabled)) {}

  void reportMemoryUsage(void* ptr, int64_t alloc_size, size_t total_allocated,
                         size_t total_reserved, c10::Device device) override {
    if (!g_recording.load(std::memory_order_relaxed)) return;
    try {
      ThreadState& ts = tls;
      if (ts.encoding) return;  // the observation's own allocations
      ThreadBuffer* buf = buffer_of(ts);
      MemRec& m = buf->mem.emplace_back();
      m.time = stamp();
      m.ptr = static_cast<int64_t>(reinterpret_cast<intptr_t>(ptr));
      m.bytes = alloc_size;
      m.total_allocated = static_cast<int64_t>(total_allocated);
      m.total_reserved = static_cast<int64_t>(total_reserved);
      m.op = ts.op_stack.empty() ? -1 : ts.op_stack.back().index;
      m.call = ts.call_stack.empty() ? -1 : ts.call_stack.back().id;
      m.device_type = static_cast<int16_t>(device.type());
      m.device_index = static_cast<int16_t>(device.index());
    } catch (...) {
    }
  }

  bool memoryProfilingEnabled() const override {
    return g_recording.load(std::memory_order_relaxed);
  }

  torch::profiler::impl::ActiveProfilerType profilerType() override {
    return torch::profiler::impl::ActiveProfilerType::NONE;
  }
};

std::shared_ptr<MemoryReporter> g_reporter;

}  // namespace

int64_t now_ns() { return clock_ns(); }

std::string built_for_torch() { return TORCHSCOPE_TORCH_VERSION; }

bool thread_has_callbacks() { return at::hasThreadLocalCallbacks(); }

bool profiler_state_occupied() {
  return c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE) != nullptr;
}

std::string start(const Options& opts) {
  std::lock_guard<std::mutex> lk(g_session_mu);
  if (g_active) return "a torchscope session is already active in this process";
  if (!at::isRecordFunctionEnabled())
    return "RecordFunction is disabled on this thread (at::RecordFunctionGuard(false)); "
           "torchscope cannot observe ops";
  {
    std::lock_guard<std::mutex> rk(g_registry_mu);
    g_buffers.clear();  // threads still holding an old buffer keep it alive
  }
  g_next_call.store(0);
  g_iter.store(0);
  g_dropped_ends.store(0);
  g_foreign_calls.store(0);
  g_record_shapes.store(opts.record_shapes);
  g_generation.fetch_add(1, std::memory_order_acq_rel);

  g_memory = false;
  // Never stack the reporter on top of torch.profiler's state (DESIGN.md).
  if (opts.record_memory && !profiler_state_occupied()) {
    g_reporter = std::make_shared<MemoryReporter>();
    c10::ThreadLocalDebugInfo::_push(c10::DebugInfoKind::PROFILER_STATE, g_reporter);
    g_memory = true;
    // While our reporter is on, freeing a block allocated before it makes the
    // CPU allocator log "Memory block of unknown size..." (a warning about our
    // own session, not the user's code): keep c10's log at ERROR until stop().
    g_saved_log_level = FLAGS_caffe2_log_level;
    if (FLAGS_caffe2_log_level < 2) FLAGS_caffe2_log_level = 2;
  }
  g_handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(on_op_start, on_op_end)
          .needsInputs(opts.record_shapes)
          .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  g_owner = std::this_thread::get_id();
  g_active = true;
  g_clock_start = clock_pair();
  g_recording.store(true);
  return "";
}

std::string stop() {
  std::lock_guard<std::mutex> lk(g_session_mu);
  if (!g_active) return "";
  g_recording.store(false);
  g_clock_stop = clock_pair();
  std::string warning;
  if (std::this_thread::get_id() != g_owner) {
    // Thread-local callbacks can only be removed on their own thread; they
    // stay installed there but record nothing while g_recording is false.
    warning = "torchscope session stopped from another thread; callbacks of the starting "
              "thread are disabled but not removed";
  } else {
    at::removeCallback(g_handle);
  }
  g_handle = 0;
  if (g_memory) {
    auto* current = c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE);
    if (current == g_reporter.get()) {
      try {
        c10::ThreadLocalDebugInfo::_pop(c10::DebugInfoKind::PROFILER_STATE);
      } catch (const std::exception& e) {
        warning = std::string("could not pop torchscope's memory reporter: ") + e.what();
      }
    } else {
      warning = "torchscope's memory reporter was not on top of the PROFILER_STATE slot "
                "(another profiler started inside the session); left in place, disabled";
    }
    g_memory = false;
    FLAGS_caffe2_log_level = g_saved_log_level;
  }
  g_active = false;
  return warning;
}

bool active() {
  std::lock_guard<std::mutex> lk(g_session_mu);
  return g_active;
}

bool memory_tracking() { return g_memory; }

void set_iteration(int64_t iter) { g_iter.store(static_cast<int32_t>(iter)); }

int64_t module_enter(int32_t module_index) {
  if (!g_recording.load(std::memory_order_acquire)) return -1;
  // Ops are recorded on the profiling thread only (thread-local callbacks); so are module
  // calls: another thread running the model meanwhile must not add rows.
  ThreadState& ts = tls;
  if (std::this_thread::get_id() != g_owner) {
    // Counted for the note: measured passes only, and not on autograd worker threads (they
    // inherit our callbacks, so an op is open there: a checkpoint re-running a forward).
    bool in_recorded_op = ts.generation == g_generation.load(std::memory_order_acquire) && !ts.op_stack.empty();
    if (g_iter.load(std::memory_order_relaxed) >= 0 && !in_recorded_op)
      g_foreign_calls.fetch_add(1, std::memory_order_relaxed);
    return -1;
  }
  ThreadBuffer* buf = buffer_of(ts);
  int64_t id = g_next_call.fetch_add(1, std::memory_order_relaxed);
  auto index = static_cast<int32_t>(buf->calls.size());
  CallRec& c = buf->calls.emplace_back();
  c.id = id;
  c.module = module_index;
  c.parent = ts.call_stack.empty() ? -1 : ts.call_stack.back().id;
  c.depth = static_cast<int64_t>(ts.call_stack.size());
  c.iter = g_iter.load(std::memory_order_relaxed);
  c.exit = -1;
  c.failed = false;
  ts.call_stack.push_back({id, index});
  c.enter = stamp();
  return id;
}

void module_exit(int64_t call_id, bool failed) {
  int64_t t = stamp();
  if (call_id < 0) return;
  ThreadState& ts = tls;
  if (ts.generation != g_generation.load(std::memory_order_acquire)) return;
  auto& st = ts.call_stack;
  for (size_t i = st.size(); i-- > 0;) {
    if (st[i].id == call_id) {
      CallRec& c = ts.buffer->calls[st[i].index];
      c.exit = t;
      c.failed = failed;
      st.resize(i);
      return;
    }
  }
}

Snapshot collect() {
  std::lock_guard<std::mutex> lk(g_session_mu);
  Snapshot s;
  std::vector<std::shared_ptr<ThreadBuffer>> buffers;
  {
    std::lock_guard<std::mutex> rk(g_registry_mu);
    buffers = g_buffers;
  }
  // Row counts are read once: the copy below never writes past what was sized here.
  size_t n_ops = 0, n_args = 0, n_mem = 0;
  std::vector<size_t> ops_n, mem_n;
  for (auto& b : buffers) {
    ops_n.push_back(b->ops.size());
    mem_n.push_back(b->mem.size());
    n_ops += ops_n.back();
    n_args += b->args.size();
    n_mem += mem_n.back();
  }
  int64_t n_calls = g_next_call.load();
  // Sized once and written in place (one insert per row cost ~15 ns each).
  s.ops.resize(n_ops * kOpCols);
  s.args.reserve(n_args);
  s.mem.resize(n_mem * kMemCols);
  int64_t* op_row = s.ops.data();
  int64_t* mem_row = s.mem.data();
  s.calls.assign(static_cast<size_t>(n_calls) * kCallCols, -1);

  // Counter -> clock_ns() nanoseconds (-1 stays -1: no end seen).
  ClockPair end = g_active ? clock_pair() : g_clock_stop;
  double scale = end.stamp > g_clock_start.stamp
                     ? static_cast<double>(end.ns - g_clock_start.ns) / static_cast<double>(end.stamp - g_clock_start.stamp)
                     : 1.0;
  auto ns = [&](int64_t t) -> int64_t {
    return t == -1 ? -1 : g_clock_start.ns + static_cast<int64_t>(static_cast<double>(t - g_clock_start.stamp) * scale);
  };

  int64_t op_base = 0;
  for (size_t bi = 0; bi < buffers.size(); ++bi) {
    const auto& b = buffers[bi];
    int64_t args_base = static_cast<int64_t>(s.args.size());
    for (size_t i = 0; i < ops_n[bi]; ++i) {
      const OpRec& r = b->ops[i];
      int64_t* row = op_row;
      op_row += kOpCols;
      row[kOpName] = r.name;
      row[kOpScope] = r.scope;
      row[kOpSeqNr] = r.seq_nr;
      row[kOpFwdThread] = r.fwd_thread;
      row[kOpThread] = static_cast<int64_t>(b->thread_id);
      row[kOpStart] = ns(r.start);
      row[kOpEnd] = ns(r.end);
      row[kOpParent] = r.parent < 0 ? -1 : op_base + r.parent;
      row[kOpCall] = r.call;
      row[kOpArgsOff] = args_base + r.args_off;
      row[kOpArgsLen] = r.args_len;
      row[kOpIter] = r.iter;
    }
    s.args.insert(s.args.end(), b->args.data(), b->args.data() + b->args.size());
    for (const CallRec& c : b->calls) {
      if (c.id < 0 || c.id >= n_calls) continue;
      int64_t* row = s.calls.data() + c.id * kCallCols;
      row[kCallModule] = c.module;
      row[kCallParent] = c.parent;
      row[kCallDepth] = c.depth;
      row[kCallEnter] = ns(c.enter);
      row[kCallExit] = ns(c.exit);
      row[kCallThread] = static_cast<int64_t>(b->thread_id);
      row[kCallIter] = c.iter;
      row[kCallFailed] = c.failed ? 1 : 0;
    }
    for (size_t i = 0; i < mem_n[bi]; ++i) {
      const MemRec& m = b->mem[i];
      int64_t* row = mem_row;
      mem_row += kMemCols;
      row[kMemTime] = ns(m.time);
      row[kMemPtr] = m.ptr;
      row[kMemBytes] = m.bytes;
      row[kMemTotalAllocated] = m.total_allocated;
      row[kMemTotalReserved] = m.total_reserved;
      row[kMemDeviceType] = m.device_type;
      row[kMemDeviceIndex] = m.device_index;
      row[kMemOp] = m.op < 0 ? -1 : op_base + m.op;
      row[kMemCall] = m.call;
      row[kMemThread] = static_cast<int64_t>(b->thread_id);
    }
    op_base += static_cast<int64_t>(ops_n[bi]);
  }
  {
    std::lock_guard<std::mutex> nk(g_names_mu);
    s.names.assign(g_names.begin(), g_names.end());
  }
  s.dropped_ends = g_dropped_ends.load();
  s.foreign_calls = g_foreign_calls.load();
  return s;
}

}  // namespace torchscope
