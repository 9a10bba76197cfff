"""Nested and concurrent use, soak, fuzzing, compiled/scripted models, model state."""
import dataclasses
import os
import threading

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import model_state
from torchscope import ProfileError, profile_summary
from torchscope._ext import C


def _clean():
    return (not C.active() and not C.profiler_state_occupied() and not C.thread_has_callbacks()
            and not torch.autograd.profiler._is_profiler_enabled)


def small():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))


@pytest.mark.native
def test_torchscope_inside_torch_profiler_works_without_memory(seed):
    m, x = small(), torch.randn(3, 4)
    with torch.profiler.profile(record_shapes=True) as prof:
        s = profile_summary(m, x, verbose=0)
    assert s.rows[0].mem_allocated is None and any("torch.profiler" in n for n in s.notes)
    assert s.total_macs == 3 * 4 * 8 + 3 * 8 * 2
    assert any(e.name == "aten::addmm" for e in prof.events())  # the profiler's own record is intact
    assert _clean()


@pytest.mark.native
def test_torch_profiler_inside_a_profiled_forward(seed):
    class UsesProfiler(nn.Module):
        def forward(self, x):
            with torch.profiler.profile():
                return x * 2

    with pytest.raises(ProfileError, match="record_memory=False"):
        profile_summary(UsesProfiler(), torch.randn(3), verbose=0)
    assert _clean()
    s = profile_summary(UsesProfiler(), torch.randn(3), record_memory=False, verbose=0)
    assert s.rows[0].num_ops >= 1
    assert _clean()


def test_profile_inside_a_profiled_forward_is_a_clear_error(seed):
    inner = nn.Linear(2, 2)

    class Nested(nn.Module):
        def forward(self, x):
            profile_summary(inner, x, verbose=0)
            return x

    with pytest.raises(ProfileError, match="inside another torchscope profile"):
        profile_summary(Nested(), torch.randn(1, 2), verbose=0)
    assert _clean() and "forward" not in inner.__dict__


def test_two_threads_profiling_the_same_model_both_work(seed):
    m, x = small(), torch.randn(3, 4)
    before = model_state(m)
    results, errors = [], []

    def work():
        try:
            for _ in range(15):
                results.append(profile_summary(m, x, verbose=0).total_macs)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors and len(results) == 30 and len(set(results)) == 1
    assert model_state(m) == before


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_soak_1000_calls_no_growth(seed):
    m, x = small(), torch.randn(3, 4)
    before = model_state(m)
    first = profile_summary(m, x, warmup=0, iters=1, verbose=0)
    for _ in range(100):
        profile_summary(m, x, warmup=0, iters=1, verbose=0)
    rss0 = _rss_bytes()
    for _ in range(1000):
        s = profile_summary(m, x, warmup=0, iters=1, verbose=0)
        assert (s.total_macs, s.total_params) == (first.total_macs, first.total_params)
    growth = _rss_bytes() - rss0
    assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 1000 profiles"
    assert model_state(m) == before and _clean()


def test_buffers_and_rng_restored_and_outputs_identical_in_train_mode(seed):
    m, x = small().train(), torch.randn(6, 4)
    buffers = [b.clone() for b in m.buffers()]
    rng = torch.get_rng_state()
    s = profile_summary(m, x, warmup=2, iters=3, keep_output=True, verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(buffers, m.buffers()))  # running stats untouched
    assert torch.equal(torch.get_rng_state(), rng)
    expected = m(x)  # same RNG state as the profiled passes: same dropout mask
    assert torch.equal(s.output, expected)


def test_compiled_model_is_one_region_without_graph_breaks(seed):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    m, x = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), torch.randn(3, 4)
    cm = torch.compile(m, backend="eager")
    before = model_state(cm)
    s = profile_summary(cm, x, verbose=0)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert s.total_params == 4 * 8 + 8 + 8 * 2 + 2 and s.total_macs == 3 * 4 * 8 + 3 * 8 * 2
    assert any("opaque" in n for n in s.notes)
    assert model_state(cm) == before and _clean()


def test_scripted_model_is_one_region(seed):
    m, x = nn.Sequential(nn.Linear(4, 8), nn.ReLU()), torch.randn(3, 4)
    sm = torch.jit.script(m)
    s = profile_summary(sm, x, verbose=0)
    assert len(s.rows) == 1 and s.total_macs == 3 * 4 * 8 and s.rows[0].num_ops >= 1
    assert torch.equal(sm(x), m(x)) and _clean()


@dataclasses.dataclass
class Out:
    logits: torch.Tensor
    extra: int


def test_inference_mode_and_structured_outputs(seed):
    class Structured(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            y = self.a(x)
            return {"y": y, "pair": (y, [x])}, Out(y, 3)

    x = torch.randn(2, 4)
    with torch.inference_mode():
        s = profile_summary(Structured(), x, verbose=0)
    assert s.total_macs == 2 * 4 * 4
    out = s.rows[0].output_shapes
    assert out[0]["y"] == torch.Size([2, 4]) and out[0]["pair"][1][0] == torch.Size([2, 4])


def test_bad_devices_are_clear():
    m = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="not a valid torch device"):
        profile_summary(m, torch.randn(2), device="nonsense", verbose=0)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            profile_summary(m, torch.randn(2), device="cuda", verbose=0)
    assert _clean() and all(p.device.type == "cpu" for p in m.parameters())


# ------------------------------------------------------------------ fuzzing
LAYER = st.sampled_from(["linear", "conv", "norm", "act", "attn", "lstm", "branch"])


class Branch(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.left, self.right = nn.Linear(d, d), nn.Sequential(nn.Linear(d, d), nn.GELU())

    def forward(self, x):
        return self.left(x) + self.right(x)


class Conv(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv = nn.Conv1d(d, d, 3, padding=1)

    def forward(self, x):  # (B, T, D) -> conv over T
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class Attn(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mha = nn.MultiheadAttention(d, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x)[0]


class LSTM(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lstm = nn.LSTM(d, d, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def build(kinds, d):
    make = {"linear": lambda: nn.Linear(d, d), "conv": lambda: Conv(d), "norm": lambda: nn.LayerNorm(d),
            "act": lambda: nn.ReLU(), "attn": lambda: Attn(d), "lstm": lambda: LSTM(d),
            "branch": lambda: Branch(d)}
    return nn.Sequential(*[make[k]() for k in kinds])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(LAYER, min_size=1, max_size=6), d=st.sampled_from([4, 8, 16]),
       batch=st.integers(1, 3), t=st.integers(1, 5), train=st.booleans())
def test_fuzz_random_models(kinds, d, batch, t, train):
    torch.manual_seed(0)
    model = build(kinds, d).train(train)
    x = torch.randn(batch, t, d)
    expected = model(x)
    before = model_state(model)
    s = profile_summary(model, x, warmup=0, iters=1, keep_output=True, verbose=0)
    assert torch.equal(s.output, expected)
    assert s.total_params == sum(p.numel() for p in model.parameters())
    assert s.total_macs >= 0 and len(s.rows) >= len(kinds) + 1
    assert model_state(model) == before and _clean()


class _BadGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("boom in backward")


def test_exception_in_backward_cleans_up(seed):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return _BadGrad.apply(self.lin(x))

    m = Net()
    before = model_state(m)
    with pytest.raises(RuntimeError, match="boom in backward"):
        profile_summary(m, torch.randn(2, 3), backward=True, verbose=0)
    assert _clean() and model_state(m) == before
    assert all(p.grad is None for p in m.parameters())


def test_exception_in_a_user_hook_names_the_module(seed):
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU())

    def bad_hook(mod, args, out):
        raise ValueError("user hook failed")

    h = m[0].register_forward_hook(bad_hook)
    before = model_state(m)
    with pytest.raises(ProfileError, match="user hook failed") as ei:
        profile_summary(m, torch.randn(2, 3), verbose=0)
    assert "hook of module '0' (Linear)" in str(ei.value)  # the hooked module, not its caller
    assert _clean() and model_state(m) == before
    h.remove()


def test_empty_paramless_and_non_tensor_inputs(seed):
    s = profile_summary(nn.Sequential(), torch.randn(2, 3), verbose=0)
    assert (s.total_params, s.total_macs, len(s.rows)) == (0, 0, 1)
    s = profile_summary(nn.ReLU(), torch.randn(2, 3), verbose=0)
    assert s.total_params == 0 and s.rows[0].num_ops >= 1

    class Scale(nn.Module):
        def forward(self, x, k, name="x"):
            return x * k

    s = profile_summary(Scale(), (torch.randn(2), 3.0), verbose=0)
    assert s.rows[0].input_shapes == (torch.Size([2]), None)
    assert _clean()


def test_wrong_dtype_names_module_type_and_shapes(seed):
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    with pytest.raises(ProfileError) as ei:
        profile_summary(m, torch.ones(3, 4, dtype=torch.long), verbose=0)
    msg = str(ei.value)
    assert "'0'" in msg and "Linear" in msg and "[3, 4]" in msg and "Long" in msg
    assert _clean()


class _Picky(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        if x.shape[-1] != 4:
            raise ValueError("wrong width")
        return self.l(x)


class _Fallback(nn.Module):
    """Tries `fast`, catches its error, runs `slow` (broken when width != 8)."""

    def __init__(self, width):
        super().__init__()
        self.fast, self.slow = _Picky(), nn.Linear(width, 4)

    def forward(self, x):
        try:
            return self.fast(x)
        except ValueError:
            return self.slow(x)


def test_a_caught_failure_is_not_blamed_for_a_later_one(seed):
    with pytest.raises(ProfileError, match=r"module 'slow' \(Linear\) failed with input shapes \(\[2, 8\]\)"):
        profile_summary(_Fallback(6), torch.randn(2, 8), verbose=0)
    s = profile_summary(_Fallback(8), torch.randn(2, 8), verbose=0)  # caught and recovered: fine
    assert s.row("slow").macs == 2 * 8 * 4
    with pytest.raises(NameError):  # a loss error is the user's, unchanged, even after a caught failure
        profile_summary(_Fallback(8), torch.randn(2, 8), verbose=0, loss_fn=lambda out: undefined_name)  # noqa: F821
    assert _clean()


def test_rebound_buffers_are_restored_and_every_pass_starts_alike(seed):
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)
            self.register_buffer("steps", torch.zeros(()))

        def forward(self, x):
            self.steps = self.steps + 1  # rebinds the buffer: a new tensor each call
            return self.l(x) * self.steps

    m, x = Counter(), torch.ones(2, 4)
    original = m.steps
    ref = Counter()
    ref.load_state_dict(m.state_dict())
    s = profile_summary(m, x, verbose=0, keep_output=True, warmup=2, iters=3)
    assert m.steps is original and m.steps.item() == 0
    assert torch.equal(s.output, ref(x))  # the last pass computed what the next user call computes


def test_device_move_keeps_packed_sequences_and_namedtuples(seed):
    import collections

    from torch.nn.utils.rnn import pack_padded_sequence

    packed = pack_padded_sequence(torch.randn(3, 5, 4), [5, 3, 2], batch_first=True)
    lstm = nn.LSTM(4, 6, batch_first=True)
    plain = profile_summary(lstm, packed, verbose=0).total_macs
    assert profile_summary(lstm, packed, device="cpu", verbose=0).total_macs == plain == 10 * 4 * 6 * (4 + 6)  # tokens x gates x hidden x (input + hidden)
    assert profile_summary(lstm, packed, device="meta", verbose=0).total_macs == plain
    Pair = collections.namedtuple("Pair", "a b")

    class TakesPair(nn.Module):
        def forward(self, p):
            assert isinstance(p, Pair)
            return p.a + p.b

    assert profile_summary(TakesPair(), (Pair(torch.ones(2), torch.ones(2)),), device="cpu", verbose=0)


def test_module_called_from_another_thread_is_noted(seed):
    class Threaded(nn.Module):
        def __init__(self):
            super().__init__()
            self.l, self.k = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            out = {}
            t = threading.Thread(target=lambda: out.setdefault("y", self.k(x)))
            t.start()
            t.join()
            return self.l(x) + out["y"]

    s = profile_summary(Threaded(), torch.randn(2, 4), iters=1, verbose=0)
    assert [r.name for r in s.rows] == ["Threaded", "l"]  # no row without ops posing as measured
    assert any("1 module call(s) ran on other threads" in n for n in s.notes), s.notes
    assert _clean()


def test_another_thread_using_the_model_meanwhile_adds_no_rows(seed):
    import time

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            time.sleep(0.01)
            return self.b(self.a(x))

    m, x = Slow(), torch.randn(2, 8)
    stop = threading.Event()

    def user():
        while not stop.is_set():
            m(x)

    t = threading.Thread(target=user)
    t.start()
    try:
        s = profile_summary(m, x, iters=3, verbose=0)
    finally:
        stop.set()
        t.join()
    assert [r.name for r in s.rows] == ["Slow", "a", "b"] and not any(r.repeat for r in s.rows)
    assert not any("different module calls" in n for n in s.notes)
    assert s.total_macs == 2 * 2 * 8 * 8 and _clean()


def test_bad_depth_fails_before_profiling(seed):
    ran = []

    class Spy(nn.Module):
        def forward(self, x):
            ran.append(1)
            return x

    for bad in (-1, "2", 1.5):
        with pytest.raises(ValueError, match="depth="):
            profile_summary(Spy(), torch.randn(2), depth=bad, verbose=0)
    assert not ran


@pytest.mark.native
def test_a_pass_that_allocates_nothing_has_zero_peak(seed):
    s = profile_summary(nn.Flatten(), torch.randn(2, 4), verbose=0)  # tracked, allocates nothing
    assert s.peak_memory == 0 and s.rows[0].mem_peak == 0 and "Peak memory during forward: 0 B" in str(s)


def test_inputs_changed_in_place_are_put_back_between_passes(seed):
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(2, 2)

        def forward(self, x):
            x.mul_(2)  # e.g. x.div_(255) in a model's first line
            return self.l(x)

    m = Scale()
    x, ref = torch.ones(1, 2), torch.ones(1, 2)
    expected = m(ref)
    s = profile_summary(m, {"x": x}, verbose=0, keep_output=True, warmup=1, iters=3)
    assert torch.equal(x, ref) and torch.equal(s.output, expected)  # as after one unprofiled call
    with torch.inference_mode():  # inference tensors have no version counter: still profiled
        assert profile_summary(nn.Linear(2, 2), torch.ones(1, 2), verbose=0).total_macs == 4


def test_profile_from_a_thread_the_profiled_forward_starts_fails_instead_of_hanging(seed):
    from concurrent.futures import ThreadPoolExecutor

    class Spawns(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            with ThreadPoolExecutor(1) as ex:
                ex.submit(profile_summary, nn.Linear(4, 4), x, verbose=0).result()
            return self.a(x)

    with pytest.raises(ProfileError, match="called from a thread started while another torchscope profile runs"):
        profile_summary(Spawns(), torch.randn(2, 4), iters=1, warmup=0, verbose=0)
    assert _clean() and profile_summary(nn.Linear(4, 4), torch.randn(2, 4), verbose=0).total_macs == 32


def test_module_compiled_in_place_is_one_row_with_its_macs(seed):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    m, x = nn.Sequential(nn.Linear(4, 4), nn.ReLU()), torch.randn(8, 4)
    m.compile(backend="eager")  # in place: Module.compile()
    before = model_state(m)
    compiled = m.__dict__["_compiled_call_impl"]
    s = profile_summary(m, x, keep_output=True, verbose=0)
    assert [r.name for r in s.rows] == ["Sequential"] and s.total_macs == 8 * 4 * 4
    assert any("Sequential (compiled in place)" in n for n in s.notes)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert model_state(m) == before and m.__dict__["_compiled_call_impl"] is compiled
    assert torch.equal(s.output, m(x))
