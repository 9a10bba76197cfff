"""Build paths: CMake + ctest of the C++ recorder, JIT fallback, missing compiler."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_cmake_build_and_ctest(tmp_path):
    if shutil.which("cmake") is None:
        pytest.fail("cmake is required for the C++ test (apt-get install cmake)")
    build = tmp_path / "build"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", ROOT, "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}", *gen],
                   check=True, capture_output=True)
    r = subprocess.run(["cmake", "--build", str(build), "-j2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"], capture_output=True, text=True)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "100% tests passed" in r.stdout
    # The CMake-built Python module is the same extension: it loads and records.
    so = [f for f in os.listdir(build) if f.startswith("_C.") and f.endswith(".so")]
    assert so, os.listdir(build)


def _run_python(code, env_extra, tmp_path):
    env = dict(os.environ)
    env.pop("TORCHSCOPE_BACKEND", None)  # these tests choose the backend themselves
    env.update(env_extra)
    env["TORCHSCOPE_CACHE"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)


@pytest.mark.slow
def test_jit_fallback_builds_named_after_torch_version(tmp_path):
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import torch, torchscope\n"
            "from torchscope._ext import C, TORCH_MINOR\n"
            "print(C.__name__, C.built_for_torch() == TORCH_MINOR)\n"
            "s = torchscope.profile_summary(torch.nn.Linear(4, 2), torch.randn(3, 4), verbose=0)\n"
            "print(s.total_macs)\n")
    r = _run_python(code, {"TORCHSCOPE_FORCE_JIT": "1"}, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    name, ok = r.stdout.split()[:2]
    assert name.startswith("torchscope_C_torch") and ok == "True"
    assert r.stdout.split()[2] == str(3 * 4 * 2)
    assert "building the C++ extension" in r.stderr
    # Second import reuses the cached build: no second build message... but still works.
    r2 = _run_python(code, {"TORCHSCOPE_FORCE_JIT": "1"}, tmp_path)
    assert r2.returncode == 0 and r2.stdout == r.stdout


def test_missing_compiler_says_what_to_install_and_falls_back(tmp_path):
    code = ("import torch, torchscope\n"
            "s = torchscope.profile_summary(torch.nn.Linear(4, 2), torch.randn(3, 4), verbose=0)\n"
            "print(s.total_macs, s.notes[0][:24])\n")
    r = _run_python(code, {"TORCHSCOPE_FORCE_JIT": "1", "CXX": "no-such-compiler", "PATH": "/nonexistent"},
                    tmp_path)
    assert r.returncode == 0, r.stderr
    assert "no C++ compiler" in r.stderr and "apt-get install g++" in r.stderr  # said once, actionable
    assert "fallback mode" in r.stderr
    assert r.stdout.split()[0] == str(3 * 4 * 2) and "pure-Python fallback" in r.stdout
