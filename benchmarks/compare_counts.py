"""Params and MACs of torchscope next to its peers on real models (a script, not a test).

    PYTHONPATH=src .venv/bin/python benchmarks/compare_counts.py > benchmarks/COUNTS.md

Models (batch 1, eval mode, torch.no_grad, random weights): torchvision resnet50 and vit_b_16 at
224x224, transformers BertModel(BertConfig()) and GPT2LMHeadModel(GPT2Config()) on 128 tokens,
a small Mixtral-style mixture of experts and a 2-layer nn.LSTM on 128 steps; a hand count (formula in
_models) where one is short to write.
Tools: torchscope (params: each Parameter once; MACs: per-op formulas, see DESIGN.md),
torchinfo (summary(...).total_params / total_mult_adds), torch.utils.flop_counter.FlopCounterMode
(total FLOPs / 2) and fvcore (FlopCountAnalysis.total(), which counts one fused multiply-add as
one "flop", i.e. MACs; parameter_count) when installed. A peer that fails prints its error.
CPU only; a few minutes.
"""
from __future__ import annotations

import datetime
import platform
import sys
import warnings

import torch

import torchscope
from torchscope import count as _count


def _transformer_macs(layers, tokens, d, ffn, heads):
    """Hand count for an encoder/decoder stack: q,k,v,out projections + 2 FFN matmuls per token,
    plus per head scores q·kᵀ and attn·v (tokens x tokens x head_dim each)."""
    per_token = 4 * d * d + 2 * d * ffn
    attention = heads * tokens * tokens * (d // heads) * 2
    return layers * (tokens * per_token + attention)


def _models():
    """(label, builder, input, hand-counted MACs or None)."""
    import torchvision
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    img = torch.randn(1, 3, 224, 224)
    ids = torch.randint(0, 1000, (1, 128))
    yield "resnet50 (torchvision), 1x3x224x224", lambda: torchvision.models.resnet50(), img, None
    # 16x16 patch conv on 196 patches + 12 layers on 197 tokens + classifier head
    vit = 196 * 768 * 3 * 16 * 16 + _transformer_macs(12, 197, 768, 3072, 12) + 768 * 1000
    yield "vit_b_16 (torchvision), 1x3x224x224", lambda: torchvision.models.vit_b_16(), img, vit
    bert = _transformer_macs(12, 128, 768, 3072, 12) + 768 * 768  # + pooler on the first token
    yield "BERT-base (BertModel(BertConfig())), 1x128 tokens", lambda: BertModel(BertConfig()), ids, bert
    gpt2 = _transformer_macs(12, 128, 768, 3072, 12) + 128 * 768 * 50257  # + tied LM head
    yield ("GPT-2 (GPT2LMHeadModel(GPT2Config())), 1x128 tokens", lambda: GPT2LMHeadModel(GPT2Config()),
           ids, gpt2)
    # a mixture of experts (random router; each token reaches top-2 of 8 experts, so the
    # experts' count is fixed whatever the routing): q,o d x d and k,v d x kv_dim per token,
    # scores and values, the router, and 2 experts x 3 matmuls (gate, up, down) per token
    d, ffn, kv, experts, layers, tokens = 256, 512, 128, 8, 2, 128
    moe = layers * (tokens * (2 * d * d + 2 * d * kv + d * experts + 2 * 3 * d * ffn) + 2 * tokens * tokens * d)
    yield ("Mixtral-style MoE (MixtralModel, d=256, 2 layers, 8 experts, top-2), 1x128 tokens",
           lambda: _mixtral(d, ffn, experts, layers), ids, moe)
    # not one of the four headline models: shows the recurrent-layer gap.
    # per step: 4 gates x hidden x (input + hidden) per layer
    lstm = 128 * (4 * 512 * (256 + 512) + 4 * 512 * (512 + 512))
    yield ("LSTM(256, 512, num_layers=2, batch_first=True), 1x128 steps",
           lambda: torch.nn.LSTM(256, 512, num_layers=2, batch_first=True), torch.randn(1, 128, 256), lstm)


def _mixtral(d, ffn, experts, layers):
    from transformers import MixtralConfig, MixtralModel

    return MixtralModel(MixtralConfig(hidden_size=d, intermediate_size=ffn, num_hidden_layers=layers,
                                      num_attention_heads=8, num_key_value_heads=4, num_local_experts=experts,
                                      num_experts_per_tok=2, vocab_size=1000))


def run_torchscope(model, x):
    s = torchscope.profile_summary(model, x, warmup=0, iters=1, verbose=0)
    missing = {k: v for k, v in s.uncounted_ops.items() if k != _count.ZERO_MAC_KEY}
    return s.total_params, s.total_macs, missing


def run_torchinfo(model, x):
    import torchinfo

    s = torchinfo.summary(model, input_data=[x], verbose=0, depth=10)
    return s.total_params, s.total_mult_adds


def run_flop_counter(model, x):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        model(x)
    return None, fc.get_total_flops() // 2


class _FirstOutput(torch.nn.Module):
    """fvcore traces with torch.jit, which rejects transformers' ModelOutput and cache objects:
    hand it the first output tensor only (the counted computation is the same)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, use_cache=False, return_dict=False)[0]


def run_fvcore(model, x):
    from fvcore.nn import FlopCountAnalysis, parameter_count

    wrapped = _FirstOutput(model) if hasattr(model, "config") else model  # transformers model
    a = FlopCountAnalysis(wrapped, (x,))
    a.unsupported_ops_warnings(False)
    a.uncalled_modules_warnings(False)
    a.tracer_warnings("none")
    return parameter_count(model)[""], int(a.total())


def _fmt_params(n):
    return "—" if n is None else f"{n:,}"


def _fmt_macs(n):
    return "—" if n is None else f"{n / 1e9:.3f}"


def main():
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    import torchinfo

    # (column name, runner, reports params)
    tools = [(f"torchinfo {torchinfo.__version__}", run_torchinfo, True),
             ("FlopCounterMode", run_flop_counter, False)]
    try:
        import fvcore  # noqa: F401
        tools.append(("fvcore", run_fvcore, True))
    except ImportError:
        pass
    header = ["Model", "hand count GMACs", "torchscope params", "torchscope GMACs"]
    for name, _, has_params in tools:
        header += ([f"{name} params"] if has_params else []) + [f"{name} GMACs"]
    lines, notes = [], []
    for label, build, x, expected in _models():
        model = build().eval()
        row = [label, _fmt_macs(expected)]
        with torch.no_grad():
            p, m, missing = run_torchscope(model, x)
            row += [_fmt_params(p), _fmt_macs(m)]
            if expected is not None:
                notes.append(f"- {label}: torchscope {m:,} MACs, hand count {expected:,}"
                             f" ({'exact' if m == expected else f'differs by {m - expected:+,}'})")
            if missing:
                notes.append(f"- {label}: torchscope lists uncounted ops {missing}")
            for name, fn, has_params in tools:
                try:
                    p, m = fn(model, x)
                    row += ([_fmt_params(p)] if has_params else []) + [_fmt_macs(m)]
                except Exception as exc:  # a peer's failure is a result too
                    row += ["error"] * (2 if has_params else 1)
                    notes.append(f"- {label}: {name} failed: {type(exc).__name__}: {str(exc)[:200]}")
        lines.append(row)
        print(f"done: {label}", file=sys.stderr)

    print("# Params and MACs: torchscope vs peers\n")
    print(f"Generated {datetime.date.today().isoformat()} by `benchmarks/compare_counts.py`; "
          f"torch {torch.__version__}, Python {platform.python_version()}, CPU, batch 1, eval mode, "
          "no_grad, random weights. GMACs = 1e9 multiply-accumulates; FlopCounterMode column is its "
          "total FLOPs / 2; fvcore's \"flops\" are MACs.\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for row in lines:
        print("| " + " | ".join(row) + " |")
    notes.append("- fvcore traces with torch.jit: transformers models run through a wrapper that returns "
                 "their first output tensor (`_FirstOutput`); the computation counted is the same.")
    print("\nNotes:\n")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
