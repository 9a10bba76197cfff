"""backward=True: per-module backward time linked through (forward thread, seq_nr)."""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import model_state
from torchscope import profile_summary
from torchscope.models import SmallResNet, TransformerBlock


def _leaves_with_params(model):
    return {name for name, m in model.named_modules() if not list(m.children()) and list(m.parameters())}


@pytest.mark.parametrize("make", [lambda: (SmallResNet(), torch.randn(2, 3, 16, 16)),
                                  lambda: (TransformerBlock(), torch.randn(2, 8, 64))],
                         ids=["cnn", "transformer"])
@pytest.mark.native
def test_every_leaf_with_params_has_backward_time(make, seed):
    model, x = make()
    s = profile_summary(model, x, backward=True, warmup=1, iters=1, verbose=0)
    leaves = _leaves_with_params(model)
    rows = {r.name: r for r in s.rows}
    assert leaves and leaves <= set(rows)
    for name in leaves:
        assert rows[name].bwd_time_ns > 0, name
    # totals reconcile: the whole backward = modules + AccumulateGrad + ops outside modules (the loss)
    assert s.backward_time_ns == pytest.approx(
        s.rows[0].bwd_time_ns + s.accumulate_grad_time_ns + s.backward_outside_modules_ns, rel=1e-9)
    assert s.accumulate_grad_time_ns > 0
    for i, r in enumerate(s.rows):  # self + children = total, like the forward
        kids = sum(c.bwd_time_ns for c in s.rows if c.parent == i)
        assert r.bwd_time_ns == pytest.approx(r.bwd_self_time_ns + kids, rel=1e-9)


@pytest.mark.native
def test_backward_goes_to_the_module_that_created_the_node(seed):
    """A module whose forward is cheap but whose backward is known to be attributed to it."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.big = nn.Linear(512, 512)
            self.small = nn.Linear(512, 2)

        def forward(self, x):
            return self.small(self.big(x))

    s = profile_summary(Net(), torch.randn(256, 512), backward=True, warmup=1, iters=3, verbose=0)
    big, small = s.row("big"), s.row("small")
    assert big.bwd_time_ns > 0 and small.bwd_time_ns > 0
    # not timing-dependent (a timing comparison flaked under CPU contention): dW of 512x512 is 1 MiB, of 512x2 4 KiB
    assert big.bwd_mem_allocated >= 512 * 512 * 4 > small.bwd_mem_allocated > 0


def test_backward_keeps_user_grads_and_forward_counts(seed):
    model, x = SmallResNet(), torch.randn(2, 3, 16, 16)
    model(x).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    grad_objs = {n: p.grad for n, p in model.named_parameters()}
    before = model_state(model)
    fwd_only = profile_summary(model, x, verbose=0)
    s = profile_summary(model, x, backward=True, verbose=0)
    assert s.total_macs == fwd_only.total_macs            # backward ops are not forward MACs
    for n, p in model.named_parameters():
        assert p.grad is grad_objs[n] and torch.equal(p.grad, grads[n])
    assert model_state(model) == before


@pytest.mark.native
def test_backward_under_no_grad_and_with_loss_fn(seed):
    model, x = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), torch.randn(5, 4)
    target = torch.randint(0, 3, (5,))
    with torch.no_grad():
        s = profile_summary(model, x, loss_fn=lambda out: nn.functional.cross_entropy(out, target), verbose=0)
        assert not torch.is_grad_enabled()
    assert s.row("0").bwd_time_ns > 0 and s.row("2").bwd_time_ns > 0
    assert all(p.grad is None for p in model.parameters())


def test_backward_errors_are_clear():
    frozen = nn.Linear(3, 3).requires_grad_(False)
    with pytest.raises(ValueError, match="requires grad"):
        profile_summary(frozen, torch.randn(2, 3), backward=True, verbose=0)
    with pytest.raises(ValueError, match="scalar"):
        profile_summary(nn.Linear(3, 3), torch.randn(2, 3), loss_fn=lambda out: out, verbose=0)


def test_forward_only_has_no_backward_columns(seed):
    s = profile_summary(nn.Linear(3, 3), torch.randn(2, 3), verbose=0)
    assert s.rows[0].bwd_time_ns is None and s.backward_time_ns is None


@pytest.mark.native
def test_backward_memory_lands_on_the_layer_that_allocates_gradients(seed):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.big = nn.Linear(1024, 1024)
            self.small = nn.Linear(1024, 2)

        def forward(self, x):
            return self.small(self.big(x))

    s = profile_summary(Net(), torch.randn(64, 1024), backward=True, warmup=1, iters=1, verbose=0)
    big, small = s._cols["bwd_mem_allocated"][1], s._cols["bwd_mem_allocated"][2]
    assert s.rows[1].name == "big" and s.rows[2].name == "small"
    assert big >= 1024 * 1024 * 4          # the weight gradient of big is 4 MiB, allocated in its backward
    assert small < big
    assert s._cols["bwd_mem_allocated"][0] >= big + small  # inclusive at the root


def test_throughput_and_percent_of_peak(seed):
    lin = nn.Linear(256, 256)
    s = profile_summary(lin, torch.randn(128, 256), peak_flops=1e12, verbose=0)
    flops = 2 * 128 * 256 * 256
    assert s.achieved_flops_per_s == pytest.approx(flops / (s.rows[0].fwd_time_ns * 1e-9))
    assert s.percent_of_peak == pytest.approx(100 * s.achieved_flops_per_s / 1e12)
    assert s._cols["flops_per_s"][0] == pytest.approx(s.achieved_flops_per_s)
    assert profile_summary(lin, torch.randn(4, 256), verbose=0).percent_of_peak is None  # CPU: unknown


@pytest.mark.native
@pytest.mark.parametrize("warmup", [0, 1, 2])
def test_autocast_cached_weight_casts_stay_with_their_module(warmup, seed):
    """Inside the user's autocast context, the weight casts are cached across passes: their autograd
    nodes (ToCopyBackward0) are created once, in the first pass, and reused by later ones. They must
    still be attributed to the layer whose forward made them, not to 'outside modules'."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 8)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    from torchscope import capture
    from torchscope._ext import C
    from torchscope.attribute import attribute

    model, x = Net(), torch.randn(16, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s = profile_summary(model, x, backward=True, warmup=warmup, iters=3, verbose=0)
    assert s.backward_outside_modules_ns < 0.1 * s.backward_time_ns
    assert not any("outside modules" in n for n in s.notes)
    trace, O = s._trace, C.OP_COLS
    casts = [i for i, nm in enumerate(trace.names) if nm == "ToCopyBackward0"]
    measured = (trace.ops[:, O["scope"]] == 1) & (trace.ops[:, O["iter"]] >= 0)
    assert (measured & np.isin(trace.ops[:, O["name"]], casts)).sum() >= 3 * 2  # reused in every pass
    assert attribute(trace).bwd_outside_ns == s.backward_outside_modules_ns
    assert "Pass time (forward, loss and backward)" in str(s)
    # the warm-up passes are recorded (for linking) but never counted: iteration 0 holds the rows
    assert (trace.calls[:, C.CALL_COLS["iter"]] < 0).sum() == warmup * len(s.rows)
    assert capture.Trace is type(trace)


@pytest.mark.native
def test_backward_outside_modules_is_explained_when_large(seed):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 8)

        def forward(self, x):
            return self.lin(x)

    big = torch.randn(512, 512, requires_grad=True)
    # the loss does real work outside any module: a large matmul chain on the output
    s = profile_summary(Net(), torch.randn(4, 8), loss_fn=lambda out: (big @ big @ big).sum() + out.sum(),
                        warmup=1, iters=3, verbose=0)
    assert s.backward_outside_modules_ns > 0.1 * s.backward_time_ns
    note = next(n for n in s.notes if "outside modules" in n)
    assert "MmBackward0" in note


@pytest.mark.native
def test_checkpoint_recompute_is_not_a_forward_row(seed):
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(nn.Linear(64, 64), nn.ReLU())
            self.h = nn.Linear(64, 4)

        def forward(self, x):
            return self.h(checkpoint(self.a, x, use_reentrant=False))

    x = torch.randn(16, 64)
    s = profile_summary(Checkpointed(), x, backward=True, iters=2, verbose=0)
    assert [r.name for r in s.rows] == ["Checkpointed", "a", "a.0", "a.1", "h"]  # a is called once
    assert not any("made different module calls" in n for n in s.notes)
    assert any("ran again during the backward pass" in n for n in s.notes)
    assert s.row("a").macs == 16 * 64 * 64 and s.row("a").bwd_time_ns > 0
    assert s.peak_memory == s.rows[0].mem_peak  # the forward's peak, not stretched into the backward


def test_backward_leaves_input_grads_as_they_were(seed):
    m = nn.Linear(8, 2)
    x = torch.randn(4, 8, requires_grad=True)
    profile_summary(m, x, backward=True, warmup=1, iters=3, verbose=0)
    assert x.grad is None and m.weight.grad is None
    y = torch.randn(4, 8, requires_grad=True)
    y.grad = torch.ones(4, 8)
    kept = y.grad
    profile_summary(m, y, backward=True, verbose=0)
    assert y.grad is kept and torch.equal(kept, torch.ones(4, 8))


@pytest.mark.native
def test_reentrant_checkpoint_backward_is_not_counted_twice(seed):
    """A reentrant checkpoint runs a whole backward inside one node: the inner nodes' time goes
    to their own modules and is taken out of the outer node's, and the module's checkpointed
    call (not its first call) gets that backward."""
    from torch.utils.checkpoint import checkpoint

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(nn.Linear(256, 256), nn.Linear(256, 256))

        def forward(self, x):
            return checkpoint(self.a, self.a(x), use_reentrant=True)

    x = torch.randn(128, 256, requires_grad=True)
    s = profile_summary(Twice(), x, backward=True, iters=1, verbose=0)  # one pass: sums exact, not medians
    first, second = [r for r in s.rows if r.name == "a"]
    assert [r.num_ops for r in s.rows if r.name == "a.0"] == [1, 1]  # ops under the Function's record
    assert second.bwd_time_ns > 0 and second.bwd_mem_allocated > 0
    root = s.rows[0]
    # no double count: every node's time once, within the measured pass
    assert s.backward_time_ns < s.total_time_ns
    assert root.bwd_time_ns <= s.backward_time_ns * 1.001
    assert root.bwd_self_time_ns < root.bwd_time_ns - second.bwd_time_ns + 1


@pytest.mark.native
def test_autograd_grad_inside_forward_is_forward_work(seed):
    """A forward that calls torch.autograd.grad (force fields, gradient penalties): the modules
    after it are rows, its matmul is counted in the forward, and no backward columns appear."""
    class Force(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 64)

        def forward(self, x):
            g, = torch.autograd.grad(self.a(x).tanh().sum(), x, create_graph=True)
            return self.b(g)

    s = profile_summary(Force(), torch.randn(8, 64, requires_grad=True), verbose=0)
    assert [r.name for r in s.rows] == ["Force", "a", "b"]
    assert s.total_macs == 3 * 8 * 64 * 64  # a, b and the gradient's matmul through a
    assert s.rows[0].self_macs == 8 * 64 * 64
    assert s.rows[0].bwd_time_ns is None and not any("ran again" in n for n in s.notes)


@pytest.mark.parametrize("reentrant", [True, False])
def test_checkpoint_recompute_adds_no_rows_on_either_backend(reentrant, seed):
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Sequential(nn.Linear(32, 32), nn.ReLU())

        def forward(self, x):
            return checkpoint(self.a, x, use_reentrant=reentrant)

    s = profile_summary(Checkpointed(), torch.randn(4, 32, requires_grad=True), backward=True, verbose=0)
    assert [r.name for r in s.rows] == ["Checkpointed", "a", "a.0", "a.1"]
    assert s.total_macs == 4 * 32 * 32

    class Many(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in range(40))

        def forward(self, x):
            for b in self.blocks:
                x = checkpoint(b, x, use_reentrant=reentrant)
            return x

    s = profile_summary(Many(), torch.randn(2, 8, requires_grad=True), backward=True, verbose=0)
    from torchscope._ext import FALLBACK
    if not FALLBACK:  # (the fallback sees no engine records: it just skips the re-run calls)
        note = next(n for n in s.notes if "ran again" in n)
        assert len(note) < 300 and "40 module(s)" in note and "and 35 more" in note


@pytest.mark.native
def test_autograd_grad_in_forward_lists_no_engine_records_as_uncounted(seed):
    class Force(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(16, 16)

        def forward(self, x):
            g, = torch.autograd.grad(self.a(x).tanh().sum(), x, create_graph=True)
            return g

    s = profile_summary(Force(), torch.randn(4, 16, requires_grad=True), verbose=0)
    assert not [k for k in s.uncounted_ops if not k.startswith("(")], s.uncounted_ops
    assert "+" not in str(s).splitlines()[3]
