"""The pytest plugin: baselines written, passed against, failed on a regression (pytester)."""
import importlib.metadata
import json
import textwrap

import pytest

from torchscope.pytest_plugin import baseline_path

pytest_plugins = ["pytester"]


def plugin_args():
    """-p torchscope.pytest_plugin unless the installed entry point already loads it (pip install)."""
    eps = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value == "torchscope.pytest_plugin" for ep in eps):
        return []
    return ["-p", "torchscope.pytest_plugin"]


TEST_FILE = """
import torch
from torch import nn

WIDTH = {width}

def test_mlp(torchscope_baseline):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 4))
    s = torchscope_baseline(model, torch.randn(2, 8), iters=1{extra})
    assert s.total_params == (8 * WIDTH + WIDTH) + (WIDTH * 4 + 4)
"""


@pytest.fixture
def project(pytester):
    # times are too noisy for a test of the mechanism: params and memory gate here
    pytester.makeini("[pytest]\ntorchscope_max_time = none\n")
    return pytester


def run(pytester, *args):
    return pytester.runpytest_inprocess(*plugin_args(), "-p", "no:cacheprovider",
                                        "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def test_write_pass_then_fail_on_a_doubled_layer(project):
    project.makepyfile(test_model=TEST_FILE.format(width=16, extra=""))
    r = run(project, "--torchscope-update-baselines")
    r.assert_outcomes(passed=1)
    path = project.path / "tests" / "torchscope_baselines" / "test_model" / "test_mlp.json"
    assert path.exists()
    r.stdout.fnmatch_lines(["*torchscope: wrote 1 baseline(s)*"])
    base = json.loads(path.read_text())
    assert base["total_params"] == 8 * 16 + 16 + 16 * 4 + 4 and base["schema_version"] == 1

    run(project).assert_outcomes(passed=1)  # against itself

    project.makepyfile(test_model=TEST_FILE.format(width=32, extra=""))
    r = run(project)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([
        "*performance regression against the baseline*",
        "*0 (Linear)*changed*144 -> 288*",
        "*FAIL: total params 212 -> 420*exceeds --max-params 0*",
        "*--torchscope-update-baselines*",
    ])
    assert "Traceback" not in r.stdout.str()
    # a per-call override accepts it; the baseline file is untouched by a failing run
    project.makepyfile(test_model=TEST_FILE.format(width=32, extra=", max_params='+100%', max_memory=None"))
    run(project).assert_outcomes(passed=1)
    assert json.loads(path.read_text())["total_params"] == 212


def test_marker_and_ini_thresholds(project):
    project.makepyfile(test_model=TEST_FILE.format(width=16, extra=""))
    run(project, "--torchscope-update-baselines").assert_outcomes(passed=1)
    marked = TEST_FILE.format(width=32, extra="").replace(
        "def test_mlp", "import pytest\n@pytest.mark.torchscope(max_params='+150%', max_memory='+150%')\ndef test_mlp")
    project.makepyfile(test_model=marked)
    run(project).assert_outcomes(passed=1)
    project.makeini("[pytest]\ntorchscope_max_time = none\ntorchscope_max_params = none\n"
                    "torchscope_max_memory = none\n")
    project.makepyfile(test_model=TEST_FILE.format(width=32, extra=""))
    run(project).assert_outcomes(passed=1)  # every gate off in the ini
    project.makeini("[pytest]\ntorchscope_max_time = none\ntorchscope_max_params = none\n"
                    "torchscope_max_memory = none\ntorchscope_max_macs = 0\n")
    r = run(project)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*FAIL: total MACs*exceeds --max-macs 0*"])


def test_missing_baseline_fails_with_instructions(project):
    project.makepyfile(test_model=TEST_FILE.format(width=16, extra=""))
    r = run(project)
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*no baseline for this test at*test_mlp.json*--torchscope-update-baselines*"])


def test_baseline_dir_ini_option(project):
    project.makeini("[pytest]\ntorchscope_max_time = none\ntorchscope_baseline_dir = perf/base\n")
    project.makepyfile(test_model=TEST_FILE.format(width=16, extra=""))
    run(project, "--torchscope-update-baselines").assert_outcomes(passed=1)
    assert (project.path / "perf" / "base" / "test_model" / "test_mlp.json").exists()
    run(project).assert_outcomes(passed=1)


def test_benchmark_extra_info(project):
    pytest.importorskip("pytest_benchmark")
    project.makepyfile(test_bench=textwrap.dedent("""
        import torch
        from torch import nn

        def test_speed(benchmark, torchscope_baseline):
            torch.manual_seed(0)
            model = nn.Linear(8, 4)
            x = torch.randn(2, 8)
            torchscope_baseline(model, x, iters=1)
            benchmark(model, x)
    """))
    out = project.path / "bench.json"
    r = run(project, "--torchscope-update-baselines", f"--benchmark-json={out}", "--benchmark-min-rounds=1",
            "--benchmark-max-time=0.001", "--benchmark-warmup=off")
    r.assert_outcomes(passed=1)
    info = json.loads(out.read_text())["benchmarks"][0]["extra_info"]
    assert info["total_params"] == 36 and info["total_macs"] == 64
    assert info["total_time_ns"] > 0 and "peak_memory" in info


def test_baseline_path_from_node_id(pytester):
    config = pytester.parseconfig(*plugin_args())
    p = baseline_path(config, "tests/perf/test_x.py::TestA::test_b[cpu-1]")
    assert p.replace("\\", "/").endswith("tests/torchscope_baselines/tests/perf/test_x/TestA.test_b[cpu-1].json")
    assert baseline_path(config, "test_y.py::test_z", name="big model").endswith("test_z-big_model.json")
