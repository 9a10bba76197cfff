"""Stage 1: capture. Runs the model under the C++ recorder and returns a Trace.

Owns everything that touches the user's model: the module index, the module
markers installed as instance `forward`s, warm-up and measured passes, and the
restoration of the model and of torch's state on every exit path.
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
from typing import Any, Callable

import numpy as np
import torch

from ._ext import FALLBACK, C

_MISSING = object()


class ProfileError(RuntimeError):
    """A forward pass failed while profiling; names the module and the shapes that reached it."""


@dataclasses.dataclass
class Trace:
    """Everything recorded in one capture; plain arrays, no per-op Python objects."""

    ops: np.ndarray          # n_ops x len(C.OP_COLS)
    args: np.ndarray         # packed argument stream (see csrc/recorder.h)
    calls: np.ndarray        # n_calls x len(C.CALL_COLS); row index == call id
    mem: np.ndarray          # n_events x len(C.MEM_COLS)
    names: list              # op name by id
    shape_calls: np.ndarray  # n x 2: module call id, shape signature (iteration 0)
    shape_signatures: list   # per signature: (positional, keyword or None, output) as torch.Size/tuple/dict/None
    index: ModuleIndex       # the model's modules (names, types, tree)
    iters: int
    pass_times_ns: list      # wall time of each measured pass
    memory_tracking: bool
    notes: list              # things the reader must know (memory off, ...)
    dropped_ends: int = 0
    output: Any = None
    op_shapes: bool = True   # op input shapes recorded (record_shapes): without them nothing can be counted
    tensor_stats: dict | None = None  # C.tensor_stats of index.modules, mostly gathered by the markers


@dataclasses.dataclass
class ModuleIndex:
    """Every distinct module once, in named_modules() order (shared ones keep their first name)."""

    names: list     # qualified names ("" is the root)
    types: list     # class names
    modules: list   # module objects
    parent: np.ndarray  # index of the parent module (-1 for the root)
    depth: np.ndarray
    opaque: list = dataclasses.field(default_factory=list)  # True: inside a compiled/scripted region
    regions: list = dataclasses.field(default_factory=list)  # _REGION_KINDS entry per module (None: plain)
    kernel_size: list = dataclasses.field(default_factory=list)  # instance attribute or None, per module
    buffers: list = dataclasses.field(default_factory=list)  # distinct buffer tensors of the model
    buffer_slots: list = dataclasses.field(default_factory=list)  # (module, name, tensor) per registered buffer
    shared_modules: bool = False  # a module is the child of two parents (the tree keeps its first)
    generators: list = dataclasses.field(default_factory=list)  # torch.Generators held by the model's own classes


# Modules whose forward runs compiled code that must not call Python markers
# (region codes of C.walk_modules).
_REGION_KINDS = (None, "compiled in place", "compiled", "scripted")


def module_index(model: torch.nn.Module) -> ModuleIndex:
    """Pre-order walk with named_modules() semantics (first occurrence wins), plus the tree.
    The walk runs in C (one pass over the instance dicts; ~0.1 us per module)."""
    w = C.walk_modules(model, torch.jit.ScriptModule, torch.Generator)
    n = len(w["modules"])
    parent = w["parent"]
    # Inside a compiled or scripted region, submodules are called by compiled code (a
    # marker there would break the graph, or never run): the region is one opaque row.
    region = w["region"]
    opaque = [False] * n
    regions = [None] * n
    if region.any():
        regions = [_REGION_KINDS[r] for r in region.tolist()]
        par = parent.tolist()
        for i in range(n):
            p = par[i]
            if p >= 0 and (opaque[p] or regions[p] is not None):
                opaque[i] = True
    return ModuleIndex(w["names"], w["types"], w["modules"], parent, w["depth"], opaque, regions,
                       w["kernel_size"], w["buffers"], w["buffer_slots"], w["shared_modules"], w["generators"])


def _install_markers(mods, how=None):
    """Wrap each module's forward in a C marker (how[i]: True skips module i, a str names
    another attribute to wrap); returns what restore needs."""
    return C.install_markers(mods, list(how) if how is not None else [False] * len(mods))


def _restore_markers(mods, saved):
    C.restore_markers(mods, saved)


def _describe(summary) -> str:
    """Render a shape summary from the marker's log (torch.Size / tuple / dict / None)."""
    if isinstance(summary, torch.Size):
        return str(list(summary))
    if isinstance(summary, tuple):
        return "(" + ", ".join(_describe(s) for s in summary) + ")"
    if isinstance(summary, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in summary.items()) + "}"
    return "-"


def _hooked_call(exc, index: ModuleIndex, failed: int):
    """(module index, args, kwargs) of a submodule of `failed` whose call raised outside its
    forward (a forward pre-hook or forward hook: its marker wraps forward only), else None.
    failed=-1: no forward raised; then the root's own hooks are the only module code that can
    have (a submodule's hook raises inside its parent's forward).
    Read from the traceback: the innermost nn.Module._call_impl frame is that module's call."""
    call_impl = torch.nn.Module._call_impl.__code__
    frame = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is call_impl:
            frame = tb.tb_frame
        tb = tb.tb_next
    if frame is None:
        return None
    where = {id(m): i for i, m in enumerate(index.modules)}
    i = where.get(id(frame.f_locals.get("self")), -1)
    if failed < 0:
        return (0, frame.f_locals.get("args", ()), frame.f_locals.get("kwargs")) if i == 0 else None
    if i < 0 or i == failed or index.opaque[i]:
        return None
    p = int(index.parent[i])
    while p >= 0 and p != failed:
        p = int(index.parent[p])
    if p != failed:  # not inside the failed call (e.g. the failed module's own caller)
        return None
    return i, frame.f_locals.get("args", ()), frame.f_locals.get("kwargs")


def _failure_message(exc, failures, index: ModuleIndex) -> str | None:
    """Name the innermost module whose forward (or hook) raised, with the shapes that reached it;
    None when no module's code raised (C.start, a loss function)."""
    names, types = index.names, index.types
    mod, pos, kw, _ = failures[0] if failures else (-1, None, None, None)  # the innermost call sees it first
    what = "forward"
    hooked = _hooked_call(exc, index, mod)
    if hooked is None and mod < 0:
        return None
    if hooked is not None:
        from ._pyrecorder import _summarize  # the shape summary the Python marker logs

        mod, args, kwargs = hooked
        pos, kw = _summarize(tuple(args), 1), _summarize(kwargs, 1) if kwargs else None
        what = "a forward pre-hook or forward hook"
    inputs = _describe(pos) + (" " + _describe(kw) if kw else "")
    path = names[mod] or "(root)"
    hint = ""
    if "Profiler is already enabled" in str(exc):
        hint = (" (torchscope's memory tracking holds the profiler slot; profile with record_memory=False "
                "to run torch.profiler inside the model)")
    return (f"{what} of module '{path}' ({types[mod]}) failed with input shapes {inputs}: "
            f"{type(exc).__name__}: {exc}{hint}")


def _version(t: torch.Tensor):
    """The tensor's in-place version counter (None for inference tensors, which have none)."""
    try:
        return t._version
    except RuntimeError:
        return None


def _snapshot(t: torch.Tensor):
    """[tensor, version, shape, copy] to put a tensor back later; None for an uninitialized
    lazy buffer (nothing to keep) or a nested tensor."""
    if isinstance(t, torch.nn.parameter.UninitializedTensorMixin) or t.is_nested:  # (nested: no one shape)
        return None
    with torch.inference_mode() if t.is_inference() else torch.no_grad():
        return [t, _version(t), t.shape, t.detach().clone()]


def _put_back(entry, check_values: bool = False):
    """Restore a snapshot if the tensor changed: its version counter moved, its shape changed in
    place (unsqueeze_), or (check_values) its values differ without a version bump (x.data.mul_,
    inference tensors). Overlapping memory (an expanded buffer) or a new shape: set_ a copy."""
    t, version, shape, saved = entry
    now = _version(t)
    changed = t.shape != shape or (version is not None and now != version)
    strided = t.layout == torch.strided  # (torch.equal and set_ need dense tensors)
    if not changed and (check_values or version is None) and not t.is_meta and strided:
        changed = not torch.equal(t, saved)
    if not changed:
        return
    with torch.inference_mode() if t.is_inference() else torch.no_grad():
        if not strided:
            t.copy_(saved)
        elif t.shape == shape:
            try:
                t.copy_(saved)
            except RuntimeError:  # more than one element refers to one memory location
                t.set_(saved.clone())
        else:
            t.set_(saved.clone())
    entry[1] = _version(t)


class _ModelState:
    """What a forward pass may change that profiling must give back: buffers updated in
    forward (BatchNorm running stats in train mode), inputs changed in place, and the RNG
    states (torch's, the generators the model holds, Python's random; numpy's when several
    passes run). Restoring the RNGs before each pass also makes every pass compute what the
    user's next call would (dropout included). Parameters are not copied up front (memory): one
    that the first pass updated in place (a forward that writes weights, an optimizer step in a
    backward hook) is copied then and put back before each later pass and at the end, so the
    model is left as after one call.
    Inputs and parameters matter only when several passes run (the caller passes them then)."""

    def __init__(self, buffers, slots, several: bool, inputs=(), params=(), generators=()):
        # from the module index: no second walk over the model
        self.buffers = [e for e in map(_snapshot, buffers) if e is not None]
        self.lazy = [b for b in buffers if isinstance(b, torch.nn.parameter.UninitializedTensorMixin)]
        # inputs forward may change in place (x.div_(255)): put back before each later pass
        self.inputs = [e for e in map(_snapshot, inputs) if e is not None]
        self.slots = slots  # forward may rebind a buffer (self.steps = self.steps + 1): put the original back
        self.params = [(p, _version(p)) for p in params]
        self.changed_params = []
        self.cpu_rng = torch.get_rng_state()
        self.cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        self.py_rng = random.getstate()
        # the model's own generators (self.gen = torch.Generator(), drawn from in forward)
        self.model_rng = [(g, g.get_state()) for g in generators]
        # numpy's state costs ~65 us to save and set: only when passes must repeat its draws
        # (with one pass it advances as one call of the model would)
        self.np_rng = np.random.get_state() if several else None
        # torch.profiler sets this flag before it can fail to start (e.g. inside a profiled
        # forward); a failed start never clears it.
        self.profiler_flag = torch.autograd.profiler._is_profiler_enabled

    def reset_rng(self):
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        random.setstate(self.py_rng)
        for g, st in self.model_rng:
            g.set_state(st)
        if self.np_rng is not None:
            np.random.set_state(self.np_rng)

    def restore_buffers(self):
        for mod, name, b in self.slots:
            bufs = mod._buffers  # a dict, or a ScriptModule's mapping wrapper
            if name not in bufs or bufs[name] is not b:
                bufs[name] = b
        for entry in self.buffers:  # values too: kernels may update running stats without a version bump
            _put_back(entry, check_values=True)

    def after_first_pass(self):
        self.changed_params = [_snapshot(p) for p, v in self.params if v is not None and _version(p) != v]
        self.params = []
        # Lazy buffers the first pass materialised (LazyBatchNorm) have no earlier state: they and
        # the other buffers of their modules (num_batches_tracked) are kept as after that pass.
        if self.lazy:
            lazy = {id(b) for b in self.lazy}
            owners = {id(m) for m, _n, b in self.slots if id(b) in lazy}
            with_them = {id(b) for m, _n, b in self.slots if id(m) in owners}
            self.buffers = [e for e in self.buffers if id(e[0]) not in with_them]
            self.buffers += [e for e in map(_snapshot, (b for m, _n, b in self.slots if id(m) in owners))
                             if e is not None]
            self.lazy = []

    def before_pass(self, first: bool):
        """Every pass starts from the state the user's next call would see."""
        if not first:
            self.restore_buffers()
            for entry in self.inputs + self.changed_params:
                _put_back(entry, check_values=True)
            self.reset_rng()  # (the first pass starts from the state just saved)

    def restore(self):
        try:
            self.restore_buffers()
            for entry in self.changed_params:
                _put_back(entry)
        finally:
            self.reset_rng()
            torch.autograd.profiler._is_profiler_enabled = self.profiler_flag


class _Progress:
    """Progress of long runs on a terminal: tqdm when installed, else one rewritten line.
    Shown only when `enabled` and the first pass shows the run will take over ~2 s."""

    def __init__(self, total: int, enabled: bool | None):
        import sys

        if enabled is None:
            enabled = sys.stderr.isatty()
        self.enabled, self.total, self.done, self.bar = enabled, total, 0, None
        self.started = None

    def step(self, pass_ns: int):
        self.done += 1
        if not self.enabled or self.done >= self.total:
            return
        if self.bar is None and pass_ns * (self.total - self.done) < 2e9:
            return
        if self.bar is None:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, initial=self.done, desc="torchscope", unit="pass", leave=False)
                return
            except ImportError:
                self.bar = False
        if self.bar:
            self.bar.update(1)
        else:
            import sys

            sys.stderr.write(f"\rtorchscope: pass {self.done}/{self.total}")
            sys.stderr.flush()

    def close(self):
        if self.bar:
            self.bar.close()
        elif self.bar is False:
            import sys

            sys.stderr.write("\r" + " " * 40 + "\r")
            sys.stderr.flush()


_SESSION_LOCK = threading.Lock()
_session_owner: int | None = None
_session_threads: frozenset = frozenset()  # threads alive when the running profile started


@contextlib.contextmanager
def _exclusive():
    """One capture at a time per process: the recorder's session, module markers and
    logs are process-wide. Another thread waits its turn; the same thread re-entering
    (profile_summary inside a profiled forward) gets a clear error instead of a deadlock."""
    global _session_owner, _session_threads
    me = threading.get_ident()
    if _session_owner == me:
        raise RuntimeError("profile_summary cannot run inside another torchscope profile on the same thread "
                           "(e.g. called from a model's forward while that model is being profiled)")
    while not _SESSION_LOCK.acquire(timeout=0.05):
        # A thread started during another profile (by the profiled forward, typically) that
        # waits for it would wait forever if that forward waits for this thread.
        if _session_owner is not None and me not in _session_threads:
            raise RuntimeError("profile_summary called from a thread started while another torchscope profile "
                               "runs (e.g. by the profiled model's forward): it cannot wait for that profile, "
                               "which may be waiting for this thread; profile outside the model's forward")
    try:
        _session_owner = me
        _session_threads = frozenset(t.ident for t in threading.enumerate())
        yield
    finally:
        _session_owner = None
        _SESSION_LOCK.release()


def _start_recording(record_shapes: bool, record_memory: bool) -> bool:
    err = C.start(record_shapes, record_memory)
    if err:
        raise RuntimeError(f"torchscope could not start recording: {err}")
    return True


def capture(model: torch.nn.Module, run: Callable[[], Any], *, warmup: int, iters: int,
            record_shapes: bool = True, record_memory: bool = True,
            keep_output: bool = False, progress: bool | None = False, record_warmup: bool = False,
            inputs: list = ()) -> Trace:
    """Run `run()` (which calls the model) warmup + iters times; record the iters (and the
    warm-up passes too with record_warmup, as negative iterations). `inputs`: the input tensors,
    put back before each later pass if forward changed them in place."""
    with _exclusive():
        return _capture(model, run, warmup=warmup, iters=iters, record_shapes=record_shapes,
                        record_memory=record_memory, keep_output=keep_output, progress=progress,
                        record_warmup=record_warmup, inputs=inputs)


def _capture(model: torch.nn.Module, run: Callable[[], Any], *, warmup: int, iters: int,
             record_shapes: bool = True, record_memory: bool = True,
             keep_output: bool = False, progress: bool | None = False, record_warmup: bool = False,
             inputs: list = ()) -> Trace:
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    index = module_index(model)
    names, types, mods = index.names, index.types, index.modules
    notes = [FALLBACK] if FALLBACK else []
    profiler_on = torch.autograd.profiler._is_profiler_enabled or C.profiler_state_occupied()
    if record_memory and profiler_on:
        record_memory = False
        notes.append("memory not tracked: torch.profiler is active (its state holds the allocator slot)")

    regions = sorted({f"{names[i] or types[i]} ({kind})" for i, kind in enumerate(index.regions)
                      if kind and not index.opaque[i]}) if index.regions.count(None) < len(index.regions) else []
    if regions:
        notes.append("profiled as opaque regions (compiled or scripted code inside): " + ", ".join(regions))
    several = warmup + iters > 1
    state = _ModelState(index.buffers, index.buffer_slots, several, list(inputs) if several else (),
                        list(model.parameters()) if several else (), index.generators)
    # A module compiled in place runs its forward inside the compiled call: its marker wraps
    # that call instead (_compiled_call_impl), outside the compiled code.
    how = index.opaque
    if "compiled in place" in index.regions:
        how = [("_compiled_call_impl" if kind == "compiled in place" else False) if not op else True
               for op, kind in zip(index.opaque, index.regions)]
    # Markers count each module's parameters and buffers at the end of its first call, while
    # they are in cache from its forward; the modules no call reached are counted after.
    C.begin_tensor_stats(mods, torch.nn.parameter.UninitializedTensorMixin)
    saved = _install_markers(mods, how)
    failures: list = []
    C.set_failure_log(failures)
    pass_times = []
    output = None
    started = False
    bar = _Progress(warmup + iters, progress)
    last = None
    passes_done = False
    try:
        # With backward, warm-up passes are recorded too (as iterations -warmup..-1): autograd
        # nodes they create and later passes reuse (autocast's cached weight casts) then still
        # link to the op, hence the module, that created them.
        if record_warmup and warmup:
            started = _start_recording(record_shapes, record_memory)
        for i in range(warmup):
            C.set_iteration(i - warmup)
            state.before_pass(first=i == 0)
            t0 = C.now_ns()
            run()
            bar.step(C.now_ns() - t0)
            if i == 0:
                state.after_first_pass()
        if not started:
            started = _start_recording(record_shapes, record_memory)
        memory_tracking = C.memory_tracking()
        for it in range(iters):
            C.set_iteration(it)
            C.set_shape_log(it == 0)
            state.before_pass(first=warmup == 0 and it == 0)
            t0 = C.now_ns()
            out = run()
            pass_times.append(C.now_ns() - t0)
            C.set_shape_log(False)
            if warmup == 0 and it == 0:
                state.after_first_pass()
            bar.step(pass_times[-1])
            if keep_output and it == iters - 1:
                output = out
            if it == iters - 1:
                last = out  # freed after recording stops: its frees (the autograd graph's saved
                #             tensors with grad on) are past every recorded call
            del out
        passes_done = True
    except Exception as exc:
        message = _failure_message(exc, failures, index)
        if message is None:
            raise  # raised outside any module (C.start, a loss function): unchanged
        raise ProfileError(message) from exc
    finally:
        C.pause_tensor_stats(keep=passes_done)  # (a failed profile keeps no reference to the model)
        bar.close()
        C.set_shape_log(False)
        C.set_failure_log(None)
        if started:
            warning = C.stop()
            if warning:
                notes.append(warning)
        _restore_markers(mods, saved)
        state.restore()
    del last

    tensor_stats = C.finish_tensor_stats(mods)
    shape_calls, shape_signatures = C.take_shape_log()
    snapshot = C.collect()
    if snapshot.get("foreign_calls"):
        notes.append(f"{snapshot['foreign_calls']} module call(s) ran on other threads during the profile and are "
                     "not in it (torchscope records the thread that calls profile_summary)")
    if snapshot["dropped_ends"]:
        notes.append(f"{snapshot['dropped_ends']} op end events had no matching start (ignored)")
    return Trace(
        ops=snapshot["ops"], args=snapshot["args"], calls=snapshot["calls"], mem=snapshot["mem"],
        names=snapshot["names"], shape_calls=shape_calls, shape_signatures=shape_signatures, index=index,
        iters=iters, pass_times_ns=pass_times, memory_tracking=memory_tracking,
        notes=notes, dropped_ends=int(snapshot["dropped_ends"]), output=output, op_shapes=record_shapes,
        tensor_stats=tensor_stats,
    )
