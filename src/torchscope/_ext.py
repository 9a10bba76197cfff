"""Loads the recorder.

Order: the C++ module prebuilt by `pip install --no-build-isolation .`; if it
is missing or was built for another torch minor version (inline accessors bake
struct layouts, DESIGN.md), JIT-build the same sources once, named after the
torch version and cached; if that is impossible (no compiler) or fails, the
pure-Python recorder (_pyrecorder.py), with one warning that says what is
missing and what to install. TORCHSCOPE_BACKEND=python forces the fallback.
"""
from __future__ import annotations

import os
import shutil
import warnings

import torch  # must be imported before the extension (it links libtorch)

TORCH_MINOR = ".".join(torch.__version__.split("+")[0].split(".")[:2])
_HERE = os.path.dirname(os.path.abspath(__file__))


def _source_dir() -> str | None:
    for d in (os.path.join(_HERE, "_csrc"), os.path.join(_HERE, "..", "..", "csrc")):
        if os.path.isfile(os.path.join(d, "recorder.cpp")):
            return os.path.abspath(d)
    return None


def _jit_build(reason: str):
    src = _source_dir()
    if src is None:
        raise ImportError(f"torchscope: C++ extension unavailable ({reason}) and its sources were not found")
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None and shutil.which("g++") is None:
        raise ImportError(
            f"torchscope: C++ extension unavailable ({reason}) and no C++ compiler was found to build it. "
            "Install one (Debian/Ubuntu: `apt-get install g++`), plus `pip install ninja`, then import again; "
            "or reinstall with `pip install --no-build-isolation torchscope` on a machine with a compiler."
        )
    from torch.utils.cpp_extension import load

    name = "torchscope_C_torch" + TORCH_MINOR.replace(".", "_")
    cache = os.environ.get("TORCHSCOPE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "torchscope"))
    build_dir = os.path.join(cache, name)
    os.makedirs(build_dir, exist_ok=True)
    warnings.warn(
        f"torchscope: {reason}; building the C++ extension for torch {TORCH_MINOR} in {build_dir} "
        "(once; later imports reuse it)",
        stacklevel=3,
    )
    return load(
        name=name,
        sources=[os.path.join(src, f) for f in ("recorder.cpp", "modules.cpp", "kernels.cpp", "bindings.cpp")],
        extra_cflags=["-O2", "-DNDEBUG", f"-DTORCHSCOPE_TORCH_MAJOR={TORCH_MINOR.split('.')[0]}",
                      f"-DTORCHSCOPE_TORCH_MINOR={int(TORCH_MINOR.split('.')[1])}"],
        build_directory=build_dir,
        verbose=False,
    )


def _native():
    if os.environ.get("TORCHSCOPE_FORCE_JIT"):
        return _jit_build("TORCHSCOPE_FORCE_JIT is set")
    try:
        from torchscope import _C  # type: ignore[attr-defined]
    except ImportError as e:
        return _jit_build(f"prebuilt extension not importable ({e})")
    if _C.built_for_torch() != TORCH_MINOR:
        return _jit_build(f"prebuilt extension was built for torch {_C.built_for_torch()}, not {TORCH_MINOR}")
    return _C


def _load():
    if os.environ.get("TORCHSCOPE_BACKEND") == "python":
        from torchscope import _pyrecorder

        warnings.warn(f"torchscope: TORCHSCOPE_BACKEND=python: {_pyrecorder.FALLBACK_NOTE}", stacklevel=3)
        return _pyrecorder
    try:
        return _native()
    except Exception as e:  # no compiler, failed build: say so once, keep working
        from torchscope import _pyrecorder

        warnings.warn(f"{e}\ntorchscope: running in fallback mode: {_pyrecorder.FALLBACK_NOTE}", stacklevel=3)
        return _pyrecorder


C = _load()
FALLBACK = getattr(C, "FALLBACK_NOTE", None)  # None with the C++ recorder
