"""Peak FLOP/s by device and dtype, for "% of peak" (dense, no sparsity; vendor datasheets).

Override with profile_summary(..., peak_flops=...) for your exact part, clocks or
precision mode. CPUs are not listed: their peak depends on core count, clocks and
ISA in ways a table cannot know; pass peak_flops to get a percentage there.
"""
from __future__ import annotations

import torch

# (substring of torch.cuda.get_device_name(), {dtype: peak FLOP/s})
GPU_PEAKS = [
    ("H200", {torch.float32: 67e12, torch.float16: 989e12, torch.bfloat16: 989e12}),
    ("H100 PCIe", {torch.float32: 51e12, torch.float16: 756e12, torch.bfloat16: 756e12}),
    ("H100", {torch.float32: 67e12, torch.float16: 989e12, torch.bfloat16: 989e12}),  # SXM
    ("A100", {torch.float32: 19.5e12, torch.float16: 312e12, torch.bfloat16: 312e12}),
    ("L40S", {torch.float32: 91.6e12, torch.float16: 362e12, torch.bfloat16: 362e12}),
    ("A10G", {torch.float32: 31.2e12, torch.float16: 125e12, torch.bfloat16: 125e12}),
    ("V100", {torch.float32: 15.7e12, torch.float16: 125e12}),
    ("T4", {torch.float32: 8.1e12, torch.float16: 65e12}),
]


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """Peak FLOP/s for this device and dtype, or None when unknown."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in GPU_PEAKS:
        if key in name:
            return peaks.get(dtype)
    return None
