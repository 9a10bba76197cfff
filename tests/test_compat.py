"""torchscope.summary(): the call forms of torchsummary, torchinfo and pytorch-model-summary."""
import pytest
import torch
from torch import nn

from torchscope import summary
from torchscope.models import SmallResNet


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 4, 3)

    def forward(self, x, y):
        return self.a(x).flatten(1).sum(1) + self.b(y).flatten(1).sum(1)


def test_torchsummary_positional_size_excludes_batch(capsys):
    s = summary(SmallResNet(), (3, 32, 32))          # a CNN: the full-shape attempt fails, retried batched
    out = capsys.readouterr().out
    assert "Total params: 205,162" in out and "[2, 10]" in out
    assert any("per-sample" in n for n in s.notes)


def test_torchsummary_batch_size_minus_one_shows_minus_one():
    s = summary(mlp(), input_size=(4,), batch_size=-1, verbose=0)
    text = str(s)
    assert "Linear-1" in text and "[-1, 10]" in text and "[-1, 3]" in text
    assert "Input size (MB)" in text and "Estimated" not in text and "measured" in text
    assert s.rows[1].output_shapes == torch.Size([2, 10])  # run with a batch of 2, shown as -1


def test_several_inputs_as_sizes():
    s = summary(TwoInputs(), [(1, 18, 18), (1, 30, 30)], batch_size=2, verbose=0)
    assert s.row("a").output_shapes == torch.Size([2, 4, 16, 16])
    assert s.row("b").output_shapes == torch.Size([2, 4, 28, 28])


def test_torchinfo_full_shapes_totals_match_torchinfo():
    torchinfo = pytest.importorskip("torchinfo")
    model = SmallResNet()
    ours = summary(model, input_size=(1, 3, 32, 32), verbose=0)
    theirs = torchinfo.summary(model, input_size=(1, 3, 32, 32), verbose=0)
    assert ours.total_params == theirs.total_params
    assert ours.trainable_params == theirs.trainable_params
    # torchinfo also counts bias adds and BatchNorm as mult-adds; our convention does not (DESIGN.md)
    assert ours.total_mult_adds < theirs.total_mult_adds
    assert (theirs.total_mult_adds - ours.total_mult_adds) / theirs.total_mult_adds < 1e-3
    assert "Layer (type:depth-idx)" in str(ours) and "Total mult-adds (M)" in str(ours)


def test_input_size_4_unbatched_like_torchinfo():
    s = summary(mlp(), input_size=(4,), verbose=0)
    assert s.rows[-1].output_shapes == torch.Size([3])


def test_input_data_forms():
    m = TwoInputs()
    x, y = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 9, 9)
    assert summary(m, input_data=[x, y], verbose=0).row("b").output_shapes == torch.Size([1, 4, 7, 7])
    assert summary(m, input_data={"x": x, "y": y}, verbose=0).row("a").output_shapes == torch.Size([1, 4, 6, 6])
    assert summary(mlp(), input_data=torch.randn(5, 4), verbose=0).rows[0].output_shapes == torch.Size([5, 3])


def test_col_names_depth_row_settings():
    s = summary(SmallResNet(), input_size=(1, 3, 32, 32), depth=1, verbose=0,
                col_names=("input_size", "output_size", "num_params", "params_percent", "kernel_size",
                           "mult_adds", "trainable", "self_time", "mem_allocated"),
                row_settings=("var_names", "ascii_only"))
    text = str(s)
    for h in ("Input Shape", "Param %", "Kernel Shape", "Mult-Adds", "Trainable", "Self Time", "Mem Alloc"):
        assert h in text
    assert "Conv2d (down): 1-" in text and "+-" in text and "├" not in text
    assert "conv1" not in text                          # depth=1 hides the blocks' children
    assert "[3, 3]" in text                             # kernel shape of `down`


def test_dtypes_make_integer_inputs_for_embeddings():
    class Emb(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = nn.Embedding(50, 8), nn.Linear(8, 2)

        def forward(self, idx):
            return self.head(self.emb(idx))

    s = summary(Emb(), input_size=(2, 7), dtypes=[torch.long], verbose=0)
    assert s.row("emb").output_shapes == torch.Size([2, 7, 8])
    with pytest.raises(ValueError, match="dtypes"):
        summary(Emb(), input_size=(2, 7), dtypes=[torch.long, torch.long], verbose=0)


def test_mode_eval_sets_and_restores_training_flags():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    m[2].eval()
    before = [x.training for x in m.modules()]
    s = summary(m, input_size=(3, 4), mode="eval", style="lightning", verbose=0)
    assert [x.training for x in m.modules()] == before
    assert "eval" in str(s) and "train" not in str(s).split("Mode")[1].split("Trainable")[0]


def test_batch_dim_inserts_batch():
    s = summary(mlp(), input_size=(4,), batch_dim=0, verbose=0)
    assert s.rows[0].output_shapes == torch.Size([1, 3])


def test_pytorch_model_summary_form(capsys):
    m = mlp()
    s = summary(m, torch.randn(2, 4), show_input=True, show_hierarchical=True, show_parent_layers=True)
    assert capsys.readouterr().out == ""               # pms prints only with print_summary=True
    text = str(s)
    assert "Input Shape" in text and "Tr. Param #" in text and "Parent Layers" in text
    assert "Linear(in_features=4, out_features=10" in text  # the hierarchical view
    summary(m, torch.randn(2, 4), print_summary=True, max_depth=1)
    assert "Param #" in capsys.readouterr().out


def test_keras_and_tree_layouts():
    m = mlp()
    keras = str(summary(m, input_size=(2, 4), style="keras", verbose=0))
    assert 'Model: "Sequential"' in keras and "Non-trainable params: 0" in keras
    tree = str(summary(m, input_size=(2, 4), style="tree", verbose=0))
    assert tree.splitlines()[0].startswith("Sequential(") and "(0): Linear()" in tree and "macs=80" in tree


def test_bad_arguments_name_the_argument():
    m = mlp()
    with pytest.raises(ValueError, match="either input_size or input_data"):
        summary(m, input_size=(2, 4), input_data=torch.randn(2, 4), verbose=0)
    with pytest.raises(ValueError, match="zero or negative"):
        summary(m, input_size=(0, 4), verbose=0)
    with pytest.raises(ValueError, match="col_names"):
        summary(m, input_size=(2, 4), col_names=("nope",), verbose=0)
    with pytest.raises(ValueError, match="style"):
        summary(m, input_size=(2, 4), style="fancy", verbose=0)
    with pytest.raises(ValueError, match="needs input_size"):
        summary(m, verbose=0)


def test_float_sizes_for_an_embedding_model_hint_dtypes():
    from torchscope import ProfileError

    emb = nn.Sequential(nn.Embedding(10, 4))
    with pytest.raises(ProfileError, match=r"dtypes=\[torch.long\]") as ei:
        summary(emb, input_size=(2, 3), verbose=0)
    assert "Embedding" in str(ei.value)


def test_hide_recursive_layers_nested_input_data_and_device():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, pair):
            x, y = pair
            return self.lin(self.lin(x)) + y

    m = Shared()
    x, y = torch.randn(2, 4), torch.randn(2, 4)
    shown = str(summary(m, input_data=[(x, y)], device="cpu", verbose=0))
    assert "(recursive)" in shown
    hidden = str(summary(m, input_data=[(x, y)], row_settings=("hide_recursive_layers",), verbose=0))
    assert "(recursive)" not in hidden and hidden.count("Linear") == 1
