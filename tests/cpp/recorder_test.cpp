// C++ test of the recorder through its plain interface (csrc/recorder.h),
// without Python: ops, nesting, shapes, module marks, memory events, cleanup.
#include <ATen/ops/mm.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/relu.h>
#include <c10/util/Logging.h>

#include <cstdio>
#include <string>

#include "recorder.h"

using namespace torchscope;

static int failures = 0;
#define EXPECT(cond, ...)                                          \
  do {                                                            \
    if (!(cond)) {                                                \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::printf(__VA_ARGS__);                                   \
      std::printf("\n");                                          \
      ++failures;                                                 \
    }                                                             \
  } while (0)

static int64_t find_op(const Snapshot& s, const std::string& name, int64_t from = 0) {
  size_t n = s.ops.size() / kOpCols;
  for (size_t i = from; i < n; ++i)
    if (s.names[s.ops[i * kOpCols + kOpName]] == name) return static_cast<int64_t>(i);
  return -1;
}

int main() {
  at::Tensor w = at::ones({16, 4});
  at::Tensor warm = at::mm(at::ones({8, 16}), w);  // first-use effects out of the session

  int log_level = FLAGS_caffe2_log_level;
  std::string err = start(Options{});
  EXPECT(err.empty(), "start failed: %s", err.c_str());
  EXPECT(active(), "session not active");
  EXPECT(!start(Options{}).empty(), "a second start must be refused while active");
  EXPECT(memory_tracking(), "memory reporter not installed");

  int64_t call = module_enter(7);
  at::Tensor x = at::ones({8, 16});
  at::Tensor y = at::relu(at::mm(x, w));
  module_exit(call, false);
  at::Tensor outside = at::ones({2});  // recorded, but outside any module call

  EXPECT(stop().empty(), "stop warned");
  EXPECT(FLAGS_caffe2_log_level == log_level, "c10 log level not restored");
  EXPECT(!thread_has_callbacks(), "RecordFunction callback left installed after stop()");
  EXPECT(!active(), "still active after stop");
  EXPECT(stop().empty(), "second stop must be a no-op");
  at::Tensor after = at::mm(x, w);  // must not be recorded

  Snapshot s = collect();
  size_t n_ops = s.ops.size() / kOpCols;
  EXPECT(n_ops >= 4, "too few ops: %zu", n_ops);
  EXPECT(s.dropped_ends == 0, "dropped ends: %lld", (long long)s.dropped_ends);

  int64_t mm = find_op(s, "aten::mm");
  EXPECT(mm >= 0, "aten::mm not recorded");
  EXPECT(find_op(s, "aten::mm", mm + 1) < 0, "aten::mm recorded after stop()");
  if (mm >= 0) {
    const int64_t* r = &s.ops[mm * kOpCols];
    EXPECT(r[kOpCall] == call, "mm attributed to call %lld, expected %lld", (long long)r[kOpCall], (long long)call);
    EXPECT(r[kOpParent] == -1, "mm should be top-level");
    EXPECT(r[kOpEnd] >= r[kOpStart] && r[kOpStart] > 0, "bad times");
    // args: [tensor f32 [8,16]] [tensor f32 [16,4]]
    const int64_t* a = &s.args[r[kOpArgsOff]];
    EXPECT(r[kOpArgsLen] == 10, "mm args length %lld", (long long)r[kOpArgsLen]);
    EXPECT(a[0] == kArgTensor && a[2] == 2 && a[3] == 8 && a[4] == 16, "mm input 0 shape");
    EXPECT(a[5] == kArgTensor && a[7] == 2 && a[8] == 16 && a[9] == 4, "mm input 1 shape");
  }
  int64_t relu = find_op(s, "aten::relu");
  EXPECT(relu >= 0, "aten::relu not recorded");
  // relu dispatches to clamp_min: a nested child whose parent is relu.
  int64_t child = find_op(s, "aten::clamp_min");
  if (relu >= 0 && child >= 0)
    EXPECT(s.ops[child * kOpCols + kOpParent] == relu, "clamp_min parent should be relu");
  int64_t ones = find_op(s, "aten::ones", mm > 0 ? mm : 0);
  EXPECT(ones >= 0 && s.ops[ones * kOpCols + kOpCall] == -1, "op outside module must have call -1");

  size_t n_calls = s.calls.size() / kCallCols;
  EXPECT(n_calls == 1, "calls: %zu", n_calls);
  if (n_calls == 1) {
    EXPECT(s.calls[kCallModule] == 7, "module index");
    EXPECT(s.calls[kCallExit] > s.calls[kCallEnter], "call times");
  }

  // Memory: the mm output (8x4 floats) is allocated inside the call.
  size_t n_mem = s.mem.size() / kMemCols;
  bool saw_mm_alloc = false;
  for (size_t i = 0; i < n_mem; ++i) {
    const int64_t* m = &s.mem[i * kMemCols];
    if (m[kMemOp] == mm && m[kMemBytes] == 8 * 4 * 4 && m[kMemCall] == call) saw_mm_alloc = true;
  }
  EXPECT(saw_mm_alloc, "no 128-byte allocation attributed to aten::mm (%zu events)", n_mem);
  EXPECT(!profiler_state_occupied(), "PROFILER_STATE slot still occupied after stop");

  if (failures == 0) std::printf("recorder_test: 1 passed, 0 failed\n");
  return failures == 0 ? 0 : 1;
}
