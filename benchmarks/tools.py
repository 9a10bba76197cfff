"""The tools compared. Each entry: name -> callable(model, x) -> callable() doing one full run + report."""
import torch

import torchscope


def bare(model, x):
    return lambda: model(x)


def torchscope_full(model, x):
    # full capture + table, exactly one recorded pass
    return lambda: str(torchscope.profile_summary(model, x, warmup=0, iters=1, verbose=0))


def torch_profiler(model, x):
    from torch.profiler import ProfilerActivity, profile

    def run():
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True, profile_memory=True,
                     with_flops=True) as prof:
            model(x)
        return prof.key_averages().table(sort_by="cpu_time_total", row_limit=-1)
    return run


def torchinfo_summary(model, x):
    try:
        import torchinfo
    except ImportError:
        return None
    return lambda: str(torchinfo.summary(model, input_data=x, verbose=0, depth=10,
                                         col_names=("output_size", "num_params", "mult_adds")))


def flop_counter(model, x):
    from torch.utils.flop_counter import FlopCounterMode

    def run():
        with FlopCounterMode(display=False) as fc:
            model(x)
        return fc.get_table(depth=10)
    return run


TOOLS = {
    "bare": bare,
    "torchscope": torchscope_full,
    "torch.profiler": torch_profiler,
    "torchinfo": torchinfo_summary,
    "FlopCounterMode": flop_counter,
}
