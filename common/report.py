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
