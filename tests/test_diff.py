"""`torchscope diff`: row matching, thresholds, exit status (torchscope.diff)."""
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from torchscope import cli, export, profile_summary
from torchscope.diff import diff, parse_threshold


def net(width=64, extra=False):
    torch.manual_seed(0)
    layers = [nn.Linear(32, width), nn.ReLU(), nn.Linear(width, 10)]
    if extra:
        layers.append(nn.Linear(10, 10))
    return nn.Sequential(*layers)


@pytest.fixture(scope="module")
def jsons(tmp_path_factory):
    d = tmp_path_factory.mktemp("diff")
    x = torch.randn(4, 32)
    out = {}
    for key, model in (("base", net()), ("doubled", net(128)), ("extra", net(extra=True))):
        s = profile_summary(model, x, verbose=0, iters=1)
        out[key] = str(d / f"{key}.json")
        export.to_json(s, out[key])
    return out


def test_parse_threshold_forms():
    t = parse_threshold("+10%", "time")
    assert t.relative and t.value == 10 and t.limit(200.0) == 20.0
    assert parse_threshold("10%", "memory").limit(1000) == 100
    assert parse_threshold("2ms", "time").limit(1e9) == 2e6 and not parse_threshold("2ms", "time").relative
    assert parse_threshold("500us", "time").value == 5e5 and parse_threshold("1.5s", "time").value == 1.5e9
    assert parse_threshold("5MiB", "memory").value == 5 * 2**20 and parse_threshold("4096", "memory").value == 4096
    assert parse_threshold("0", "params").value == 0 and parse_threshold("1.5M", "macs").value == 1.5e6
    assert parse_threshold("-5%", "time").limit(100) == -5
    for bad, kind in (("10x", "time"), ("ms", "time"), ("+", "params"), ("5 parsecs", "memory")):
        with pytest.raises(ValueError, match=f"bad --max-{kind}"):
            parse_threshold(bad, kind)


def test_identical_summaries_pass(jsons):
    res = diff(jsons["base"], jsons["base"], max_time="+10%", max_memory="+5%", max_params="0")
    assert res.exit_code == 0 and res.failures == [] and res.changed == []
    assert res.compared == 4
    assert "no module call changed" in res.text and "OK: no threshold exceeded" in res.text


def test_doubled_layer_is_listed_and_fails_the_params_limit(jsons):
    res = diff(jsons["base"], jsons["doubled"], max_params="0")
    assert res.exit_code == 1
    changed = {r.label: r for r in res.changed}
    assert set(changed) == {"Sequential (Sequential)", "0 (Linear)", "1 (ReLU)", "2 (Linear)"}
    assert changed["0 (Linear)"].base["params"] == 32 * 64 + 64
    assert changed["0 (Linear)"].new["params"] == 32 * 128 + 128
    assert "2,112 -> 4,224 (+100.0%)" in res.text  # params of layer 0, base -> new with the change
    assert any(f.startswith("total params 2,762 -> 5,514") and "--max-params 0" in f for f in res.failures)
    assert "FAIL: total params" in res.text
    # a generous limit passes; only increases count
    assert diff(jsons["base"], jsons["doubled"], max_params="+200%").exit_code == 0
    assert diff(jsons["doubled"], jsons["base"], max_params="0").exit_code == 0


def test_added_and_removed_rows(jsons):
    res = diff(jsons["base"], jsons["extra"])
    assert [(r.label, r.status) for r in res.changed] == [("Sequential (Sequential)", "changed"),
                                                         ("3 (Linear)", "added")]
    back = diff(jsons["extra"], jsons["base"])
    assert ("3 (Linear)", "removed") in [(r.label, r.status) for r in back.changed]
    assert "1 added" in res.text and "1 removed" in back.text


def test_time_and_memory_thresholds_relative_and_absolute(jsons):
    with open(jsons["base"]) as f:
        base = json.load(f)
    base["peak_memory"] = 10_000  # set here: the fallback backend measures no memory
    slow = json.loads(json.dumps(base))
    slow["total_time_ns"] = base["total_time_ns"] * 1.25
    slow["peak_memory"] = base["peak_memory"] + 1000
    slow["rows"][1]["fwd_time_ns"] = base["rows"][1]["fwd_time_ns"] * 3 + base["total_time_ns"]
    res = diff(base, slow, max_time="+10%")
    assert res.exit_code == 1 and "pass time" in res.failures[0] and "--max-time +10%" in res.failures[0]
    assert [r.label for r in res.changed] == ["0 (Linear)"]  # the slowed row, listed with its time
    assert diff(base, slow, max_time="+50%").exit_code == 0
    extra_ms = base["total_time_ns"] * 0.25 / 1e6
    assert diff(base, slow, max_time=f"{extra_ms * 2}ms").exit_code == 0
    assert diff(base, slow, max_time=f"{extra_ms / 2}ms").exit_code == 1
    assert diff(base, slow, max_memory="500").exit_code == 1
    assert diff(base, slow, max_memory="2000").exit_code == 0
    rel = 100.0 * 1000 / base["peak_memory"]
    assert diff(base, slow, max_memory=f"+{rel * 1.1}%").exit_code == 0
    assert diff(base, slow, max_memory=f"+{rel * 0.9}%").exit_code == 1


def test_mismatched_runs_are_noted(jsons):
    with open(jsons["base"]) as f:
        base = json.load(f)
    other = json.loads(json.dumps(base))
    other["meta"]["device"] = "cuda:0"
    other["peak_memory"] = None
    res = diff(base, other, max_memory="+5%")
    assert res.exit_code == 0
    assert any("devices differ" in n for n in res.notes)
    assert any("--max-memory not checked" in n for n in res.notes)


def test_cli_diff_exit_status(jsons, capsys):
    assert cli.main(["diff", jsons["base"], jsons["base"], "--max-params", "0", "--max-time", "+10%"]) == 0
    assert "OK" in capsys.readouterr().out
    assert cli.main(["diff", jsons["base"], jsons["doubled"], "--max-params", "0"]) == 1
    out = capsys.readouterr().out
    assert "0 (Linear)" in out and "changed" in out and "FAIL: total params" in out
    assert cli.main(["diff", jsons["base"], jsons["doubled"], "--all"]) == 0  # no thresholds: report only
    # unreadable input is an error (2), never mistaken for a regression (1) or a pass (0)
    assert cli.main(["diff", jsons["base"], jsons["base"] + ".missing"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such summary file" in err
    assert cli.main(["diff", jsons["base"], jsons["base"], "--max-time", "fast"]) == 2
    assert "bad --max-time" in capsys.readouterr().err


def test_python_m_torchscope_diff_subprocess(jsons):
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "torchscope", "diff", jsons["base"], jsons["doubled"],
                        "--max-params", "0", "--max-time", "+1000%"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert "FAIL: total params" in r.stdout and "Traceback" not in r.stderr


def test_forward_and_backward_runs_are_noted_and_negative_limits_parse(jsons, tmp_path, capsys):
    with open(jsons["base"]) as f:
        base = json.load(f)
    assert base["meta"]["pass"] == "forward" and base["meta"]["mode"] == "train"
    s = profile_summary(net(), torch.randn(4, 32), backward=True, iters=1, verbose=0)
    assert s.meta["pass"] == "forward + backward"
    res = diff(base, s.to_dict())
    assert any("passes differ: forward vs forward + backward (times and memory are not comparable)" in n
               for n in res.notes), res.notes
    old = json.loads(json.dumps(base))
    del old["meta"]["pass"], old["meta"]["mode"]  # a file written before they were recorded: no note
    assert not any("differ" in n for n in diff(old, base).notes)
    # a negative limit (a required decrease) as a separate argument, like any other value
    assert cli.main(["diff", jsons["doubled"], jsons["base"], "--max-params", "-1%", "--max-time", "-0ms"]) in (0, 1)
    out = capsys.readouterr()
    assert "error" not in out.err and "FAIL: total params" not in out.out   # params went down by half
    assert cli.main(["diff", jsons["base"], jsons["base"], "--max-params", "-1%"]) == 1  # not down by 1%


def test_noise_floor_and_malformed_rows(jsons, tmp_path, capsys):
    import dataclasses

    t = dataclasses.replace(parse_threshold("+50%", "time"), floor=1e6)
    assert t.limit(72_000) == 1e6 and t.limit(10e6) == 5e6   # tiny passes: the floor; big: the percentage
    assert parse_threshold("-5%", "time").limit(100) == -5      # no floor: a required decrease stays one
    with open(jsons["base"]) as f:
        d = json.load(f)
    d["rows"][1] = "x"
    bad = tmp_path / "bad_row.json"
    bad.write_text(json.dumps(d))
    assert cli.main(["diff", jsons["base"], str(bad)]) == 2     # an error, never read as a regression
    assert "not a torchscope summary" in capsys.readouterr().err


def test_negative_absolute_time_limit_is_printed_in_units(jsons):
    res = diff(jsons["base"], jsons["base"], max_time="-5ms")
    assert res.exit_code == 1 and "--max-time -5.00 ms" in res.text


def test_negative_limit_ignores_the_noise_floor_and_bad_files_are_input_errors(tmp_path, capsys):
    import dataclasses
    t = dataclasses.replace(parse_threshold("-50%", "time"), floor=1e6)  # the pytest plugin's noise floor
    assert t.limit(20_000) == -10_000  # demands a decrease; not "allow +1 ms"
    assert parse_threshold("10%", "time").limit(100) == 10
    s = profile_summary(nn.Linear(4, 2), torch.randn(2, 4), verbose=0)
    good = tmp_path / "good.json"
    export.to_json(s, str(good))
    for bad_field, value in (("meta", "x"), ("total_params", "abc"), ("total_params", True)):
        d = json.loads(good.read_text())
        d[bad_field] = value
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(d))
        assert cli.main(["diff", str(good), str(bad), "--max-params", "0"]) == 2, bad_field
        assert "not a valid torchscope summary" in capsys.readouterr().err
    d = json.loads(good.read_text())
    d["rows"][0]["fwd_time_ns"] = "fast"
    with pytest.raises(ValueError, match="row 0 has fwd_time_ns='fast'"):
        export.from_dict(d)
