"""torchscope.summary(): the call forms of torchsummary, torchinfo and pytorch-model-summary (as the
seed tutorials use them), the layouts, and the errors for bad arguments."""
import warnings

import re

import pytest
import torch
from torch import nn

from conftest import model_state
from torchscope import ProfileError, ProfileSummary, summary


class SimpleModel(nn.Module):  # the torchsummary tutorial's CNN (268,650 params, computed there by hand)
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1)
        self.fc1 = nn.Linear(32 * 8 * 8, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc2(torch.relu(self.fc1(x)))


class MultiInput(nn.Module):  # the "multiple inputs" tutorial model: one Sequential used twice
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 1, kernel_size=3, stride=1, padding=1), nn.ReLU())

    def forward(self, y, z):
        return self.features(y), self.features(z)


class AutoEncoder(nn.Module):  # the Lightning tutorial's model (decoder unused in forward)
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 3))
        self.decoder = nn.Sequential(nn.Linear(3, 128), nn.ReLU(), nn.Linear(128, 28 * 28))

    def forward(self, m):
        return self.encoder(m)


class Emb(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.head = nn.Embedding(50, 8), nn.Linear(8, 2)

    def forward(self, idx):
        return self.head(self.emb(idx))


def mlp():  # the iris MLP of the model.eval() tutorial
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))


# ----------------------------------------------------------------------- torchsummary call forms
def test_torchsummary_size_without_batch(capsys):
    s = summary(SimpleModel(), (3, 32, 32))
    out = capsys.readouterr().out
    assert out.strip() == str(s).strip() and isinstance(s, ProfileSummary)
    # sizes read as torchsummary reads them: its layout, and the tutorial's rows with -1 for the batch
    assert out.splitlines()[1].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]
    for i, (layer, shape, params) in enumerate((("Conv2d-1", "[-1, 16, 32, 32]", "448"),
                                                ("Conv2d-2", "[-1, 32, 16, 16]", "4,640"),
                                                ("Linear-3", "[-1, 128]", "262,272"),
                                                ("Linear-4", "[-1, 10]", "1,290"))):
        assert out.splitlines()[3 + i] == f"{layer:>20}  {shape:>25} {params:>15}"  # torchsummary's format
    assert s.total_params == 268650 and "Total params: 268,650" in out
    assert s.row("conv1").output_shapes == torch.Size([2, 16, 32, 32])   # really run with a batch of 2
    assert any("per-sample" in n for n in s.notes)


def test_torchsummary_layout_lists_rows_like_torchsummary(capsys):
    """Rows in the order torchsummary's forward hooks fire (a block after its children), same numbering,
    shapes and params; checked against torchsummary itself on a model with nested blocks."""
    torchsummary = pytest.importorskip("torchsummary", reason="installed by .ci/setup")

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(x)) + x

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Block(), nn.Sequential(Block(), nn.MaxPool2d(2)),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    torchsummary.summary(model, (3, 8, 8), device="cpu")
    theirs = capsys.readouterr().out
    str(summary(model, (3, 8, 8), batch_size=-1))
    ours = capsys.readouterr().out

    def rows(text):  # the header, the rules and the rows (up to the second "=" rule), character for character
        lines = text.splitlines()
        return lines[:[i for i, ln in enumerate(lines) if ln and set(ln) == {"="}][1] + 1]
    assert rows(ours) == rows(theirs) and len(rows(ours)) > 10
    assert [r.split()[0] for r in rows(ours)[3:7]] == ["Conv2d-1", "Conv2d-2", "ReLU-3", "Block-4"]


def test_torchsummary_input_size_keyword_on_an_mlp():
    torchinfo = pytest.importorskip("torchinfo")
    m = mlp()
    s = summary(m, input_size=(4,), verbose=0)
    text = str(s)
    assert "[-1, 10]" in text and "[-1, 3]" in text
    assert s.rows[-1].output_shapes == torch.Size([2, 3])
    assert s.total_params == 83 == torchinfo.summary(m, input_size=(4,), verbose=0).total_params


def test_guessing_the_batch_leaves_model_and_rng_untouched():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 3))  # train mode: the dropout draws random numbers
    before, rng = model_state(m), torch.get_rng_state()
    s = summary(m, (4,), mode="same", verbose=0)  # started on (4,) to see the Linear's input, then run
    assert s.rows[-1].output_shapes == torch.Size([2, 3])
    assert model_state(m) == before and torch.equal(torch.get_rng_state(), rng)


def test_torchsummary_batch_size_minus_one_and_given():
    s = summary(mlp(), input_size=(4,), batch_size=-1, verbose=0)
    text = str(s)
    assert text.splitlines()[1].split() == ["Layer", "(type)", "Output", "Shape", "Param", "#"]  # its layout
    assert "Linear-1" in text and "[-1, 10]" in text and "[2, 10]" not in text
    assert s.rows[1].output_shapes == torch.Size([2, 10])
    s5 = summary(mlp(), (4,), 5, "cpu", verbose=0)  # torchsummary's positional order
    assert s5.rows[1].output_shapes == torch.Size([5, 10]) and "[5, 10]" in str(s5)
    assert not any("per-sample" in n for n in s5.notes)  # batch_size says so: nothing guessed


def test_torchsummary_several_inputs_as_a_list_of_sizes():
    s = summary(MultiInput(), [(1, 18, 18), (1, 30, 30)], verbose=0)
    calls = [r for r in s.rows if r.name == "features.0"]
    assert [r.output_shapes for r in calls] == [torch.Size([2, 1, 18, 18]), torch.Size([2, 1, 30, 30])]
    assert [r.repeat for r in calls] == [False, True]
    assert str(s).count("Conv2d-") == 2 and "(shared)" in str(s)  # per-sample sizes: torchsummary's layout
    ti = s.table(style="torchinfo", batch_as=-1)
    assert "([-1, 1, 18, 18], [-1, 1, 30, 30])" in ti and "(recursive)" in ti
    assert s.total_params == 10  # the shared Sequential counted once (torchsummary would say 20)
    s2 = summary(MultiInput(), [(1, 18, 18), (1, 30, 30)], batch_size=-1, verbose=0)
    table = _without_notes(s2)
    assert _without_notes(s)[:len(table)] == table  # the same table; s notes how it read the sizes


def test_device_cpu_and_cuda():
    m = mlp()
    s = summary(m, (4,), device="cpu", verbose=0)
    assert s.device == "cpu"
    if torch.cuda.is_available():
        g = summary(m, (4,), device="cuda", verbose=0)
        assert g.device.startswith("cuda") and next(m.parameters()).device.type == "cpu"  # moved back
    else:  # torchsummary's default device: falls back to the CPU, and says so
        with pytest.warns(UserWarning, match="CUDA is not available"):
            g = summary(m, (4,), device="cuda", verbose=0)
        assert g.device == "cpu" and any("CUDA is not available" in n for n in g.notes)
        assert "CUDA is not available" in str(g)
    with pytest.raises(ValueError, match="device"):
        summary(m, (4,), device="nonsense", verbose=0)


# ----------------------------------------------------------------------- torchinfo call forms
def test_torchinfo_full_shapes_and_totals_match_torchinfo(capsys):
    torchinfo = pytest.importorskip("torchinfo")
    tv = pytest.importorskip("torchvision")
    model = tv.models.resnet18()
    ours = summary(model, input_size=(1, 3, 64, 64))
    out = capsys.readouterr().out
    theirs = torchinfo.summary(model, input_size=(1, 3, 64, 64), verbose=0)
    assert (ours.total_params, ours.trainable_params) == (theirs.total_params, theirs.trainable_params)
    # torchinfo also counts BatchNorm/bias adds as mult-adds; torchscope counts conv/matmul MACs only
    assert ours.total_mult_adds == ours.total_macs
    assert 0 < theirs.total_mult_adds - ours.total_mult_adds < 0.001 * theirs.total_mult_adds
    assert "Layer (type:depth-idx)" in out and "├─Conv2d: 1-1" in out and "[1, 64, 32, 32]" in out
    assert "│    └─BasicBlock: 2-1" in out and "[-1" not in out  # full shapes: nothing assumed
    assert f"Total params: {theirs.total_params:,}" in out and "Total mult-adds (M): 148.56" in out


def test_torchinfo_list_of_sizes_is_several_inputs():
    s = summary(MultiInput(), input_size=[(1, 1, 8, 8), (1, 1, 9, 9)], verbose=0)
    assert [r.output_shapes for r in s.rows if r.name == "features.0"] == \
        [torch.Size([1, 1, 8, 8]), torch.Size([1, 1, 9, 9])]


def test_input_data_tensor_list_dict_nested_and_forward_kwargs():
    m = MultiInput()
    x, y = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 9, 9)
    assert summary(m, input_data=[x, y], verbose=0).rows[-1].output_shapes == torch.Size([1, 1, 9, 9])
    assert summary(m, input_data={"y": x, "z": y}, verbose=0).rows[1].output_shapes == torch.Size([1, 1, 8, 8])
    assert summary(mlp(), input_data=torch.randn(5, 4), verbose=0).rows[0].output_shapes == torch.Size([5, 3])

    class Nested(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, pair, scale=1.0):
            a, b = pair
            return self.lin(a) * scale + b

    n = Nested()
    before = model_state(n)
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    s = summary(n, input_data=[(a, b)], scale=3.0, verbose=0, keep_output=True)
    assert s.rows[0].output_shapes == torch.Size([2, 4])
    with torch.no_grad():
        assert torch.allclose(s.output, n.lin(a) * 3.0 + b)  # the forward kwarg reached forward
    assert model_state(n) == before                           # its binding removed, flags intact
    with pytest.raises(ProfileError, match="nope"):            # a wrong one fails in forward, named
        summary(n, input_data=[(a, b)], nope=1, verbose=0)
    assert model_state(n) == before


def test_forward_kwarg_is_applied():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x, double=False):
            y = self.lin(x)
            return torch.cat([y, y], 1) if double else y

    s = summary(Scaled(), input_size=(2, 4), double=True, verbose=0)
    assert s.rows[0].output_shapes == torch.Size([2, 8])


def test_col_names_every_column_and_depth():
    cols = ("input_size", "output_size", "num_params", "params_percent", "kernel_size", "mult_adds",
            "trainable", "self_time", "total_time", "mem_allocated", "mem_retained", "num_ops", "flops")
    m = SimpleModel()
    m.fc2.weight.requires_grad_(False)
    s = summary(m, input_size=(1, 3, 32, 32), col_names=cols, depth=1, verbose=0)
    text = str(s)
    header = text.splitlines()[1]
    for title in ("Input Shape", "Output Shape", "Param #", "Param %", "Kernel Shape", "Mult-Adds", "Trainable",
                  "Self CPU", "CPU total", "Mem alloc", "Mem retained", "Ops", "FLOPs"):
        assert title in header
    conv1 = next(ln for ln in text.splitlines() if "Conv2d: 1-1" in ln)
    assert "[1, 3, 32, 32]" in conv1 and "[3, 3]" in conv1 and "0.17%" in conv1 and "442,368" in conv1
    assert "884,736" in conv1 and "True" in conv1   # FLOPs = 2 x MACs; trainable
    fc2 = next(ln for ln in text.splitlines() if "Linear: 1-4" in ln)
    assert "Partial" in fc2                          # weight frozen, bias trainable
    assert s.row("conv1").fwd_time_ns > 0 and s.meta["warmup"] == 1  # a time column: one warm-up pass
    two = summary(nn.Sequential(SimpleModel()), input_size=(1, 3, 32, 32), depth=1, verbose=0)
    assert "Conv2d" not in str(two) and "SimpleModel: 1-1" in str(two)
    assert "268,650" in str(two)                     # the depth limit folds children into the row
    assert "Conv2d: 2-1" in str(summary(nn.Sequential(SimpleModel()), input_size=(1, 3, 32, 32), depth=2,
                                        verbose=0))


def test_dtypes_long_for_embeddings():
    s = summary(Emb(), input_size=(2, 7), dtypes=[torch.long], verbose=0)
    assert s.row("emb").output_shapes == torch.Size([2, 7, 8]) and s.total_params == 50 * 8 + 18
    with pytest.raises(ProfileError, match=r"dtypes=\[torch.long\]") as ei:
        summary(Emb(), input_size=(2, 7), verbose=0)
    assert "Embedding" in str(ei.value)
    with pytest.raises(ValueError, match="dtypes"):
        summary(Emb(), input_size=(2, 7), dtypes=[torch.long, torch.long], verbose=0)


def test_batch_dim_inserts_a_batch_of_one():
    s = summary(mlp(), input_size=(4,), batch_dim=0, verbose=0)
    assert s.rows[0].output_shapes == torch.Size([1, 3]) and "[1, 3]" in str(s)


def test_mode_sets_the_pass_and_restores_every_flag():
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    m = nn.Sequential(nn.Linear(4, 4), Spy(), nn.BatchNorm1d(4), nn.Dropout(0.5))
    m[2].eval()                     # mixed flags: each must come back as it was
    before = [x.training for x in m.modules()]
    summary(m, input_size=(3, 4), verbose=0)  # default: eval, like torchinfo
    assert seen[-1] is False and [x.training for x in m.modules()] == before
    summary(m, input_size=(3, 4), mode="train", verbose=0)
    assert seen[-1] is True and [x.training for x in m.modules()] == before
    seen.clear()
    summary(m, input_size=(3, 4), mode="same", verbose=0)
    assert seen == [True] and [x.training for x in m.modules()] == before
    with pytest.raises(ProfileError):  # restored on error too
        summary(m, input_size=(3, 5), mode="eval", verbose=0)
    assert [x.training for x in m.modules()] == before
    with pytest.raises(ValueError, match="mode"):
        summary(m, input_size=(3, 4), mode="test", verbose=0)


def test_row_settings():
    m = MultiInput()
    plain = str(summary(m, input_size=[(1, 1, 8, 8), (1, 1, 9, 9)], verbose=0))
    assert "├─Sequential: 1-1" in plain and "└─Conv2d: 2-1" in plain
    s = summary(m, input_size=[(1, 1, 8, 8), (1, 1, 9, 9)], verbose=0,
                row_settings=("var_names", "ascii_only", "hide_recursive_layers"))
    text = str(s)
    assert "Layer (type (var_name))" in text and "+ Sequential (features)" in text
    assert "|    + Conv2d (0)" in text and "├" not in text and "│" not in text
    assert ": 1-1" not in text           # "depth" not asked for
    assert text.count("Conv2d") == 1 and "(recursive)" not in text  # the second call hidden
    numbered = str(summary(m, input_size=[(1, 1, 8, 8), (1, 1, 9, 9)], verbose=0, row_settings=("depth",)))
    assert "Conv2d: 2-1" in numbered and "Conv2d: 2-3" in numbered
    with pytest.raises(ValueError, match="row_settings"):
        summary(m, input_size=[(1, 1, 8, 8), (1, 1, 9, 9)], row_settings=("bold",), verbose=0)


def test_verbose_and_returned_totals(capsys):
    m = mlp()
    m[2].requires_grad_(False)
    s = summary(m, input_size=(8, 4), verbose=0)
    assert capsys.readouterr().out == ""
    summary(m, input_size=(8, 4), verbose=1)
    assert "Total params: 83" in capsys.readouterr().out
    assert (s.total_params, s.trainable_params) == (83, 50)
    assert s.total_mult_adds == s.total_macs == 8 * (4 * 10 + 10 * 3)
    assert s.summary_list is s.rows and s.total_input == 8 * 4 * 4 == s.input_bytes
    assert s.total_param_bytes == 83 * 4
    text = str(s)
    assert "Non-trainable params: 33" in text and "Total mult-adds (M): 0.00" in text
    # the memory lines: torchinfo's labels, measured values, labelled as such
    lines = {ln.split(":")[0]: ln for ln in text.splitlines() if "(MB)" in ln}
    assert set(lines) == {"Input size (MB)", "Forward/backward pass size (MB)", "Params size (MB)",
                          "Estimated Total Size (MB)"}
    assert all("measured" in ln for k, ln in lines.items() if k != "Input size (MB)")
    unmeasured = str(summary(mlp(), input_size=(8, 4), record_memory=False, verbose=0))
    assert "Forward/backward pass size (MB): not measured" in unmeasured
    assert "(input + params only: a lower bound, the pass's memory was not measured)" in unmeasured


@pytest.mark.native  # the allocator events come from the C++ recorder
def test_memory_lines_hold_measured_values():
    x = torch.randn(64, 256)
    s = summary(nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 8)), input_data=x, verbose=0)
    assert s.peak_memory >= 64 * 512 * 4 and s.total_output_bytes == s.peak_memory  # the hidden activation
    lines = {ln.split(":")[0]: ln.split(":")[1].split() for ln in str(s).splitlines() if "(MB)" in ln}
    assert float(lines["Input size (MB)"][0]) == pytest.approx(x.numel() * 4 / 1e6, abs=0.006)
    assert float(lines["Forward/backward pass size (MB)"][0]) == pytest.approx(s.peak_memory / 1e6, abs=0.006)
    assert float(lines["Params size (MB)"][0]) == pytest.approx((256 * 512 + 512 + 512 * 8 + 8) * 4 / 1e6, abs=0.006)
    assert float(lines["Estimated Total Size (MB)"][0]) == pytest.approx(
        (s.input_bytes + s.peak_memory + s.param_bytes) / 1e6, abs=0.006)
    tsum = str(summary(nn.Linear(256, 8), (256,), batch_size=-1, verbose=0))  # torchsummary: MiB, like it
    assert "Params size (MB): 0.01" in tsum and "Estimated Total Size (MB)" in tsum


# ----------------------------------------------------------------------- pytorch-model-summary
def _without_notes(summary_or_text) -> list:
    """The lines of a table without its "Note:" lines (the Python fallback adds one to every summary)."""
    return [ln for ln in str(summary_or_text).splitlines() if not ln.startswith("Note:")]


def test_pytorch_model_summary_form(capsys):
    m = SimpleModel()
    x = torch.zeros(2, 3, 32, 32)
    s = summary(m, x, show_input=False, show_hierarchical=False, max_depth=1, print_summary=False,
                show_parent_layers=False)
    assert capsys.readouterr().out == ""    # it returns the table, prints only with print_summary=True
    text = str(s)
    assert "Tr. Param #" in text and "Conv2d-1" in text and "[2, 16, 32, 32]" in text
    summary(m, x, show_input=True, show_parent_layers=True, show_hierarchical=True, print_summary=True)
    out = capsys.readouterr().out
    assert "Input Shape" in out and "Parent Layers" in out and "[2, 3, 32, 32]" in out
    assert "Hierarchical Summary" in out and "Linear(in_features=2048, out_features=128, bias=True), " \
        "262,272 params" in out
    nested = nn.Sequential(nn.Sequential(SimpleModel()), nn.Linear(10, 2))
    one = str(summary(nested, torch.zeros(2, 3, 32, 32)))            # Sequentials are transparent
    assert "SimpleModel-1" in one and "Conv2d" not in one and "Linear-2" in one
    two = str(summary(nested, torch.zeros(2, 3, 32, 32), max_depth=2))
    assert "Conv2d-1" in two and "SimpleModel" not in two
    # its batch_size: -1 (the default) changes nothing; another value is a line under the totals
    assert str(summary(m, x, batch_size=-1)) == text
    four = _without_notes(summary(m, x, batch_size=4))
    assert four[:-2] == _without_notes(text)[:-1] and four[-2] == "Batch size: 4"


def test_pytorch_model_summary_layout_character_for_character():
    """pytorch-model-summary's format: name and shape columns 3 wider than their longest value (at least
    15), two spaces before the shapes, counts 15 wide, rules 35 + those widths long."""
    m = nn.Sequential(nn.Conv2d(1, 10, 5), nn.Flatten(), nn.Linear(10 * 24 * 24, 10))
    x = torch.zeros(1, 1, 28, 28)
    got = _without_notes(summary(m, x))
    rows = [("Conv2d-1", "[1, 10, 24, 24]", "260"), ("Flatten-2", "[1, 5760]", "0"),
            ("Linear-3", "[1, 10]", "57,610")]
    layer_w, shape_w = max(15, *(len(r[0]) for r in rows)) + 3, max(15, *(len(r[1]) for r in rows)) + 3

    def line(a, b, c, d):
        return f"{a:>{layer_w}}  {b:>{shape_w}} {c:>15} {d:>15}"
    width = 35 + layer_w + shape_w
    assert got == (["-" * width, line("Layer (type)", "Output Shape", "Param #", "Tr. Param #"), "=" * width]
                   + [line(a, b, c, c) for a, b, c in rows] + ["=" * width, "Total params: 57,870",
                   "Trainable params: 57,870", "Non-trainable params: 0", "-" * width])
    parent = str(summary(m, x, show_parent_layers=True, show_hierarchical=True)).splitlines()
    assert parent[1] == f"{'Parent Layers':>16} " + line("Layer (type)", "Output Shape", "Param #", "Tr. Param #")
    assert len(parent[0]) == len(parent[1]) == width + 16  # (with parent layers the rule meets the rows)
    head = next(i for i, ln in enumerate(parent) if " Hierarchical Summary " in ln)
    pad = (max(map(len, parent[head + 2:-3])) - 20) // 2  # its title is centred on the widest line
    title = "=" * pad + " Hierarchical Summary " + "=" * pad
    assert parent[head - 3:head + 2] == ["-" * (width + 16), "", "", title, ""]
    assert parent[-3:] == ["", "", "=" * (2 * pad + 22)]  # blank lines as pytorch-model-summary's


# ----------------------------------------------------------------------- other layouts
def test_lightning_layout_and_a_class_instead_of_an_instance():
    s = summary(AutoEncoder, (28 * 28,), style="lightning", verbose=0)  # the tutorial passes the class
    text = str(s)
    head = text.splitlines()[0]
    for title in ("Name", "Type", "Params", "Mode", "In sizes", "Out sizes"):
        assert title in head
    enc = next(ln for ln in text.splitlines() if ln.startswith("0 | encoder"))
    assert "100 K" in enc and "train" in enc and "[-1, 784]" in enc and "[-1, 3]" in enc
    dec = next(ln for ln in text.splitlines() if ln.startswith("1 | decoder"))
    assert dec.rstrip().endswith("| ?") and "101 K" in dec     # never called: no sizes
    assert "202 K     Total params" in text and "Trainable params" in text
    assert "0.810     Total estimated model params size (MB)" in text  # Lightning's line: 202,515 float32
    assert any("given the class AutoEncoder" in n for n in s.notes)
    with pytest.raises(TypeError, match="instance"):
        summary(nn.Linear, (4,))                            # a class that needs arguments
    with pytest.raises(ProfileError, match="mat1 and mat2"):
        summary(AutoEncoder, (1, 28, 28), verbose=0)        # the tutorial's shapes do not fit this model


def test_keras_layout():
    m = mlp()
    m[0].requires_grad_(False)
    text = str(summary(m, (4,), style="keras", verbose=0))
    lines = text.splitlines()
    assert lines[0] == 'Model: "Sequential"' and "Layer (type)" in lines[2] and "Param #" in lines[2]
    assert "0 (Linear)" in text and "(None, 10)" in text and "(None, 3)" in text
    assert "Total params: 83" in text and "Trainable params: 33" in text and "Non-trainable params: 50" in text
    # a layer called on inputs of different shapes is "multiple", as Keras prints it; same shapes stay
    rows = [ln.split() for ln in str(summary(MultiInput(), [(1, 18, 18), (1, 30, 30)], style="keras",
                                              verbose=0)).splitlines() if "(Conv2d)" in ln]
    assert rows == [["features.0", "(Conv2d)", "multiple", "10"]]
    twice = nn.Sequential(nn.Linear(4, 4))
    twice.forward = lambda x: twice[0](twice[0](x))
    assert "(None, 4)" in str(summary(twice, (4,), style="keras", verbose=0))


def test_tree_layout():
    text = str(summary(mlp(), input_size=(2, 4), style="tree", verbose=0))
    lines = text.splitlines()
    assert lines[1].startswith("Module") and lines[3].startswith("Sequential(")
    row = next(ln for ln in lines if "(0): Linear(in_features=4, out_features=10, bias=True)" in ln)
    assert "[2, 10]" in row and "50" in row           # columns appended to print(model)'s line
    assert any(ln.rstrip() == ")" for ln in lines)     # the container closes like print(model)
    with pytest.raises(ValueError, match="style"):
        summary(mlp(), input_size=(2, 4), style="fancy", verbose=0)


def test_html_repr_lists_rows_and_escapes():
    class Weird(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("a<b>", nn.Linear(2, 2))

        def forward(self, x):
            return getattr(self, "a<b>")(x)

    s = summary(Weird(), input_size=(1, 2), verbose=0, row_settings=("var_names",))
    html = s._repr_html_()
    assert html.startswith("<table>") and "<th>Output Shape</th>" in html and "[1, 2]" in html
    assert "Linear (a&lt;b&gt;)" in html and "a<b>" not in html
    assert "Estimated Total Size (MB)" in html


# ----------------------------------------------------------------------- bad arguments
def test_bad_arguments_name_the_argument():
    m = mlp()
    with pytest.raises(ValueError, match="either input_size or input_data"):
        summary(m, input_size=(2, 4), input_data=torch.randn(2, 4), verbose=0)
    with pytest.raises(ValueError, match="input_size.*zero or negative"):
        summary(m, input_size=(0, 4), verbose=0)
    with pytest.raises(ValueError, match="input_size.*zero or negative"):
        summary(m, (-1, 4), verbose=0)
    with pytest.raises(ValueError, match="input_size.*not an integer"):
        summary(m, (2.5, 4), verbose=0)
    with pytest.raises(ValueError, match="col_names.*'nope'"):
        summary(m, input_size=(2, 4), col_names=("nope",), verbose=0)
    with pytest.raises(ValueError, match="style='fancy'"):
        summary(m, input_size=(2, 4), style="fancy", verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        summary(m, (4,), batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size.*batch_dim"):
        summary(m, (4,), batch_size=2, batch_dim=0, verbose=0)
    with pytest.raises(ValueError, match="input_size given twice"):
        summary(m, (4,), input_size=(4,), verbose=0)
    with pytest.raises(TypeError, match=r"forward arguments \['mask'\] given without inputs"):
        summary(m, mask=None, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        summary(m, (4,), verbose=5)
    with pytest.raises(ValueError, match="depth"):
        summary(m, (4,), depth=-1, verbose=0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        summary("model", (4,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid call warns about nothing
        summary(m, (4,), verbose=0)


# ----------------------------------------------------------------------- input-less summary(model)
class NeverRun(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 2)
        self.head.bias.requires_grad_(False)

    def forward(self, x):
        raise AssertionError("an input-less summary must not run the model")


def test_inputless_summary_shows_the_tree_and_params_like_torchinfo(capsys):
    torchinfo = pytest.importorskip("torchinfo", reason="installed by .ci/setup")
    m = NeverRun()
    s = summary(m)
    ours = capsys.readouterr().out
    theirs = str(torchinfo.summary(m, verbose=0))

    def body(text):  # the table rows between the header rule and the totals
        lines = text.splitlines()
        return [ln.split() for ln in lines[3:lines.index(next(x for x in lines if x.startswith("Total params")))]
                if ln and not ln.startswith("=")]
    assert body(ours) == body(theirs)
    assert s.total_params == 8 * 3 * 9 + 8 + 16 + 18 and s.trainable_params == s.total_params - 2
    assert s.total_macs is None and "Total mult-adds: not counted" in ours
    assert [r.params for r in s.rows] == [sum(p.numel() for p in x.parameters()) for x in m.modules()]
    assert all(r.output_shapes is None and r.fwd_time_ns is None for r in s.rows)
    assert "no input given" in ours


def test_inputless_summary_round_trips_through_json_and_diff(tmp_path):
    from torchscope.diff import diff
    s = summary(NeverRun(), style="keras", verbose=0)
    assert "Total MACs" not in str(s) and "-" in str(s)
    back = ProfileSummary.from_json(s.to_json())
    assert back.total_macs is None and back.total_params == s.total_params
    for style in ("torchscope", "torchinfo", "torchsummary", "pms", "keras", "lightning", "tree"):
        assert back.table(style=style) == s.table(style=style), style
    assert back.table(sort="params") == s.table(sort="params")
    for x in (s, back):
        with pytest.raises(ValueError, match="sort='macs': that column was not measured"):
            x.table(sort="macs")
    base, new = tmp_path / "a.json", tmp_path / "b.json"
    base.write_text(s.to_json())
    new.write_text(summary(NeverRun(), verbose=0).to_json())
    res = diff(str(base), str(new), max_params="0%")
    assert res.ok and res.totals["params"] == (s.total_params, s.total_params)


def test_torchsummary_depth_folds_subtrees_so_rows_add_up():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
            self.head = nn.Linear(4 * 26 * 26, 2)

        def forward(self, x):
            return self.head(self.block(x).flatten(1))

    text = str(summary(Net(), (1, 28, 28), batch_size=-1, depth=1, verbose=0))
    rows = [ln.split() for ln in text.splitlines() if ln.strip().startswith(("Sequential-", "Linear-", "Conv2d-"))]
    assert [r[0] for r in rows] == ["Sequential-1", "Linear-2"]
    assert sum(int(r[-1].replace(",", "")) for r in rows) == 40 + 5410
    assert "Conv2d-1" in str(summary(Net(), (1, 28, 28), batch_size=-1, verbose=0))  # no depth: the leaves


@pytest.mark.parametrize("size, hint", [(4, "(4,)"), ((None, 4), "batch_size=-1")])
def test_malformed_positional_size_is_a_size_error(size, hint):
    model = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))
    with pytest.raises(ValueError, match="expected a size") as e:
        summary(model, size, verbose=0)
    assert hint in str(e.value)


def test_lightning_mode_lines_count_submodules_and_structure_only_keeps_module_text():
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Linear(4, 2))
    m[1].eval()
    text = str(summary(m, style="lightning", verbose=0))  # no input: nothing runs
    assert "2         Modules in train mode" in text and "1         Modules in eval mode" in text
    assert "| train" in text and "| eval" in text
    assert "In sizes" not in text and "Out sizes" not in text  # nothing ran: Lightning shows no size columns
    tree = str(summary(m, style="tree", verbose=0))
    assert "(0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))" in tree
    ran = str(summary(m[:2], input_size=(1, 3, 8, 8), style="lightning", verbose=0))
    assert "1         Modules in train mode" in ran and "1         Modules in eval mode" in ran


def test_summary_list_has_torchinfo_layer_info_names(seed):
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    s = summary(m, input_size=(1, 3, 8, 8), verbose=0)
    conv = s.summary_list[1]
    assert (conv.class_name, conv.var_name, conv.num_params, conv.is_recursive) == ("Conv2d", "0", 224, False)
    assert conv.input_size == [1, 3, 8, 8] and conv.output_size == [1, 8, 6, 6]


def test_pms_form_passes_a_single_list_as_one_argument(seed):
    class Stacks(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(4, 2)

        def forward(self, xs):
            return torch.stack([self.l(x) for x in xs])

    s = summary(Stacks(), [torch.randn(4), torch.randn(4)], print_summary=False)
    assert s.total_macs == 2 * 4 * 2


def test_module_under_two_parents_counts_in_both_and_torchsummary_says_why_rows_differ():
    shared = nn.Linear(4, 4)

    class TwoParents(nn.Module):
        def __init__(self):
            super().__init__()
            self.p, self.q = nn.Sequential(shared, nn.ReLU()), nn.Sequential(shared, nn.Tanh())

        def forward(self, x):
            return self.q(self.p(x))

    m = TwoParents()
    s = summary(m, input_data=torch.randn(2, 4), verbose=0)
    assert s.row("q").params == sum(p.numel() for p in m.q.parameters()) == 20 and s.total_params == 20

    class HoldsOwn(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale, self.l = nn.Parameter(torch.ones(4)), nn.Linear(4, 4)

        def forward(self, x):
            return self.l(x) * self.scale

    text = str(summary(HoldsOwn(), (4,), batch_size=-1, verbose=0))
    assert "Total params: 24" in text and "the rows add up to 20" in text


def test_torchinfo_style_has_no_marker_legend():
    class Inv(nn.Module):
        def forward(self, x):
            return torch.linalg.inv(x)

    s = summary(nn.Sequential(nn.Linear(4, 4), Inv()), input_data=torch.randn(4, 4), verbose=0)
    assert "lower bound, ? unknown" not in s.table(style="torchinfo")
    assert "lower bound, ? unknown" in s.table(style="torchscope")
