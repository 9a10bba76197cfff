"""Compare two summaries (JSON files from --json / export.to_json, or ProfileSummary objects).

Rows are matched by module name and call order (the k-th call of `layer1.0` in one run with
the k-th call in the other). The table lists added, removed and changed module calls with
their params, MACs, forward time and peak memory, base -> new. Thresholds apply to the
totals: total params, total MACs, the measured pass time and the pass's peak memory;
an increase beyond a threshold is a failure (exit status 1 on the command line).

Threshold forms: "+10%" / "10%" (relative to the base), or absolute: "2ms", "500us",
"1.5s", "100ns" for time; "5MiB", "100KB", "4096" (bytes) for memory; "0", "1000", "1.5M"
for params and MACs. A bare number is ns / bytes / a count. A negative value demands a
decrease.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import os
import re
import sys

from .report import fmt_bytes, fmt_count, fmt_time

_TIME_UNITS = {"": 1.0, "ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
_MEM_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
              "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "k": 1024, "m": 1024**2,
              "g": 1024**3}
_COUNT_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}
_KINDS = {"time": _TIME_UNITS, "memory": _MEM_UNITS, "params": _COUNT_UNITS, "macs": _COUNT_UNITS}


@dataclasses.dataclass(frozen=True)
class Threshold:
    """Largest allowed increase of one total: `value` percent of the base (relative) or
    `value` ns / bytes / count (absolute)."""

    kind: str
    value: float
    relative: bool
    text: str
    floor: float = 0.0  # a relative limit never goes below this (noise of tiny timings)

    def limit(self, base: float) -> float:
        if not self.relative:
            return self.value
        limit = abs(base) * self.value / 100.0
        # (a negative limit demands a decrease: the noise floor must not turn it into an allowance)
        return max(limit, self.floor) if self.floor > 0 and self.value >= 0 else limit


def parse_threshold(text, kind: str) -> Threshold:
    """'+10%' -> 10 % of the base; '2ms' / '5MiB' / '0' -> absolute (see module doc)."""
    if isinstance(text, Threshold):
        return text
    if all(hasattr(text, a) for a in ("kind", "value", "relative", "text")):  # one from a reloaded module
        return Threshold(text.kind, float(text.value), bool(text.relative), str(text.text))
    if kind not in _KINDS:
        raise ValueError(f"unknown threshold kind {kind!r}")
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return Threshold(kind, float(text), False, str(text))
    s = str(text).strip().replace(" ", "").replace(",", "").replace("_", "")
    m = re.fullmatch(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(%|[A-Za-zµ]*)", s)
    units = _KINDS[kind]
    if not m or (m.group(3) != "%" and m.group(3).lower() not in units and m.group(3) not in units):
        examples = {"time": "+10%, 2ms, 500us", "memory": "+5%, 10MiB, 4096",
                    "params": "0, +1%, 1000", "macs": "0, +1%, 1.5M"}[kind]
        raise ValueError(f"bad --max-{kind} value {str(text)!r}: expected a relative limit like +10% "
                         f"or an absolute one ({examples})")
    sign = -1.0 if m.group(1) == "-" else 1.0
    num = float(m.group(2)) * sign
    unit = m.group(3)
    if unit == "%":
        return Threshold(kind, num, True, str(text))
    scale = units.get(unit, units.get(unit.lower()))
    return Threshold(kind, num * scale, False, str(text))


def _fmt_threshold(t: Threshold) -> str:
    if t.relative:
        return f"{t.value:+g}%"
    if t.kind == "time":  # fmt_time formats magnitudes only
        return ("-" if t.value < 0 else "") + fmt_time(abs(t.value))
    return {"memory": fmt_bytes}.get(t.kind, lambda v: f"{v:,.0f}")(t.value)


# ------------------------------------------------------------------- loading
def load(src) -> dict:
    """A summary as a to_dict()-style dict: from a path, JSON text, a dict or a ProfileSummary."""
    if isinstance(src, dict):
        d = src
    elif hasattr(src, "to_dict") and hasattr(src, "rows"):
        from .export import to_dict
        d = to_dict(src)
    else:
        text = str(src)
        if text.lstrip().startswith("{"):
            where = "JSON text"
        else:
            where = text
            if not os.path.exists(text):
                raise FileNotFoundError(f"no such summary file: {text}")
            with open(text, encoding="utf-8") as f:
                text = f.read()
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(d, dict) or not isinstance(d.get("rows"), list) or \
            not all(isinstance(r, dict) for r in d["rows"]):
        raise ValueError("not a torchscope summary (expected a JSON object with 'rows'; write one with "
                         "torchscope ... --json PATH)")
    from .report import SCHEMA_VERSION
    if d.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"unsupported torchscope summary schema_version {d.get('schema_version')!r} "
                         f"(this torchscope reads {SCHEMA_VERSION})")
    bad = [f"{k}={d[k]!r}" for k in ("total_params", "trainable_params", "total_macs", "total_time_ns",
                                     "peak_memory")
           if d.get(k) is not None and (isinstance(d[k], bool) or not isinstance(d[k], (int, float)))]
    bad += [f"{k}={d[k]!r}" for k, t in (("meta", dict), ("notes", list), ("uncounted_ops", dict))
            if d.get(k) is not None and not isinstance(d[k], t)]
    if bad:
        raise ValueError(f"not a valid torchscope summary: {', '.join(bad)} (edited by hand? write it again "
                         "with torchscope ... --json PATH)")
    return d


# ---------------------------------------------------------------------- diff
_METRICS = ("params", "macs", "fwd_time_ns", "mem_peak")


@dataclasses.dataclass
class DiffRow:
    label: str
    status: str          # "added", "removed", "changed", "same"
    base: dict | None
    new: dict | None


@dataclasses.dataclass
class DiffResult:
    rows: list           # DiffRow for every matched/added/removed module call
    totals: dict         # metric -> (base, new)
    failures: list       # one line per exceeded threshold
    notes: list
    compared: int
    text: str = ""

    @property
    def changed(self) -> list:
        return [r for r in self.rows if r.status != "same"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self):
        return self.text


def _keys(rows: list) -> list:
    seen: dict = {}
    out = []
    for r in rows:
        name = r.get("name", "")
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append((name, k))
    return out


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _pct(b, n) -> str:
    if b is None or n is None:
        return ""
    if b == 0:
        return "" if n == 0 else " (new)"
    return f" ({100.0 * (n - b) / abs(b):+.1f}%)"


def _cell(b, n, fmt, status) -> str:
    b, n = _num(b), _num(n)
    if status == "added":
        return f"- -> {fmt(n) if n is not None else '-'}"
    if status == "removed":
        return f"{fmt(b) if b is not None else '-'} -> -"
    if b is None and n is None:
        return "-"
    if b == n or fmt(b) == fmt(n):
        return fmt(n)
    return f"{fmt(b) if b is not None else '-'} -> {fmt(n) if n is not None else '-'}{_pct(b, n)}"


def _fmt_params(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def _fmt_time(v) -> str:
    return fmt_time(v, True)


_ROW_FMT = {"params": _fmt_params, "macs": fmt_count, "fwd_time_ns": _fmt_time, "mem_peak": fmt_bytes}
_TITLES = {"params": "Params", "macs": "MACs", "fwd_time_ns": "Fwd time", "mem_peak": "Peak mem"}


def _structural_change(b: dict, n: dict) -> bool:
    return (b.get("type") != n.get("type") or b.get("params") != n.get("params")
            or b.get("macs") != n.get("macs") or b.get("output_shapes") != n.get("output_shapes"))


def _runtime_change(b, n, thr: Threshold | None, total_base) -> bool:
    """A time/memory change worth listing: beyond the threshold and >= 1% of the total."""
    b, n = _num(b), _num(n)
    if thr is None or b is None or n is None:
        return False
    delta = n - b
    if abs(delta) <= abs(thr.limit(b)):
        return False
    return total_base is None or abs(delta) >= 0.01 * abs(total_base)


def diff(base, new, *, max_time=None, max_memory=None, max_params=None, max_macs=None,
         show_all: bool = False, base_label: str | None = None, new_label: str | None = None) -> DiffResult:
    """Compare two summaries (paths, JSON text, dicts or ProfileSummary objects)."""
    bl = base_label or (str(base) if isinstance(base, (str, os.PathLike)) and not str(base).lstrip()
                        .startswith("{") else "base")
    nl = new_label or (str(new) if isinstance(new, (str, os.PathLike)) and not str(new).lstrip()
                       .startswith("{") else "new")
    b, n = load(base), load(new)
    thr = {"time": max_time, "memory": max_memory, "params": max_params, "macs": max_macs}
    thr = {k: (parse_threshold(v, k) if v is not None else None) for k, v in thr.items()}

    brows, nrows = b["rows"], n["rows"]
    bkeys, nkeys = _keys(brows), _keys(nrows)
    bidx = {k: i for i, k in enumerate(bkeys)}
    nidx = {k: i for i, k in enumerate(nkeys)}
    t_base = _num(brows[0].get("fwd_time_ns")) if brows else None
    m_base = _num(b.get("peak_memory"))

    out: list = []

    def pair(bi, ni):
        br, nr = brows[bi], nrows[ni]
        changed = (_structural_change(br, nr)
                   or _runtime_change(br.get("fwd_time_ns"), nr.get("fwd_time_ns"), thr["time"], t_base)
                   or _runtime_change(br.get("mem_peak"), nr.get("mem_peak"), thr["memory"], m_base))
        out.append(DiffRow(_label(nr, nkeys[ni]), "changed" if changed else "same", br, nr))

    sm = difflib.SequenceMatcher(a=bkeys, b=nkeys, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                pair(i1 + k, j1 + k)
            continue
        for i in range(i1, i2):  # base-only here; matched later in the new order otherwise
            if bkeys[i] not in nidx:
                out.append(DiffRow(_label(brows[i], bkeys[i]), "removed", brows[i], None))
        for j in range(j1, j2):
            if nkeys[j] in bidx:
                pair(bidx[nkeys[j]], j)
            else:
                out.append(DiffRow(_label(nrows[j], nkeys[j]), "added", None, nrows[j]))

    totals = {
        "params": (_num(b.get("total_params")), _num(n.get("total_params"))),
        "macs": (_num(b.get("total_macs")), _num(n.get("total_macs"))),
        "time": (_num(b.get("total_time_ns")), _num(n.get("total_time_ns"))),
        "memory": (_num(b.get("peak_memory")), _num(n.get("peak_memory"))),
    }
    failures, notes = [], []
    for kind, t in thr.items():
        if t is None:
            continue
        bv, nv = totals[kind]
        if bv is None or nv is None:
            notes.append(f"--max-{kind} not checked: {'base' if bv is None else 'new'} summary has no "
                         f"{_TOTAL_NAMES[kind]}")
            continue
        delta = nv - bv
        if delta > t.limit(bv):
            fmt = _TOTAL_FMT[kind]
            failures.append(f"{_TOTAL_NAMES[kind]} {fmt(bv)} -> {fmt(nv)} ({_signed(delta, fmt)}"
                            f"{_pct(bv, nv).replace(' (', ', ').rstrip(')') if bv else ''}) exceeds "
                            f"--max-{kind} {_fmt_threshold(t)}")
    bm, nm = b.get("meta") or {}, n.get("meta") or {}
    for key, what in (("device", "devices"), ("torch_version", "torch versions"), ("inputs", "inputs"),
                      ("pass", "passes"), ("mode", "modes")):
        if key in ("pass", "mode") and not (key in bm and key in nm):
            continue  # summaries written before these were recorded
        if bm.get(key) != nm.get(key):
            notes.append(f"{what} differ: {bm.get(key)} vs {nm.get(key)}"
                         + (" (times and memory are not comparable)" if key in ("device", "pass", "mode") else ""))
    res = DiffResult(rows=out, totals=totals, failures=failures, notes=notes,
                     compared=sum(1 for r in out if r.base is not None and r.new is not None))
    res.text = _render(res, bl, nl, show_all)
    return res


_TOTAL_NAMES = {"params": "total params", "macs": "total MACs", "time": "pass time",
                "memory": "peak memory"}
_TOTAL_FMT = {"params": _fmt_params, "macs": fmt_count, "time": _fmt_time, "memory": fmt_bytes}


def _signed(delta, fmt) -> str:
    return ("+" if delta >= 0 else "-") + fmt(abs(delta))


def _label(row: dict, key) -> str:
    name, k = key
    return f"{name}{f' #{k + 1}' if k else ''} ({row.get('type', '?')})"


def _render(res: DiffResult, bl: str, nl: str, show_all: bool) -> str:
    lines = [f"torchscope diff: {bl} -> {nl}"]
    shown = res.rows if show_all else res.changed
    if shown:
        head = ["Module (type)", "Status"] + [_TITLES[m] for m in _METRICS]
        body = []
        for r in shown:
            cells = [r.label, r.status]
            for m in _METRICS:
                cells.append(_cell((r.base or {}).get(m), (r.new or {}).get(m), _ROW_FMT[m], r.status))
            body.append(cells)
        w = [max(len(head[j]), *(len(c[j]) for c in body)) for j in range(len(head))]

        def line(cells):
            return "  ".join(c.ljust(w[j]) if j < 2 else c.rjust(w[j]) for j, c in enumerate(cells)).rstrip()

        rule = "=" * len(line(head))
        lines += [rule, line(head), "-" * len(rule)] + [line(c) for c in body] + [rule]
        counts = {s: sum(1 for r in res.rows if r.status == s) for s in ("changed", "added", "removed")}
        lines.append(f"{counts['changed']} changed, {counts['added']} added, {counts['removed']} removed "
                     f"module calls ({res.compared} matched)")
    else:
        lines.append(f"no module call changed ({res.compared} matched; times and memory are listed per "
                     "module only when a --max-time/--max-memory threshold is given and exceeded)")
    parts = []
    for kind in ("params", "macs", "time", "memory"):
        bv, nv = res.totals[kind]
        parts.append(f"{_TOTAL_NAMES[kind]} {_cell(bv, nv, _TOTAL_FMT[kind], 'changed')}")
    lines.append("Totals: " + "; ".join(parts))
    for note in res.notes:
        lines.append(f"Note: {note}")
    if res.failures:
        for f in res.failures:
            lines.append(f"FAIL: {f}")
    else:
        lines.append("OK: no threshold exceeded")
    return "\n".join(lines)


# ---------------------------------------------------------------- command line
def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("base", metavar="BASE.json", help="baseline summary (torchscope ... --json BASE.json)")
    p.add_argument("new", metavar="NEW.json", help="summary to check against the baseline")
    p.add_argument("--max-time", metavar="LIMIT",
                   help="largest allowed increase of the measured pass time: +10%% or 2ms")
    p.add_argument("--max-memory", metavar="LIMIT", help="largest allowed peak memory increase: +5%% or 10MiB")
    p.add_argument("--max-params", metavar="LIMIT", help="largest allowed increase of total params: 0, +1%%")
    p.add_argument("--max-macs", metavar="LIMIT", help="largest allowed increase of total MACs: 0, +1%%")
    p.add_argument("--all", action="store_true", help="list every module call, not only changed ones")


def main(argv=None) -> int:
    from .cli import main as cli_main
    return cli_main(["diff", *(sys.argv[1:] if argv is None else argv)])


__all__ = ["diff", "DiffResult", "DiffRow", "Threshold", "parse_threshold", "load", "main"]
