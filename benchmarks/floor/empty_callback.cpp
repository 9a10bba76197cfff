// The floor under any RecordFunction-based recorder: a thread-local callback
// that does nothing, with and without needsInputs (torch then boxes every op's
// inputs). benchmarks/test_overhead.py::test_recorder_floor compares torchscope's
// per-op cost with it.
#include <ATen/record_function.h>
#include <pybind11/pybind11.h>

namespace {
at::CallbackHandle g_handle = 0;
std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction&) { return nullptr; }
void on_end(const at::RecordFunction&, at::ObserverContext*) {}
}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("start", [](bool inputs) {
    g_handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_start, on_end)
                                              .needsInputs(inputs)
                                              .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  });
  m.def("stop", []() { at::removeCallback(g_handle); });
}
