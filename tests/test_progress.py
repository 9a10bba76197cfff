"""Progress indicator for long runs: only on request/terminal, only when the run is long."""
from torchscope.capture import _Progress


def test_progress_silent_when_disabled_or_fast(capsys):
    bar = _Progress(5, enabled=False)
    for _ in range(5):
        bar.step(int(5e9))
    bar.close()
    fast = _Progress(5, enabled=True)
    for _ in range(5):
        fast.step(1000)  # 1 µs passes: the whole run is far below the 2 s threshold
    fast.close()
    assert capsys.readouterr().err == ""


def test_progress_shown_for_long_runs(capsys):
    bar = _Progress(4, enabled=True)
    for _ in range(4):
        bar.step(int(2e9))
    bar.close()
    err = capsys.readouterr().err
    assert "torchscope" in err  # tqdm's bar or the plain line, both named


def test_explicit_progress_is_honoured_when_quiet(monkeypatch):
    import torch
    from torch import nn

    from torchscope import capture, profile_summary
    seen = []
    real = capture._Progress

    class Spy(real):
        def __init__(self, total, enabled):
            seen.append(enabled)
            super().__init__(total, enabled)

    monkeypatch.setattr(capture, "_Progress", Spy)
    profile_summary(nn.Linear(2, 2), torch.randn(1, 2), verbose=0, progress=True)
    profile_summary(nn.Linear(2, 2), torch.randn(1, 2), verbose=0)
    assert seen == [True, False]  # verbose=0 alone stays quiet; progress=True asks for the bar (the CLI's case)
