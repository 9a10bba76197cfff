"""pytest plugin (entry point `torchscope`): performance-regression gate against stored baselines.

    def test_resnet_budget(torchscope_baseline):
        torchscope_baseline(SmallResNet().eval(), torch.randn(2, 3, 32, 32))

The fixture profiles the model and compares it to the baseline JSON stored for the test
(path from the test's node id, under `torchscope_baseline_dir`, default
tests/torchscope_baselines/ relative to the rootdir). The test fails, showing the diff
table, when the pass time, peak memory, params (or MACs) grew beyond the thresholds.
`pytest --torchscope-update-baselines` (re)writes the baselines instead.

Thresholds (forms as in `torchscope diff`: "+10%", "2ms", "5MiB", "0"; "none" disables):
ini options torchscope_max_time (default +50%), torchscope_max_memory (+10%),
torchscope_max_params (0), torchscope_max_macs (none), torchscope_time_noise (1ms: a relative
time limit never fails a change smaller than this; tiny passes vary by more than 50% on a busy
machine); per test with
@pytest.mark.torchscope(max_time="+20%", ...); per call with the same keyword arguments.

With pytest-benchmark, a test that also uses the `benchmark` fixture gets total_params,
total_macs, total_time_ns and peak_memory in benchmark.extra_info.
"""
from __future__ import annotations

import dataclasses
import os
import re

import pytest

_UPDATE_FLAG = "--torchscope-update-baselines"
_INI = {
    "torchscope_baseline_dir": ("directory of baseline JSON files, relative to the rootdir",
                                "tests/torchscope_baselines"),
    "torchscope_max_time": ("largest allowed increase of the pass time (+50%, 2ms, none)", "+50%"),
    "torchscope_max_memory": ("largest allowed increase of peak memory (+10%, 5MiB, none)", "+10%"),
    "torchscope_max_params": ("largest allowed increase of total params (0, +1%, none)", "0"),
    "torchscope_max_macs": ("largest allowed increase of total MACs (0, +1%, none)", "none"),
    "torchscope_time_noise": ("pass-time changes below this never fail a relative time limit", "1ms"),
}
_KINDS = ("time", "memory", "params", "macs")
_UNSET = object()


def pytest_addoption(parser):
    group = parser.getgroup("torchscope", "torchscope performance baselines")
    group.addoption(_UPDATE_FLAG, action="store_true", default=False,
                    help="(re)write the torchscope baselines of the tests that run, instead of comparing")
    for name, (help_, default) in _INI.items():
        parser.addini(name, help_, default=default)


def pytest_configure(config):
    config.addinivalue_line("markers", "torchscope(max_time=..., max_memory=..., max_params=..., max_macs=...): "
                                       "per-test thresholds of the torchscope_baseline fixture")
    config._torchscope_written = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    written = getattr(config, "_torchscope_written", None)
    if written:
        terminalreporter.write_sep("-", f"torchscope: wrote {len(written)} baseline(s)")
        for p in written:
            terminalreporter.write_line(f"  {p}")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-\[\]]+", "_", text).strip("_") or "test"


def baseline_path(config, nodeid: str, name: str | None = None) -> str:
    """Where the baseline of test `nodeid` (and call `name`) lives."""
    base = config.getini("torchscope_baseline_dir") or "tests/torchscope_baselines"
    root = str(getattr(config, "rootpath", None) or config.rootdir)
    folder = base if os.path.isabs(base) else os.path.join(root, base)
    path, _, test = nodeid.partition("::")
    stem = os.path.splitext(path)[0]
    fname = _safe(test.replace("::", ".")) + (f"-{_safe(name)}" if name else "") + ".json"
    return os.path.join(folder, *[_safe(p) for p in stem.replace("\\", "/").split("/") if p], fname)


def _off(v) -> bool:
    return v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "off", "no", "false"))


class BaselineChecker:
    """The `torchscope_baseline` fixture's value: call it with a model and inputs (any
    profile_summary keyword: backward, iters, ...) or hand it a summary via check()."""

    def __init__(self, request):
        self.request = request
        self.config = request.config
        self.calls = 0
        self.summaries = []
        marker = request.node.get_closest_marker("torchscope")
        self.marker = dict(marker.kwargs) if marker else {}

    def thresholds(self, overrides: dict) -> dict:
        from . import diff as _diff

        out = {}
        for k in _KINDS:
            v = overrides.get(k, _UNSET)
            if v is _UNSET:
                v = self.marker.get(f"max_{k}", _UNSET)
            if v is _UNSET:
                v = self.config.getini(f"torchscope_max_{k}")
            if not _off(v):
                try:
                    out[k] = _diff.parse_threshold(v, k)
                    if k == "time" and out[k].relative:
                        noise = _diff.parse_threshold(self.config.getini("torchscope_time_noise") or "0", "time")
                        out[k] = dataclasses.replace(out[k], floor=noise.value)
                except ValueError as e:
                    raise pytest.UsageError(f"torchscope: {e}") from None
        return out

    def path(self, name: str | None = None) -> str:
        return baseline_path(self.config, self.request.node.nodeid, name)

    def __call__(self, model, inputs=None, *, name: str | None = None, max_time=_UNSET, max_memory=_UNSET,
                 max_params=_UNSET, max_macs=_UNSET, **profile_kwargs):
        import torchscope

        profile_kwargs.setdefault("verbose", 0)
        profile_kwargs.setdefault("iters", 5)
        summary = torchscope.profile_summary(model, inputs, **profile_kwargs)
        return self.check(summary, name=name, max_time=max_time, max_memory=max_memory,
                          max_params=max_params, max_macs=max_macs)

    def check(self, summary, *, name: str | None = None, max_time=_UNSET, max_memory=_UNSET,
              max_params=_UNSET, max_macs=_UNSET):
        """Compare `summary` with this test's baseline (or write it with the update flag)."""
        from . import diff as _diff
        from . import export

        self.calls += 1
        if name is None and self.calls > 1:
            name = str(self.calls)  # several unnamed checks in one test: -2, -3, ...
        self.summaries.append(summary)
        self._benchmark_info(summary)
        path = self.path(name)
        if self.config.getoption(_UPDATE_FLAG):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            export.to_json(summary, path)
            self.config._torchscope_written.append(path)
            return summary
        if not os.path.exists(path):
            pytest.fail(f"torchscope: no baseline for this test at {path}; create it with "
                        f"pytest {_UPDATE_FLAG}", pytrace=False)
        thr = self.thresholds({"time": max_time, "memory": max_memory, "params": max_params,
                               "macs": max_macs})
        try:
            res = _diff.diff(path, summary, max_time=thr.get("time"), max_memory=thr.get("memory"),
                             max_params=thr.get("params"), max_macs=thr.get("macs"),
                             base_label=os.path.relpath(path), new_label="this run")
        except ValueError as e:
            pytest.fail(f"torchscope: cannot read baseline {path}: {e}; rewrite it with "
                        f"pytest {_UPDATE_FLAG}", pytrace=False)
        if res.failures:
            pytest.fail(f"torchscope: performance regression against the baseline\n{res.text}\n"
                        f"(if intended, update the baseline with pytest {_UPDATE_FLAG})", pytrace=False)
        return summary

    def _benchmark_info(self, summary):
        if "benchmark" not in self.request.fixturenames:
            return
        try:
            bm = self.request.getfixturevalue("benchmark")
        except pytest.FixtureLookupError:
            return
        info = getattr(bm, "extra_info", None)
        if isinstance(info, dict):
            info.update(total_params=summary.total_params, total_macs=summary.total_macs,
                        total_time_ns=summary.total_time_ns, peak_memory=summary.peak_memory)


@pytest.fixture
def torchscope_baseline(request) -> BaselineChecker:
    """Profile a model and compare it with this test's stored baseline (see module doc)."""
    return BaselineChecker(request)
