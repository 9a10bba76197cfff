"""Profiling never changes the model or torch's state, also after an exception."""
import inspect

import pytest
import torch
from torch import nn

from conftest import model_state, profiler_top_level_ops
from torchscope import ProfileError, capture, profile_summary
from torchscope._ext import C
from torchscope.models import SmallResNet, TransformerBlock


def test_profiled_outputs_equal_unprofiled_outputs(seed):
    model, x = TransformerBlock(), torch.randn(2, 8, 64)
    expected = model(x)
    s = profile_summary(model, x, warmup=1, iters=2, keep_output=True, verbose=0)
    assert torch.equal(s.output, expected)
    assert torch.equal(model(x), expected)


def test_model_and_torch_state_restored(seed):
    model = SmallResNet()
    model.layer1[0].bn1.eval()                      # mixed training modes
    model.fc.weight.requires_grad_(False)           # frozen param
    model.stem.register_forward_hook(lambda m, i, o: None)  # user hook stays
    before = model_state(model)
    profile_summary(model, torch.randn(2, 3, 16, 16), verbose=0)
    assert model_state(model) == before


class Boom(nn.Module):
    def __init__(self):
        super().__init__()
        self.ok = nn.Linear(8, 8)
        self.bad = nn.Linear(5, 3)   # wrong in_features: fails inside forward

    def forward(self, x):
        return self.bad(self.ok(x))


def _assert_clean(model):
    assert not C.active()
    assert not C.profiler_state_occupied()
    assert not C.thread_has_callbacks()
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert not torch.autograd.profiler._is_profiler_enabled


def test_exception_in_forward_names_module_and_shapes_and_cleans_up(seed):
    model = Boom()
    before = model_state(model)
    with pytest.raises(ProfileError) as ei:
        profile_summary(model, torch.randn(4, 8), verbose=0)
    msg = str(ei.value)
    assert "'bad'" in msg and "Linear" in msg and "[4, 8]" in msg
    assert isinstance(ei.value.__cause__, RuntimeError)  # original exception chained
    _assert_clean(model)
    assert model_state(model) == before
    # torch.profiler works afterwards and sees ops: no stale state in the slot
    good = nn.Linear(8, 8)
    assert sum(profiler_top_level_ops(lambda: good(torch.randn(2, 8))).values()) >= 1
    # and a second profile works normally
    s = profile_summary(good, torch.randn(2, 8), verbose=0)
    assert s.total_params == 72 and s.rows[0].num_ops >= 1


def test_keyboard_interrupt_inside_forward_cleans_up(seed):
    class Interrupt(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            self.lin(x)
            raise KeyboardInterrupt

    model = Interrupt()
    with pytest.raises(KeyboardInterrupt):
        profile_summary(model, torch.randn(2, 4), warmup=0, verbose=0)
    _assert_clean(model)


def test_warmup_zero_iters_one_runs_exactly_one_pass():
    calls = []

    class Counting(nn.Module):
        def forward(self, x):
            calls.append(1)
            return x * 2

    profile_summary(Counting(), torch.randn(3), warmup=0, iters=1, verbose=0)
    assert len(calls) == 1
    calls.clear()
    profile_summary(Counting(), torch.randn(3), warmup=2, iters=3, verbose=0)
    assert len(calls) == 5


def test_forward_signature_visible_while_profiling():
    seen = {}

    class Sig(nn.Module):
        def forward(self, x, scale: float = 1.0):
            seen["sig"] = list(inspect.signature(self.forward).parameters)
            return x * scale

    profile_summary(Sig(), torch.randn(2), verbose=0)
    assert seen["sig"] == ["x", "scale"]


def test_device_argument_moves_and_restores(seed):
    model = nn.Linear(4, 2)
    s = profile_summary(model, torch.randn(3, 4), device="cpu", verbose=0)
    assert s.device == "cpu"
    assert all(p.device.type == "cpu" for p in model.parameters())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_cuda_moves_and_restores(seed):
    model = SmallResNet()
    s = profile_summary(model, torch.randn(2, 3, 16, 16), device="cuda", verbose=0)
    assert s.device.startswith("cuda")
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert s.rows[0].mem_allocated > 0


def test_bad_arguments_are_clear():
    with pytest.raises(TypeError, match="nn.Module"):
        profile_summary(lambda x: x, torch.randn(2), verbose=0)
    with pytest.raises(ValueError, match="iters"):
        profile_summary(nn.Linear(2, 2), torch.randn(2), iters=0, verbose=0)


def test_kwargs_and_multiple_inputs(seed):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(5, 4)

        def forward(self, x, y=None):
            return self.a(x) + self.b(y)

    m = Two()
    s1 = profile_summary(m, (torch.randn(2, 3), torch.randn(2, 5)), verbose=0)
    s2 = profile_summary(m, {"x": torch.randn(2, 3), "y": torch.randn(2, 5)}, verbose=0)
    assert s1.total_macs == s2.total_macs == 2 * 3 * 4 + 2 * 5 * 4
    assert s2.rows[0].input_shapes[1]["y"] == torch.Size([2, 5])


def test_unusual_buffers_profile_and_are_left_as_they_were(seed):
    class Expanded(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", torch.zeros(1).expand(4))  # overlapping memory: copy_ into it fails

        def forward(self, x):
            return x + self.b

    s = profile_summary(Expanded(), torch.randn(2, 4), verbose=0)
    assert s.rows[0].output_shapes == torch.Size([2, 4])
    lazy = nn.Sequential(nn.Linear(4, 4), nn.LazyBatchNorm1d())  # an uninitialized buffer
    profile_summary(lazy, torch.randn(8, 4), verbose=0)
    with torch.inference_mode():  # inference tensors cannot be written outside inference mode
        m = nn.Linear(4, 4)
        m.register_buffer("scale", torch.ones(4))
    with torch.no_grad():
        profile_summary(m, torch.randn(2, 4), verbose=0)
    tied = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    tied[1].weight = tied[0].weight
    s = profile_summary(tied, torch.randint(0, 10, (2, 3)), device="meta", verbose=0)
    assert s.total_params == 40 and s.total_macs == 2 * 3 * 4 * 10


def test_inputs_changed_by_forward_are_given_back_each_pass(seed):
    class AddBatch(nn.Module):
        def forward(self, x):
            x.unsqueeze_(0)
            return x * 1

    x = torch.zeros(2, 4)
    s = profile_summary(AddBatch(), x, keep_output=True, verbose=0)
    assert tuple(s.output.shape) == (1, 2, 4) and tuple(x.shape) == (1, 2, 4)  # as after one call

    class Pops(nn.Module):
        def forward(self, batch, extra):
            extra.append(batch.pop("labels"))
            return batch["x"] * len(extra)

    batch, extra = {"x": torch.ones(2), "labels": torch.zeros(2)}, []
    s = profile_summary(Pops(), (batch, extra), keep_output=True, verbose=0)
    assert torch.equal(s.output, torch.ones(2)) and list(batch) == ["x"] and len(extra) == 1

    class Scales(nn.Module):
        def forward(self, x):
            x.data.mul_(2)  # no version bump
            return x + 1

    x = torch.ones(2)
    s = profile_summary(Scales(), x, keep_output=True, verbose=0)
    assert torch.equal(s.output, torch.full((2,), 3.0)) and torch.equal(x, torch.full((2,), 2.0))
    with pytest.raises(ValueError, match="iterator or generator"):
        profile_summary(nn.Identity(), (iter([torch.ones(1)]),), verbose=0)


def test_weights_written_by_forward_and_other_rngs_end_as_after_one_call(seed):
    import random

    import numpy as np

    class Writes(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(2))
            self.register_buffer("shift", torch.ones(2).requires_grad_())

        def forward(self, x):
            with torch.no_grad():
                self.w.mul_(0.5)
            return x * self.w + self.shift + random.random() + float(np.random.rand())

    m = Writes()
    random.seed(0), np.random.seed(0)
    s = profile_summary(m, torch.zeros(2), backward=True, keep_output=True, verbose=0)
    assert torch.equal(m.w.detach(), torch.full((2,), 0.5)) and m.shift.grad is None
    m2 = Writes()
    random.seed(0), np.random.seed(0)
    assert torch.allclose(s.output, m2(torch.zeros(2)))  # same draws as one unprofiled call


def test_generators_the_model_holds_are_put_back():
    class Holder(nn.Module):  # draws from its own generator and from one it shares with the model
        def __init__(self, shared):
            super().__init__()
            self.shared, self.own = shared, torch.Generator().manual_seed(7)

        def forward(self, x):
            return x + torch.rand(x.shape, generator=self.shared) + torch.rand(x.shape, generator=self.own)

    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.gen = torch.Generator().manual_seed(123)
            self.lin = nn.Linear(4, 4)
            self.holder = Holder(self.gen)

        def forward(self, x):
            return self.holder(self.lin(x)) * torch.rand(x.shape, generator=self.gen)

    x = torch.randn(2, 4)
    m, twin = Noisy(), Noisy()
    twin.load_state_dict(m.state_dict())
    assert [id(g) for g in capture.module_index(m).generators] == [id(m.gen), id(m.holder.own)]
    before = [m.gen.get_state(), m.holder.own.get_state()]
    s = profile_summary(m, x, warmup=1, iters=3, keep_output=True, verbose=0)
    # four passes drew from them; they read as before the profile
    assert torch.equal(m.gen.get_state(), before[0]) and torch.equal(m.holder.own.get_state(), before[1])
    first = twin(x)
    assert torch.equal(s.output, first)  # the last recorded pass drew what one call draws
    assert torch.equal(m(x), first)      # and the user's next call too


class TryBoth(nn.Module):
    """Try a fast path, fall back when it raises (the model catches the failure)."""

    def __init__(self, fast, slow):
        super().__init__()
        self.fast, self.slow = fast, slow

    def forward(self, x):
        try:
            return self.fast(x)
        except RuntimeError:
            return self.slow(x)


def test_caught_failure_inside_forward_does_not_count_macs(seed):
    s = profile_summary(TryBoth(nn.Linear(512, 512), nn.Linear(4, 3)), torch.randn(2, 4), verbose=0)
    assert s.total_macs == 2 * 4 * 3 and s.row("fast").macs == 0
    assert any("raised an exception the model caught (fast)" in n for n in s.notes), s.notes


def test_deepcopy_inside_forward_and_error_after_a_caught_failure(seed):
    import copy

    class EMA(nn.Module):
        def __init__(self):
            super().__init__()
            self.student = nn.Linear(4, 4)

        def forward(self, x):
            return self.student(x) + copy.deepcopy(self.student)(x)  # copies the marked module

    m, x = EMA(), torch.randn(2, 4)
    s = profile_summary(m, x, keep_output=True, verbose=0)
    assert torch.equal(s.output, m(x)) and "forward" not in m.student.__dict__

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.probe = nn.Linear(5, 5)

        def forward(self, x):
            try:
                self.probe(x)
            except RuntimeError:
                pass
            raise KeyError("real failure in Net")

    with pytest.raises(ProfileError, match=r"module '0' \(Net\)"):
        profile_summary(nn.Sequential(Net()), torch.randn(2, 4), verbose=0)

    class Wraps(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(5, 5)

        def forward(self, x):
            try:
                return self.inner(x)
            except RuntimeError as e:
                raise ValueError("wrapped") from e

    with pytest.raises(ProfileError, match=r"module 'inner' \(Linear\) failed with input shapes \(\[2, 4\]\)"):
        profile_summary(Wraps(), torch.randn(2, 4), verbose=0)


def test_a_hook_that_raises_is_reported_on_its_own_module():
    """Markers wrap forward only: a submodule's hook raising must not be blamed on the parent."""
    m = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 2)))
    x = torch.randn(2, 4)

    def reject(mod, args):
        raise ValueError("rejected by a pre-hook")

    h = m[1][1].register_forward_pre_hook(reject)
    with pytest.raises(ProfileError, match=r"hook of module '1\.1' \(Linear\) failed with input shapes "
                                           r"\(\[2, 4\]\): ValueError: rejected by a pre-hook"):
        profile_summary(m, x, verbose=0)
    h.remove()
    h = m[1][1].register_forward_hook(lambda mod, args, out: out.sum(5))  # a bad dim: raises after forward
    with pytest.raises(ProfileError, match=r"hook of module '1\.1' \(Linear\) failed with input shapes \(\[2, 4\]\)"):
        profile_summary(m, x, verbose=0)
    h.remove()
    assert profile_summary(m, x, verbose=0).rows[-1].output_shapes == torch.Size([2, 2])  # nothing left behind

    class Checks(nn.Module):  # the module's own forward raising: still named as its forward
        def forward(self, x):
            return x @ torch.ones(3, 3)

    with pytest.raises(ProfileError, match=r"forward of module '1' \(Checks\) failed with input shapes \(\[2, 4\]\)"):
        profile_summary(nn.Sequential(nn.Identity(), Checks()), x, verbose=0)

    # the root's own hooks too (no forward of any module raised), before and after its forward
    h = m.register_forward_pre_hook(reject)
    with pytest.raises(ProfileError, match=r"hook of module '\(root\)' \(Sequential\) failed with input shapes "
                                           r"\(\[2, 4\]\): ValueError: rejected by a pre-hook"):
        profile_summary(m, x, verbose=0)
    h.remove()
    h = m.register_forward_hook(lambda mod, args, out: out.sum(5))
    with pytest.raises(ProfileError, match=r"hook of module '\(root\)' \(Sequential\) failed with input shapes"):
        profile_summary(m, x, verbose=0)
    h.remove()
    with pytest.raises(ZeroDivisionError):  # raised outside the model (the loss): unchanged
        profile_summary(m, x, loss_fn=lambda out: 1 / 0, verbose=0)
    assert profile_summary(m, x, verbose=0).rows[0].output_shapes == torch.Size([2, 2])


def test_a_size_passed_as_inputs_gets_a_hint():
    with pytest.raises(ProfileError, match=r"look like a size: pass a tensor such as torch.randn\(1, 4\)"):
        profile_summary(nn.Linear(4, 2), (1, 4), verbose=0)


def test_input_subclasses_sparse_buffers_and_cause_chains(seed):
    import copy

    class AttrDict(dict):
        __getattr__ = dict.__getitem__

    class ReadsAttr(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)
            self.register_buffer("sp", torch.eye(4).to_sparse())

        def forward(self, batch):
            return self.l(batch.x) + torch.sparse.mm(self.sp, batch.x.T).T

    s = profile_summary(ReadsAttr(), (AttrDict(x=torch.randn(2, 4)),), verbose=0)  # 4 passes, same types
    assert s.rows[0].output_shapes == torch.Size([2, 4])

    def patched(x):
        return x * 2

    class Copies(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(4, 4)
            self.inner.forward = patched  # an instance-level forward: a function, not a method

        def forward(self, x):
            return copy.deepcopy(self.inner)(x)

    m = Copies()
    s = profile_summary(m, torch.ones(2, 4), keep_output=True, verbose=0)
    assert torch.equal(s.output, torch.full((2, 4), 2.0)) and m.inner.__dict__["forward"] is patched

    class A(nn.Module):
        def forward(self, x):
            raise RuntimeError("from A")

    class B(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = A()

        def forward(self, x):
            try:
                self.a(x)
            except RuntimeError as e:
                err = e
            raise ValueError("wrapped") from err  # a cause only, no context

    with pytest.raises(ProfileError, match=r"module 'a' \(A\)"):
        profile_summary(B(), torch.randn(2, 3), verbose=0)


def test_caught_failure_excludes_its_children_and_lazy_buffers_end_as_after_one_call(seed):
    class Fast(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 4)

        def forward(self, x):
            self.l(x)
            raise RuntimeError("no fast path")

    s = profile_summary(TryBoth(Fast(), nn.Linear(4, 4)), torch.randn(2, 4), verbose=0)
    assert s.total_macs == 2 * 4 * 4 and s.row("fast.l").macs == 0
    x = torch.randn(8, 4)
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(4, 4), nn.LazyBatchNorm1d())
    ref(x)
    one = ref[1].running_mean
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.LazyBatchNorm1d())
    profile_summary(m, x, warmup=1, iters=3, verbose=0)
    assert torch.allclose(m[1].running_mean, one)  # not four passes of momentum


def test_frozen_dict_input_scalar_kwarg_and_lazy_batchnorm_counter(seed):
    class Frozen(dict):
        def __setitem__(self, k, v):
            raise TypeError("frozen")

    class Get(nn.Module):
        def forward(self, batch, scale=None):
            return batch["x"] * (1 if scale is None else scale)

    s = profile_summary(Get(), (Frozen(x=torch.ones(1, 2)),), verbose=0)
    assert s.rows[0].output_shapes == torch.Size([1, 2])
    s = profile_summary(Get(), {"batch": {"x": torch.ones(1, 2)}, "scale": torch.tensor(0.5)}, verbose=0)
    assert "scale: []" in str(s.table(columns=["input_shape"]))  # a 0-dim tensor input is shown
    x = torch.randn(8, 4)
    ref, m = nn.LazyBatchNorm1d(momentum=None), nn.LazyBatchNorm1d(momentum=None)
    ref(x)
    profile_summary(m, x, warmup=1, iters=3, verbose=0)
    assert int(m.num_batches_tracked) == int(ref.num_batches_tracked) == 1
    assert torch.allclose(m.running_mean, ref.running_mean)


def test_affine_grid_is_counted_or_listed_never_zero():
    import torch.nn.functional as F

    class Grid(nn.Module):
        def forward(self, theta):
            return F.affine_grid(theta, (8, 1, 32, 32), align_corners=False)

    s = profile_summary(Grid(), torch.randn(8, 2, 3), verbose=0)
    assert s.total_macs == 8 * 32 * 32 * 3 * 2 or "aten::affine_grid_generator" in s.uncounted_ops
