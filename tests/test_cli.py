"""The `torchscope` command line: default job, model specs, outputs and one-line errors."""
import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from torchscope import cli, export


def run_cli(*args, cwd=None):
    # UserWarnings (e.g. the fallback backend's notice) are not the CLI's error output
    env = dict(os.environ, PYTHONWARNINGS="ignore::UserWarning")
    return subprocess.run([sys.executable, "-m", "torchscope", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


def test_default_job_in_process(capsys):
    assert cli.main(["--iters", "1", "--warmup", "0", "--ascii"]) == 0
    out = capsys.readouterr().out
    assert "SmallResNet" in out and "Total params: 205,162" in out
    assert "═" not in out and "Layer (type)" in out  # --ascii


def test_module_spec_writes_json_csv_and_trace(tmp_path):
    j, c, t = tmp_path / "out.json", tmp_path / "out.csv", tmp_path / "trace.json"
    r = run_cli("torchscope.models:SmallResNet", "--input-size", "2,3,32,32", "--iters", "1",
                "--json", str(j), "--csv", str(c), "--trace", str(t), "--depth", "1")
    assert r.returncode == 0, r.stderr
    assert "torchscope.models:SmallResNet, input [2, 3, 32, 32]" in r.stdout
    assert "Total params: 205,162" in r.stdout and "conv1 (Conv2d)" not in r.stdout  # --depth 1
    s = export.from_json(str(j))
    assert s.total_params == 205162 and s.rows[0].output_shapes == torch.Size([2, 10])
    assert s.meta["iters"] == 1
    rows = list(csv.DictReader(c.open()))
    assert len(rows) == len(s.rows) and rows[0]["output_shapes"] == "[2, 10]"
    events = json.loads(t.read_text())["traceEvents"]
    assert sum(e.get("cat") == "module" for e in events) == len(s.rows)


def test_file_spec_several_inputs_and_ops(tmp_path, capsys):
    (tmp_path / "two_in.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Two(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(4, 8)
                self.b = nn.Linear(6, 8)

            def forward(self, x, y):
                return self.a(x) + self.b(y)

        def build():
            return Two()
    """))
    spec = f"{tmp_path / 'two_in.py'}:build"
    assert cli.main([spec, "--input-size", "2,4", "--input-size", "2,6", "--iters", "1", "--ops", "a",
                     "--weights"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 96" in out  # (4*8+8) + (6*8+8)
    assert "input [[2, 4], [2, 6]]" in out
    assert "Ops of a" in out and "[2, 4]" in out and "64" in out  # op drill-down: 2*4*8 MACs
    assert "a (Linear)" in out and "Numel" in out  # --weights table


def test_int64_inputs_stay_below_the_embedding_size(tmp_path, capsys):
    (tmp_path / "emb.py").write_text(textwrap.dedent("""
        from torch import nn
        def build():
            return nn.Sequential(nn.Embedding(7, 4), nn.Flatten(), nn.Linear(12, 2))
    """))
    assert cli.main([f"{tmp_path / 'emb.py'}:build", "--input-size", "5,3", "--dtype", "int64",
                     "--iters", "1"]) == 0
    out = capsys.readouterr().out
    assert "[5, 3, 4]" in out and "Total params: 54" in out


def test_torchvision_model_on_meta(capsys):
    pytest.importorskip("torchvision")
    assert cli.main(["torchvision:resnet18", "--input-size", "1,3,64,64", "--device", "meta",
                     "--iters", "1", "--depth", "0"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 11,689,512" in out and "ResNet" in out


@pytest.mark.parametrize("args, expect", [
    (["torchscope.models", "--input-size", "1,3,8,8"], "expected MODULE:CALLABLE"),
    (["no_such_pkg_xyz:build", "--input-size", "1,3"], "no module named 'no_such_pkg_xyz'"),
    (["torchscope.models:Nope", "--input-size", "1,3"], "has no attribute 'Nope'"),
    (["torchscope.models:SmallResNet", "--input-size", "1,a,3"], "bad --input-size '1,a,3'"),
    (["torchscope.models:SmallResNet"], "--input-size is required"),
    (["./missing_model_file.py:build", "--input-size", "1"], "model file not found"),
    (["torchscope.models:SmallResNet", "--input-size", "1,3,8,8", "--iters", "0"], "--iters must be >= 1"),
    (["torchscope.models:SmallResNet", "--input-size", "1,3,8,8", "--device", "nonsense"], "--device nonsense"),
    (["torchscope.models:default_model", "--dtype", "float99"], "invalid choice"),
])
def test_errors_are_one_line(args, expect, capsys):
    code = cli.main(args) if "--dtype" not in args else _exit_code(args)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert expect in err and err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("torchscope: error:")


def _exit_code(args):
    with pytest.raises(SystemExit) as e:  # argparse's own errors exit
        cli.main(args)
    return e.value.code


def test_model_failure_names_the_module(capsys):
    assert cli.main(["torchscope.models:SmallResNet", "--input-size", "1,5,16,16", "--iters", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "stem.0" in err and "[1, 5, 16, 16]" in err
    with pytest.raises(Exception, match="stem.0"):  # --debug: the real exception propagates
        cli.main(["torchscope.models:SmallResNet", "--input-size", "1,5,16,16", "--iters", "1", "--debug"])


def test_errors_in_a_subprocess_have_no_traceback(tmp_path):
    for args in (["bad-spec"], ["no_such_pkg_xyz:build", "--input-size", "1,2"],
                 ["torchscope.models:SmallResNet", "--input-size", "2x3xQ"]):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode != 0
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_factory_returning_model_and_example(capsys):
    # a callable returning (model, example input) needs no --input-size
    assert cli.main(["torchscope.models:default_model", "--iters", "1", "--warmup", "0"]) == 0
    assert "Total params: 205,162" in capsys.readouterr().out


def test_cli_table_options_sort_top_columns():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "torchscope", "--iters", "1", "--sort", "macs", "--top", "3",
                        "--columns", "params,macs"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(l for l in lines if l.startswith("Layer (type)"))
    assert "MACs" in header and "Self CPU" not in header
    body = lines[lines.index(header) + 2:lines.index(header) + 5]
    assert body[0].startswith("SmallResNet (SmallResNet)")  # the root has the most MACs
    assert not lines[lines.index(header) + 5].startswith(" ")   # exactly 3 rows, then the rule


def test_input_size_forms_and_malformed_sizes():
    for text in ("64,3,224,224", "64x3x224x224", "(64, 3, 224, 224)", "64 3 224 224", "[64,3,224,224]"):
        assert cli.parse_size(text) == (64, 3, 224, 224), text
    assert cli.parse_size("(64,)") == (64,)
    for bad in ("1,3,x,64", "1,3,,64,64", "1,3,64x64", "3.5,2", "", "1,-3"):
        with pytest.raises(cli.CliError, match="bad --input-size"):
            cli.parse_size(bad)


def test_top_must_be_positive_and_weight_columns_are_computed(capsys):
    assert cli.main(["--iters", "1", "--warmup", "0", "--top", "0"]) == 2
    assert "--top must be >= 1" in capsys.readouterr().err
    assert cli.main(["--iters", "1", "--warmup", "0", "--depth", "1", "--columns", "params,w_mean,w_std"]) == 0
    out = capsys.readouterr().out
    down = next(line for line in out.splitlines() if line.lstrip().startswith("down (Conv2d)"))
    assert down.split()[-2] != "-" and float(down.split()[-1]) > 0   # a mean and a std, measured


def test_unknown_ops_module_is_an_error_before_the_table(capsys):
    assert cli.main(["--iters", "1", "--warmup", "0", "--ops", "nope"]) == 2
    captured = capsys.readouterr()
    assert "--ops nope: no such module" in captured.err and "Layer (type)" not in captured.out


def test_table_options_and_output_paths_checked_before_profiling(tmp_path, capsys, monkeypatch):
    import torchscope
    ran = []
    monkeypatch.setattr(torchscope, "profile_summary", lambda *a, **k: ran.append(1))
    for bad, msg in ((["--sort", "bogus"], "--sort bogus"), (["--columns", "params,bogus"], "bogus"),
                     (["--depth", "-1"], "depth=-1"), (["--json", str(tmp_path / "no" / "x.json")], "does not exist"),
                     (["--dtype", "float16"], "brings its own example input")):
        assert cli.main(bad) == 2, bad
        assert msg in capsys.readouterr().err
    assert not ran  # nothing profiled
    monkeypatch.undo()
    png = tmp_path / "w"
    assert cli.main(["--iters", "1", "--warmup", "0", "--depth", "0", "--columns", "params, macs",
                     "--plot-weights", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {png}.png" in out and (tmp_path / "w.png").exists()


def test_table_is_ascii_when_stdout_cannot_print_unicode(monkeypatch):
    import io

    import torch
    from torch import nn

    import torchscope
    s = torchscope.profile_summary(nn.Linear(4, 2), torch.randn(2, 4), verbose=0)
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    text = str(s)
    text.encode("ascii")  # no box drawing, no µ
    assert "=====" in text
