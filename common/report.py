"""What results.json records besides metrics: library versions, hardware, a printed table."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
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


# --- repeats over seeds ------------------------------------------------------------------------------------------
_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_statistics(value: Any) -> bool:
    """A ``seed_statistics`` result (a leaf of an aggregate), not a nested block of metrics."""
    return isinstance(value, Mapping) and "mean" in value and "values" in value and "n" in value


def seed_statistics(values: Iterable[Any]) -> dict[str, Any]:
    """mean, sample std (ddof=1; None for one value), n, min, max of the numbers among ``values`` (one per
    seed, None where a seed has none), and ``values`` itself in seed order."""
    import statistics

    values = list(values)
    numbers = [float(v) for v in values if _is_number(v)]
    if not numbers:
        return {"mean": None, "std": None, "n": 0, "min": None, "max": None, "values": values}
    return {"mean": statistics.fmean(numbers), "std": statistics.stdev(numbers) if len(numbers) > 1 else None,
            "n": len(numbers), "min": min(numbers), "max": max(numbers), "values": values}


def aggregate_over_seeds(per_seed: list[Any]) -> Any:
    """Walks the same nested dict of each seed: a number becomes ``seed_statistics`` of its per-seed values;
    a non-number the same in every seed is kept; anything else (lists, texts that differ) is left to the seed
    folders. ``_MISSING`` marks a seed without the key."""
    present = [v for v in per_seed if v is not _MISSING]
    if present and all(isinstance(v, Mapping) for v in present):
        keys = list(dict.fromkeys(k for v in present for k in v))
        merged = {}
        for key in keys:
            inner = aggregate_over_seeds([v.get(key, _MISSING) if isinstance(v, Mapping) else _MISSING
                                          for v in per_seed])
            if inner is not _MISSING:
                merged[key] = inner
        return merged
    if any(_is_number(v) for v in present) and all(v is None or _is_number(v) for v in present):
        return seed_statistics(None if v is _MISSING else v for v in per_seed)
    if present and not isinstance(present[0], list) and all(v == present[0] for v in present):
        return present[0]
    return _MISSING


def seed_aggregate(per_seed: Mapping[int, Mapping[str, Any]], folders: Mapping[int, str]) -> dict[str, Any]:
    """The aggregate results.json of a ``--set seeds=...`` run from each seed's results (seed → results)."""
    seeds = list(per_seed)
    first = per_seed[seeds[0]]
    aggregate: dict[str, Any] = {"task": first.get("task"), "preset": first.get("preset"), "seeds": seeds,
                                 "runs": {str(seed): folders[seed] for seed in seeds},
                                 "primary_metric": first.get("primary_metric")}
    for key in ("metrics", "seconds"):
        merged = aggregate_over_seeds([r.get(key, _MISSING) for r in per_seed.values()])
        if merged is not _MISSING:
            aggregate[key] = merged
    aggregate["data"] = first.get("data", {})
    aggregate["data_same_for_every_seed"] = all(r.get("data") == first.get("data") for r in per_seed.values())
    aggregate["versions"] = first.get("versions", {})
    aggregate["devices"] = first.get("devices", {})
    return aggregate


def _flat_statistics(prefix: str, value: Any, rows: list[tuple[str, dict]]) -> None:
    if _is_statistics(value):
        rows.append((prefix, value))
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _flat_statistics(f"{prefix}.{key}" if prefix else str(key), inner, rows)


def format_seed_summary(aggregate: Mapping[str, Any], title: str = "") -> str:
    """The end-of-repeats table: metric | mean ± std | per seed, for the model's and the baselines' metrics."""
    metrics_block = aggregate.get("metrics", {})
    rows: list[tuple[str, dict]] = []
    for part in ("model", "baselines"):
        _flat_statistics(part, metrics_block.get(part, {}), rows)
    primary = f"model.{metrics_block.get('primary')}"
    rows.sort(key=lambda row: row[0] != primary)  # the primary metric first, the rest as the task wrote them
    seeds = aggregate.get("seeds", [])
    lines = [title] if title else []
    width = max((len(name) for name, _ in rows), default=6)
    lines.append(f"  {'metric'.ljust(width)}  {'mean ± std':>21}  per seed {', '.join(map(str, seeds))}")
    for name, stats in rows:
        mean = "-" if stats["mean"] is None else f"{stats['mean']:.4g}"
        spread = f"{mean} ± {'-' if stats['std'] is None else format(stats['std'], '.2g')}"
        values = ", ".join("-" if not _is_number(v) else f"{v:.4g}" for v in stats["values"])
        marker = "  ← primary" if name == primary else ""
        lines.append(f"  {name.ljust(width)}  {spread:>21}  {values}{marker}")
    return "\n".join(lines)


# --- the reproduction table: published anchors beside this suite's runs ---------------------------------------------
def is_seed_aggregate(results: Mapping[str, Any]) -> bool:
    return isinstance(results.get("seeds"), list) and isinstance(results.get("runs"), Mapping)


def _seed(results: Mapping[str, Any]) -> Any:
    return (results.get("config") or {}).get("seed")


def _group_key(results: Mapping[str, Any]) -> str:
    """Plain runs that differ only in seed (and workdir) are one configuration measured several times."""
    import json
    import shlex

    config = {k: v for k, v in (results.get("config") or {}).items() if k not in ("seed", "seeds")}
    try:
        words = shlex.split(results.get("command") or "")
    except ValueError:
        words = []
    data_dir = next((words[i + 1] for i, w in enumerate(words[:-1]) if w == "--data-dir"), None)
    return json.dumps([results.get("task"), results.get("preset"), config, data_dir], sort_keys=True, default=str)


def reproduction_rows(runs: list[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """One row per configuration: a seeds aggregate as it is; plain runs of the same configuration (same task,
    preset, config but seed, data) merged over their seeds. ``runs`` = (folder, results.json contents)."""
    rows: list[dict[str, Any]] = []
    groups: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for folder, results in runs:
        if is_seed_aggregate(results):
            rows.append(_row(results, [folder], list(results["seeds"]), separate_runs=False))
        else:
            groups.setdefault(_group_key(results), []).append((folder, results))
    for members in groups.values():
        seeds = [_seed(r) for _, r in members]
        if len(members) == 1 or len(set(seeds)) < len(seeds):  # the same seed twice: not repeats, separate rows
            rows += [_row(r, [f], [_seed(r)], separate_runs=False) for f, r in members]
            continue
        members.sort(key=lambda member: _seed(member[1]))
        per_seed = {_seed(r): r for _, r in members}
        merged = seed_aggregate(per_seed, {seed: folder for seed, (folder, _) in zip(per_seed, members)})
        first = members[0][1]
        merged.update(command=first.get("command"), hardware=first.get("hardware"),
                      date=max(str(r.get("date", "")) for _, r in members))
        if any(r.get("hardware") != first.get("hardware") for _, r in members):
            merged["hardware_differs"] = True
        rows.append(_row(merged, [f for f, _ in members], list(per_seed), separate_runs=True))
    return sorted(rows, key=lambda row: (row["task"], row["command"], row["date"]))


def _row(results: Mapping[str, Any], folders: list[str], seeds: list[Any], separate_runs: bool) -> dict[str, Any]:
    metrics_block = results.get("metrics") or {}
    primary = metrics_block.get("primary") or results.get("primary_metric")

    def stats(value: Any) -> dict[str, Any] | None:
        if _is_statistics(value):
            return dict(value)
        return seed_statistics([value]) if _is_number(value) else None

    model = {k: s for k, v in (metrics_block.get("model") or {}).items() if (s := stats(v)) is not None}
    for key, value in metrics_block.items():  # the task's extra scalars (e.g. a ratio to a baseline) may be asked for
        if key not in ("primary", "model", "baselines") and key not in model and (s := stats(value)) is not None:
            model[key] = s
    baselines = {}
    for name, scores in sorted((metrics_block.get("baselines") or {}).items()):
        if isinstance(scores, Mapping) and (s := stats(scores.get(primary))) is not None:
            baselines[name] = s
    return {"task": results.get("task"), "primary": primary, "model": model, "baselines": baselines,
            "command": portable_command(str(results.get("command") or "")),
            "data": data_name(results.get("data") or {}),
            "split": str(metrics_block.get("evaluated_on") or "test"),
            "hardware": _short_hardware(results), "date": str(results.get("date") or "")[:10],
            "seeds": seeds, "separate_runs": separate_runs, "folders": folders}


# --- what a user reads names no machine path (DESIGN rule 18) -------------------------------------------------------
_WINDOWS_ABSOLUTE = re.compile(r"^[A-Za-z]:[\\/]")


def _is_absolute(text: str) -> bool:
    return text.startswith("/") or bool(_WINDOWS_ABSOLUTE.match(text))


def _last_name(path: str) -> str:
    parts = [part for part in re.split(r"[\\/]+", path) if part]
    return parts[-1] if parts else path


def portable_path(path: str, cwd: str | os.PathLike | None = None, home: str | os.PathLike | None = None) -> str:
    """An absolute ``path`` as a user types it: relative to ``cwd`` when under it (``.`` for ``cwd`` itself),
    ``~/...`` under the home folder, else relative to ``cwd`` (``../...``); anything else is returned unchanged."""
    if not _is_absolute(path):
        return path
    cwd = os.path.normpath(os.fspath(cwd) if cwd is not None else os.getcwd())
    home = os.path.normpath(os.fspath(home) if home is not None else os.path.expanduser("~"))
    target = os.path.normpath(path)

    def under(folder: str) -> bool:
        return folder not in ("", os.sep) and (target == folder or target.startswith(folder.rstrip(os.sep) + os.sep))

    if under(cwd):
        return os.path.relpath(target, cwd)
    if under(home):
        return "~" if target == home else "~/" + os.path.relpath(target, home)
    try:
        return os.path.relpath(target, cwd)
    except ValueError:  # another drive (Windows): no relative form exists
        return _last_name(target)


def _portable_word(word: str, cwd: Any, home: Any) -> str:
    """One word of a command: a path, ``KEY=PATH`` (``--set image_dir=/x``, ``--data-dir=/x``) or a comma list of
    paths (``--data-dir /a.npz,/b.npz``)."""
    prefix, value = "", word
    key, equals, rest = word.partition("=")
    if equals and "/" not in key and "\\" not in key:
        prefix, value = key + "=", rest
    return prefix + ",".join(portable_path(piece, cwd, home) for piece in value.split(","))


def portable_command(command: str, cwd: str | os.PathLike | None = None,
                     home: str | os.PathLike | None = None) -> str:
    """A results.json ``command`` (``run.py ...`` with the argv as typed) with every absolute path made relative
    to ``cwd`` (or ``~/...`` under the home folder): the command a user runs from where ``report`` ran."""
    return " ".join(_portable_word(word, cwd, home) for word in command.split(" "))


def data_name(info: Mapping[str, Any]) -> str:
    """The data of a run by name, never by path: ``synthetic``, ``tfds NAME``, or the file or folder name
    (``cwru_97.npz``; ``cwru (4 files)`` for several recordings in one folder)."""
    source = str(info.get("source") or "")
    form = str(info.get("format") or "")
    if source.startswith("synthetic"):
        return "synthetic"
    if form.startswith("tfds "):
        return form
    if source.startswith("tfds "):
        return "tfds " + source.split()[1]
    location = str(info.get("path") or (source if source not in ("file", "files") else "") or "")
    if not location:
        return source or "?"
    name = ", ".join(_last_name(piece) for piece in location.split(",") if piece)
    files = info.get("files")
    if isinstance(files, Mapping) and len(files) > 1 and "," not in location:
        name += f" ({len(files)} files)"
    return name if len(name) <= 90 else name[:87] + "..."


def _short_hardware(results: Mapping[str, Any]) -> str:
    hardware = results.get("hardware") or {}
    devices = results.get("devices") or {}
    cpus = hardware.get("usable_cpus") or hardware.get("cpu_count")
    text = f"{hardware.get('cpu') or '?'}, {cpus} CPU cores" if cpus else str(hardware.get("cpu") or "?")
    gpus = devices.get("gpu_names") or []
    if devices.get("gpu_used") and gpus:
        text = f"{', '.join(sorted(set(gpus)))} ×{len(gpus)}; {text}"
    return text + (" (differs between seeds)" if results.get("hardware_differs") else "")


def _decimals(values: Iterable[float]) -> int:
    """One format per column, so a column reads the same in every row: 1 decimal for numbers written on a
    0-100 scale or above (BLEU, percent, perplexity), 3 for fractions and ratios (accuracy, CIDEr, bits)."""
    largest = max((abs(v) for v in values if _is_number(v)), default=0.0)
    return 1 if largest >= 10 else 3


def _cell(stats: Mapping[str, Any] | None, decimals: int, count: bool = True) -> str:
    if not stats or stats.get("mean") is None:
        return ""
    text = f"{stats['mean']:.{decimals}f}"
    if stats.get("n", 1) > 1:
        std = "-" if stats.get("std") is None else f"{stats['std']:.{decimals}f}"
        text += f" ± {std}" + (f" (n={stats['n']})" if count else "")
    return text


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def reproduction_markdown(rows: list[dict[str, Any]], anchors: Mapping[str, Iterable[Any]],
                          task_order: Iterable[str] = (), extra_metrics: Iterable[str] = ()) -> str:
    """Markdown, one table per task: its published anchors, then each reproduced row. Columns: the primary
    metric, every anchor's metric (so a published number sits above the suite's same metric), then
    ``extra_metrics`` that the task's runs have (keys of metrics["model"] or metrics' own scalars)."""
    extra_metrics = list(extra_metrics)
    order = list(task_order)
    rank = {name: index for index, name in enumerate(order)}
    tasks_present = sorted({row["task"] for row in rows}, key=lambda t: (rank.get(t, len(rank)), t))
    sections = []
    for task in tasks_present:
        task_rows = [row for row in rows if row["task"] == task]
        task_anchors = list(anchors.get(task, ()))
        primaries = list(dict.fromkeys(row["primary"] for row in task_rows if row["primary"]))
        extras = [m for m in extra_metrics if any(m in row["model"] for row in task_rows)]
        columns = list(dict.fromkeys([*primaries, *(a.metric for a in task_anchors), *extras]))
        decimals = {}
        for column in columns:
            values = [a.value for a in task_anchors if a.metric == column]
            values += [row["model"][column]["mean"] for row in task_rows if column in row["model"]]
            decimals[column] = _decimals(values)
        baseline_decimals = _decimals(s["mean"] for row in task_rows for s in row["baselines"].values()
                                      if s.get("mean") is not None)
        header = ["", *columns, f"baselines ({', '.join(primaries)})", "data", "split", "source / command",
                  "hardware", "date", "seeds"]
        lines = [f"### {task}: published vs reproduced", "",
                 f"Primary metric: {', '.join(f'`{p}`' for p in primaries)}. Reproduced cells: mean ± sample std "
                 "(n = seeds) when repeated.", "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for anchor in task_anchors:
            cells = [f"{anchor.value:.{decimals[anchor.metric]}f}" if c == anchor.metric else "" for c in columns]
            source = anchor.source + (f" ({anchor.note})" if anchor.note else "")
            lines.append("| " + " | ".join(_md(x) for x in ["published", *cells, "", anchor.dataset, anchor.split,
                                                               source, "", "", ""]) + " |")
        if not task_anchors:
            lines.append("| published | " + " | ".join(["no published anchor"] + [""] * (len(header) - 2)) + " |")
        for row in task_rows:
            cells = [_cell(row["model"].get(c), decimals[c]) for c in columns]
            baselines = "; ".join(f"{name} {_cell(s, baseline_decimals, count=False)}"
                                  for name, s in row["baselines"].items())
            seeds = ", ".join(str(s) for s in row["seeds"]) + (" (one run each)" if row["separate_runs"] else "")
            command = f"`{row['command']}`" if row["command"] else ""
            lines.append("| " + " | ".join([_md(x) for x in ["reproduced", *cells, baselines, row["data"],
                                                              row["split"]]]
                                           + [command.replace("|", "\\|")]
                                           + [_md(x) for x in [row["hardware"], row["date"], seeds]]) + " |")
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"
