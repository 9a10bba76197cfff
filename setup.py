"""Builds torchscope._C ahead of time against the installed torch.

    pip install --no-build-isolation .

The C++ sources are also copied into the package (torchscope/_csrc) so that
torchscope can JIT-build the extension at import when the prebuilt module is
missing or was built for another torch version (see src/torchscope/_ext.py).
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["csrc/recorder.cpp", "csrc/modules.cpp", "csrc/kernels.cpp", "csrc/bindings.cpp"]
TORCH_MAJOR, TORCH_MINOR = torch.__version__.split("+")[0].split(".")[:2]


class BuildPyWithSources(build_py):
    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "torchscope", "_csrc")
        os.makedirs(dest, exist_ok=True)
        for name in os.listdir(os.path.join(HERE, "csrc")):
            if name.endswith((".cpp", ".h")):
                shutil.copy2(os.path.join(HERE, "csrc", name), dest)


setup(
    ext_modules=[
        CppExtension(
            "torchscope._C",
            SOURCES,
            # -DNDEBUG is required: RecordFunction::inputs() asserts on an
            # uninitialised field in debug builds (DESIGN.md).
            extra_compile_args=["-O2", "-DNDEBUG", f"-DTORCHSCOPE_TORCH_MAJOR={TORCH_MAJOR}",
                                f"-DTORCHSCOPE_TORCH_MINOR={int(TORCH_MINOR)}"],
        )
    ],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True), "build_py": BuildPyWithSources},
)
