"""Benchmark models: (name, model, input) builders. Optional packages are skipped if missing."""
import torch

from torchscope.models import SmallResNet, tiny_mlp


def tiny_mlp_case():
    torch.manual_seed(0)
    return tiny_mlp(300, 32), torch.randn(4, 32)


def resnet_case():
    torch.manual_seed(0)
    try:
        import torchvision

        return "resnet18 (torchvision), 1x3x224x224", torchvision.models.resnet18().eval(), torch.randn(1, 3, 224, 224)
    except Exception:
        return "SmallResNet, 8x3x64x64", SmallResNet().eval(), torch.randn(8, 3, 64, 64)


def gpt2_case():
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except Exception:
        return None
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024)
    model = GPT2LMHeadModel(cfg).eval()
    return "GPT-2 (transformers GPT2Config, random weights), 1x128 tokens", model, torch.randint(0, 50257, (1, 128))


def cases():
    m, x = tiny_mlp_case()
    out = [("tiny MLP: 300 x (Linear(32,32)+ReLU), batch 4", m, x, 40)]
    name, m, x = resnet_case()
    out.append((name, m, x, 12))
    g = gpt2_case()
    if g is not None:
        out.append((g[0], g[1], g[2], 6))
    return out
