"""Weight statistics and weight histograms (torchscope.weights)."""
import math
import statistics
import sys

import pytest
import torch
from torch import nn

from torchscope import weights
from torchscope.models import SmallResNet


def known_linear():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, -2.0], [0.0, 3.0, 0.0]]))
        lin.bias.copy_(torch.tensor([0.5, 0.0]))
    return lin


def test_stats_equal_hand_computed_values():
    model = nn.Sequential(known_linear(), nn.ReLU())
    (s,) = weights.weight_stats(model)  # the ReLU owns no parameters: no entry
    values = [1.0, 0.0, -2.0, 0.0, 3.0, 0.0, 0.5, 0.0]
    assert (s.name, s.type, s.numel, s.params) == ("0", "Linear", 8, ["weight", "bias"])
    assert s.mean == pytest.approx(2.5 / 8)
    assert s.std == pytest.approx(statistics.stdev(values))  # sample std, like torch.std
    assert (s.min, s.max) == (-2.0, 3.0)
    assert s.zero_fraction == 4 / 8 and s.nonfinite == 0
    w, b = weights.weight_stats(model, by="parameter")
    assert (w.name, w.numel, b.name, b.numel) == ("0.weight", 6, "0.bias", 2)
    assert w.mean == pytest.approx(2 / 6) and w.zero_fraction == pytest.approx(3 / 6)
    assert w.std == pytest.approx(statistics.stdev(values[:6]))
    assert (b.min, b.max, b.mean) == (0.0, 0.5, 0.25)


def test_chunked_accumulation_matches_torch(monkeypatch):
    torch.manual_seed(0)
    lin = nn.Linear(100, 37)
    monkeypatch.setattr(weights, "_CHUNK", 7)  # many uneven chunks: the merge must be exact
    (s,) = weights.weight_stats(lin, by="parameter")[:1]
    w = lin.weight.detach().double()
    assert s.mean == pytest.approx(float(w.mean()), rel=1e-9, abs=1e-12)
    assert s.std == pytest.approx(float(w.std()), rel=1e-9)
    assert (s.min, s.max) == (float(w.min()), float(w.max()))


def test_stats_change_nothing_and_count_shared_parameters_once():
    torch.manual_seed(0)
    model = SmallResNet().train()
    model.fc.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    stats = weights.weight_stats(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert sum(s.numel for s in stats) == sum(p.numel() for p in model.parameters())
    assert [s.name for s in stats][:2] == ["stem.0", "stem.1"]

    emb = nn.Embedding(10, 4)
    tied = nn.ModuleDict({"emb": emb, "head": nn.Linear(4, 10, bias=False)})
    tied["head"].weight = emb.weight
    st = weights.weight_stats(tied)
    assert [s.name for s in st] == ["emb"] and st[0].numel == 40


def test_nonfinite_values_and_meta_parameters():
    lin = known_linear()
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
        lin.weight[1, 1] = float("inf")
    (s,) = weights.weight_stats(lin)
    assert s.nonfinite == 2 and math.isfinite(s.mean) and s.max == 0.5 and s.min == -2.0
    assert "Non-finite" in weights.format_weight_stats([s])
    with torch.device("meta"):
        big = nn.Linear(1000, 1000)
    (m,) = weights.weight_stats(big)
    assert m.numel == 1001000 and m.mean is None and m.std is None
    table = weights.format_weight_stats(weights.weight_stats(nn.Sequential(known_linear())) + [m])
    assert "0 (Linear)" in table and "0.3125" in table and "50.0%" in table


def test_plot_weights_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    torch.manual_seed(0)
    path = tmp_path / "w.png"
    shown = weights.plot_weights(SmallResNet(), path, max_layers=4)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert len(shown) == 4 and shown[0] == "stem.0" and shown[-1] == "fc"  # spread, ends included
    assert all("bn" not in n for n in shown)  # 1-d norm parameters left out by default
    shown_all = weights.plot_weights(nn.Sequential(known_linear(), nn.BatchNorm1d(2)), tmp_path / "x.png",
                                     include_1d=True)
    assert shown_all == ["0", "1"]


def test_plot_weights_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)  # import now raises ImportError
    with pytest.raises(ImportError, match="pip install matplotlib"):
        weights.plot_weights(known_linear(), tmp_path / "w.png")
    assert not (tmp_path / "w.png").exists()
    assert weights.weight_stats(known_linear())  # the statistics never need matplotlib


def test_weight_statistics_as_table_columns():
    import numpy as np
    import torch
    from torch import nn

    from torchscope import profile_summary

    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [3.0, 0.0]]))
        lin.bias.copy_(torch.tensor([0.0, 2.0]))
    m = nn.Sequential(lin, nn.ReLU())
    s = profile_summary(m, torch.randn(1, 2), weight_stats=True, verbose=0)
    row = s.row("0")
    assert row.w_mean == 1.0 and row.w_max == 3.0 and row.w_min == 0.0 and row.w_zeros == 0.5
    assert np.isnan(s.row("1").w_mean)                      # ReLU has no parameters
    text = s.table(columns=["params", "w_mean", "w_std", "w_zeros"])
    assert "W mean" in text and "W zeros" in text and "0.5" in text


def test_weight_columns_without_statistics_are_an_error_and_summary_computes_them():
    import pytest
    import torch
    from torch import nn

    import torchscope
    from torchscope import profile_summary

    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    s = profile_summary(m, torch.randn(2, 3), verbose=0)
    with pytest.raises(ValueError, match="w_mean: weight statistics were not computed.*weight_stats=True"):
        s.table(columns=["params", "w_mean"])
    for top in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="top="):
            s.table(top=top)
    for kw in ({"input_size": (2, 3)}, {}):  # profiled and structure-only
        t = torchscope.summary(m, col_names=["num_params", "w_std"], verbose=0, **kw)
        line = next(x for x in str(t).splitlines() if "Linear" in x)
        assert line.split()[-1] not in ("-", "--") and float(line.split()[-1]) > 0, line


def test_lazy_module_gives_a_clear_error():
    import pytest
    import torch
    from torch import nn

    import torchscope

    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(4))
    with pytest.raises(ValueError, match=r"module '2' \(LazyLinear\) has uninitialized lazy parameter"):
        torchscope.weight_stats(m)
    m(torch.randn(1, 3, 8, 8))
    assert [w.name for w in torchscope.weight_stats(m)] == ["0", "2"]
