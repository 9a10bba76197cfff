import collections

import pytest
import torch

import torchscope
from torchscope import capture, count
from torchscope._ext import C

OPC = C.OP_COLS


def top_level_ops(trace):
    """Counter of (name, tensor input shapes) for the top-level forward ops of iteration 0."""
    ops = trace.ops
    top = (ops[:, OPC["parent"]] < 0) & (ops[:, OPC["scope"]] == 0) & (ops[:, OPC["iter"]] == 0)
    out = collections.Counter()
    for r in ops[top]:
        shapes = count.tensor_shapes(count.decode_args(trace.args, r[OPC["args_off"]], r[OPC["args_len"]]))
        out[(trace.names[r[OPC["name"]]], repr(shapes))] += 1
    return out


def profiler_top_level_ops(fn):
    with torch.profiler.profile(record_shapes=True) as prof:
        fn()
    out = collections.Counter()
    for e in prof.events():
        if e.cpu_parent is None and e.name.startswith("aten::"):
            out[(e.name, repr(e.input_shapes))] += 1
    return out


def model_state(model):
    """Everything profiling must leave untouched."""
    return {
        "training": [m.training for m in model.modules()],
        "forward_in_dict": ["forward" in m.__dict__ for m in model.modules()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
                  for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "devices": [p.device for p in model.parameters()],
        "grad_enabled": torch.is_grad_enabled(),
    }


@pytest.fixture
def seed():
    torch.manual_seed(0)
