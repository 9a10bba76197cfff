"""The pure-Python fallback backend runs the same tests, where meaningful.

Tests marked `native` need what only the C++ recorder gives (op nesting,
allocator events, backward links) and are deselected here by that marker.
"""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
def test_suite_passes_on_the_python_fallback(tmp_path):
    files = ["test_counts.py", "test_formulas.py", "test_report.py", "test_compat.py", "test_safety.py", "test_meta.py", "test_reliability.py",
             "test_backward.py", "test_recorder.py", "test_structure.py"]
    env = dict(os.environ, TORCHSCOPE_BACKEND="python")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not native",
                        "-W", "ignore::UserWarning", *[os.path.join(HERE, f) for f in files]],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout


def test_fallback_backend_reports_itself():
    code = ("import warnings, torch\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import torchscope\n"
            "s = torchscope.profile_summary(torch.nn.Linear(4, 3), torch.randn(2, 4), verbose=0)\n"
            "print(any('fallback' in str(x.message) for x in w), s.total_macs, s.rows[0].mem_allocated)\n"
            "print(any('fallback' in n for n in s.notes))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, TORCHSCOPE_BACKEND="python"), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "24", "None", "True"]
