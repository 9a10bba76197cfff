// torchscope recorder: plain-types interface between the ATen-side recorder
// (recorder.cpp) and its users (the pybind11 binding, the C++ test).
// Nothing here includes torch headers, so both sides compile fast.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace torchscope {

// Packed argument encoding (one int64 stream per session; each op names its slice with
// args_off/args_len, and ops with equal arguments may name one slice; see DESIGN.md):
enum ArgTag : int64_t {
  kArgNone = 0,         // [0]
  kArgTensor = 1,       // [1, dtype, ndim, d0, ..., d(ndim-1)]
  kArgInt = 2,          // [2, value]
  kArgDouble = 3,       // [3, bit pattern of the double]
  kArgBool = 4,         // [4, value]
  kArgList = 5,         // [5, n, elem0, ...] elements encoded recursively (one level)
  kArgUndefTensor = 6,  // [6]
  kArgOther = 7,        // [7] strings, devices, generators, ...
  kArgOpaqueTensor = 8, // [8, dtype] symbolic-size or nested tensor: no sizes
};

// Columns of the exported tables (row-major int64).
enum OpCol { kOpName, kOpScope, kOpSeqNr, kOpFwdThread, kOpThread, kOpStart, kOpEnd,
             kOpParent, kOpCall, kOpArgsOff, kOpArgsLen, kOpIter, kOpCols };
enum CallCol { kCallModule, kCallParent, kCallDepth, kCallEnter, kCallExit, kCallThread,
               kCallIter, kCallFailed, kCallCols };
enum MemCol { kMemTime, kMemPtr, kMemBytes, kMemTotalAllocated, kMemTotalReserved,
              kMemDeviceType, kMemDeviceIndex, kMemOp, kMemCall, kMemThread, kMemCols };

struct Options {
  bool record_shapes = true;  // needsInputs: op input shapes and scalar args
  bool record_memory = true;  // push the allocator reporter
};

struct Snapshot {
  std::vector<int64_t> ops;    // n_ops x kOpCols
  std::vector<int64_t> args;   // packed argument stream
  std::vector<int64_t> calls;  // n_calls x kCallCols, row index == call id
  std::vector<int64_t> mem;    // n_events x kMemCols
  std::vector<std::string> names;  // op name by id (process-wide, append-only)
  int64_t dropped_ends = 0;    // end callbacks that found no open op (should be 0)
  int64_t foreign_calls = 0;   // module calls on threads other than the profiling one (not recorded)
};

// Start a session on the calling thread. Returns "" on success, otherwise the
// reason it could not start (nothing is installed then).
std::string start(const Options& opts);
// Stop: removes the callback (must be the starting thread) and pops the memory
// reporter. Safe to call when not started. Returns "" or a warning message.
std::string stop();
bool active();
// Whether memory events are actually being recorded this session.
bool memory_tracking();
// Whether any RecordFunction callback is installed on this thread (tests: nothing left behind).
bool thread_has_callbacks();
// Whether someone (e.g. torch.profiler) holds the PROFILER_STATE slot now.
bool profiler_state_occupied();
void set_iteration(int64_t iter);

// Module boundaries. enter returns the call id (-1 when not recording).
int64_t module_enter(int32_t module_index);
void module_exit(int64_t call_id, bool failed);

// Copies out everything recorded since start() (call after stop()).
Snapshot collect();
// Monotonic clock used for all timestamps (ns).
int64_t now_ns();
// Version of torch the recorder was compiled against, e.g. "2.14".
std::string built_for_torch();

}  // namespace torchscope
