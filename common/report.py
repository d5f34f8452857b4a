"""What results.json records besides metrics: library versions, hardware, a printed table."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any, Iterable, Mapping


def versions(extra_packages: Iterable[str] = ()) -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for package in ("tensorflow", "keras", "numpy", *extra_packages):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
    }


def format_table(rows: Mapping[str, Any], title: str = "") -> str:
    """Two-column table of flat scalar metrics (nested dicts are flattened with dots)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[prefix] = value

    walk("", rows)
    width = max((len(k) for k in flat), default=10)
    lines = [title] if title else []
    for key, value in flat.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key.ljust(width)}  {shown}")
    return "\n".join(lines)


def metrics(primary: str, model: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]],
            **extras: Any) -> dict[str, Any]:
    """The one results.json ``metrics`` shape of every task.

    ``{"primary": NAME, "model": {NAME: value, ...}, "baselines": {BASELINE: {NAME: value, ...}}, ...extras}``:
    the model and each baseline are scored by the same corpus metrics, so they sit side by side.
    """
    if primary not in model:
        raise KeyError(f"primary metric {primary!r} missing from the model's metrics {sorted(model)}")
    for name, scores in baselines.items():
        if primary not in scores:
            raise KeyError(f"primary metric {primary!r} missing from baseline {name!r}'s metrics {sorted(scores)}")
    clashes = {"primary", "model", "baselines"} & set(extras)
    if clashes:
        raise KeyError(f"extras may not be named {sorted(clashes)}")
    return {"primary": primary, "model": dict(model), "baselines": {k: dict(v) for k, v in baselines.items()}, **extras}


def _shown(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_summary(metrics_block: Mapping[str, Any], higher_is_better: bool, title: str = "") -> str:
    """The end-of-run table: the primary metric first, the model beside every baseline.

    Rows are the scalar metrics the model shares with at least one baseline (then the model's own);
    the last line says which of the columns is best on the primary metric.
    """
    primary = metrics_block["primary"]
    model = metrics_block["model"]
    baselines = metrics_block.get("baselines", {})
    columns = {"model": model, **baselines}
    scalar = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    rows = [primary] + [k for k, v in model.items() if k != primary and scalar(v)]
    width = max(len(r) for r in rows)
    widths = [max(len(c), 10) for c in columns]
    lines = [title] if title else []
    lines.append("  " + "metric".ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in rows:
        cells = [_shown(columns[c].get(row)) for c in columns]
        marker = "  ← primary" if row == primary else ""
        lines.append("  " + row.ljust(width) + "  " + "  ".join(v.rjust(w) for v, w in zip(cells, widths)) + marker)
    scored = {c: v[primary] for c, v in columns.items() if scalar(v.get(primary))}
    if scored:
        best = (max if higher_is_better else min)(scored, key=scored.get)
        direction = "higher" if higher_is_better else "lower"
        if best == "model":
            lines.append(f"  the model beats every baseline on {primary} ({direction} is better)")
        else:
            worse = [c for c in scored if c != "model"
                     and (scored[c] < scored["model"] if higher_is_better else scored[c] > scored["model"])]
            lines.append(f"  baseline {best!r} is best on {primary} ({direction} is better); "
                         f"the model beats {worse or 'no baseline'}")
    return "\n".join(lines)
