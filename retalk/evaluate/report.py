"""What ``retalk eval`` reports: the :class:`Summary` it returns, per-metric statistics,
``report.md`` and the two plots.

Reads the rows it is given; computes no metric of its own beyond means and standard deviations.
"""
from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retalk.evaluate.columns import (
    METRIC_BY_NAME,
    METRICS,
    PLOTS_DIR,
    REPORT_MD,
    RESULTS_CSV,
    SET_METRICS,
    SUMMARY_JSON,
    UNAVAILABLE,
    fmt,
    number,
)
from retalk.evaluate.results import json_value, write_atomic


@dataclass(frozen=True)
class Summary:
    """What :func:`evaluate` did and wrote.

    ``means``: per-clip metric → mean over the clips that have it (``"unavailable"`` when its
    weights did not load, None when no clip has it, ``inf`` possible for PSNR of identical
    pictures).  ``set_metrics``: FID/KID (or ``"unavailable"``).  ``unavailable``: metric group →
    reason.  ``errors``: clip id → one-line error.  ``rows``: the ``results.csv`` rows, by id.
    ``elapsed_s``: seconds for the whole call.
    """

    out_dir: Path
    engine: str
    protocol: str
    seed: int
    n_clips: int
    n_ok: int
    n_error: int
    n_resumed: int
    means: dict[str, float | str | None]
    set_metrics: dict[str, float | str | None]
    unavailable: dict[str, str]
    errors: dict[str, str]
    rows: tuple[dict[str, str], ...] = field(repr=False)
    elapsed_s: float = 0.0
    stages_s: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each step of the run (``setup``, ``clips``, ``set_metrics``, ``report``)."""

    @property
    def results_csv(self) -> Path:
        return self.out_dir / RESULTS_CSV

    @property
    def summary_json(self) -> Path:
        return self.out_dir / SUMMARY_JSON

    @property
    def report_md(self) -> Path:
        return self.out_dir / REPORT_MD

    @property
    def plots(self) -> tuple[Path, Path]:
        return self.out_dir / PLOTS_DIR / "per_clip.png", self.out_dir / PLOTS_DIR / "sync_offset_hist.png"


def metric_stats(rows: Sequence[Mapping[str, str]], groups: set[str],
                  unavailable: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per metric of the selected ``groups``: unit, better, description, and mean/std/n over the ok rows.

    A group in ``unavailable`` reads ``mean="unavailable"``; std is None for fewer than 2 values or
    when some are infinite.
    """
    stats: dict[str, dict[str, Any]] = {}
    ok = [r for r in rows if r["status"] == "ok"]
    for m in METRICS:
        if m.group not in groups:
            continue
        entry: dict[str, Any] = {"unit": m.unit, "better": m.better, "description": m.description}
        if m.group in unavailable:
            entry.update(mean=UNAVAILABLE, std=None, n=0)
        else:
            vals = [x for x in (number(r.get(m.name)) for r in ok) if x is not None]
            arr = np.asarray(vals, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                entry.update(mean=float(arr.mean()) if arr.size else None,
                             std=float(arr.std()) if arr.size > 1 and np.isfinite(arr).all() else None, n=len(vals))
        stats[m.name] = entry
    return stats


def versions(ray_used: bool) -> dict[str, str]:
    """Versions of retalk, Python and the packages the numbers depend on (Ray when it was used)."""
    from importlib import metadata

    from retalk import __version__

    out = {"retalk": __version__, "python": platform.python_version()}
    names = ["numpy", "scipy", "scikit-image", "opencv-contrib-python", "mediapipe", "av", "torch"]
    if ray_used:
        names.append("ray")
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_summary_json(path: Path, summary: Summary, stats: Mapping[str, Mapping[str, Any]], *, dataset: str,
                       groups: Sequence[str], frame_step: int, backend: str, plots_note: str | None,
                       ray_used: bool, extra: Mapping[str, Any] | None = None) -> None:
    """Write ``summary.json``: the run's options, counts, means, per-metric statistics, set metrics,
    unavailable groups with their metrics and reason, errors, versions and timings (non-finite numbers
    as ``null``/``"inf"``); ``extra``: more top-level entries (the dataset's layout, subset, pairing)."""
    unavailable_json = {g: {"metrics": [m.name for m in METRICS + SET_METRICS if m.group == g], "reason": why}
                        for g, why in summary.unavailable.items()}
    doc = {
        "engine": summary.engine, "protocol": summary.protocol, "seed": summary.seed, "dataset": dataset,
        "out_dir": str(summary.out_dir), "metric_groups": list(groups), "frame_step": frame_step,
        "backend": backend,
        "counts": {"clips": summary.n_clips, "ok": summary.n_ok, "error": summary.n_error,
                   "resumed": summary.n_resumed},
        "means": summary.means, "metrics": stats, "set_metrics": summary.set_metrics,
        "unavailable": unavailable_json, "errors": summary.errors, "plots": plots_note or "ok",
        "versions": versions(ray_used), "elapsed_s": round(summary.elapsed_s, 3),
        "stages_s": {k: round(v, 3) for k, v in summary.stages_s.items()},
        **(extra or {}),
    }
    write_atomic(path, json.dumps(json_value(doc), indent=2, ensure_ascii=False) + "\n")


def write_report(path: Path, summary: Summary, stats: Mapping[str, Mapping[str, Any]], dataset: str,
                  plots_note: str | None, notes: Sequence[str] = ()) -> None:
    """Write ``report.md``: summary table, set metrics, unavailable groups, per-clip table, errors, plots."""
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return fmt(v)
        return str(v).replace("|", "\\|")

    lines = [f"# retalk eval: `{summary.engine}` engine, {summary.protocol} protocol", "",
             f"Dataset `{dataset}`: {summary.n_clips} clip(s), {summary.n_ok} ok, {summary.n_error} failed, "
             f"{summary.n_resumed} reused from an earlier run. Seed {summary.seed}.", "",
             *[line for note in notes for line in (note, "")],
             "## Summary (mean over clips)", "", "| metric | mean | std | clips | unit | better |",
             "|---|---:|---:|---:|---|---|"]
    for name, st in stats.items():
        if st["n"] == 0 and st["mean"] is None:
            continue
        lines.append(f"| {name} | {cell(st['mean'])} | {cell(st['std'])} | {st['n']} | {st['unit']} | "
                     f"{st['better'] or '–'} |")
    if summary.set_metrics:
        lines += ["", "| set metric | value | unit | better |", "|---|---:|---|---|"]
        for name, v in summary.set_metrics.items():
            m = METRIC_BY_NAME[name]
            lines.append(f"| {name} | {cell(v)} | {m.unit} | {m.better or '–'} |")
    if summary.unavailable:
        lines += ["", "## Unavailable", ""]
        for group, reason in summary.unavailable.items():
            lines.append(f"- **{group}**: {reason}")
    shown = [m.name for m in METRICS if any(number(r.get(m.name)) is not None for r in summary.rows)]
    lines += ["", "## Per clip", "", "| id | driven by | status | " + " | ".join(shown) + " |",
              "|---|---|---|" + "---:|" * len(shown)]
    for r in summary.rows:
        lines.append(f"| {cell(r['id'])} | {cell(r['audio_id'])} | {r['status']} | "
                     + " | ".join(cell(r.get(c) or "–") for c in shown) + " |")
    if summary.errors:
        lines += ["", "## Errors", ""]
        for cid, err in summary.errors.items():
            lines.append(f"- `{cid}`: {err}")
    lines += ["", "## Plots", ""]
    if plots_note:
        lines.append(f"Not drawn: {plots_note}")
    else:
        lines += [f"![per-clip metrics]({PLOTS_DIR}/per_clip.png)", "",
                  f"![sync offsets]({PLOTS_DIR}/sync_offset_hist.png)"]
    write_atomic(path, "\n".join(lines) + "\n")


def write_plots(plot_dir: Path, rows: Sequence[Mapping[str, str]]) -> None:
    """``per_clip.png`` (one bar chart per metric) and ``sync_offset_hist.png``; Agg canvas, no pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = [r for r in rows if r["status"] == "ok"]
    ids = [r["id"] for r in ok]
    shown = [m for m in METRICS if any(number(r.get(m.name)) is not None for r in ok)]
    ncols = 4
    nrows = max(1, math.ceil(len(shown) / ncols))
    width = min(40.0, max(12.0, 0.25 * len(ids) * ncols))
    fig = Figure(figsize=(width, 2.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    if not shown:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no clip was scored", ha="center", va="center")
        ax.set_axis_off()
    for k, m in enumerate(shown):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        vals = np.array([np.nan if (x := number(r.get(m.name))) is None else x for r in ok], dtype=np.float64)
        finite = vals[np.isfinite(vals)]
        top = float(finite.max()) if finite.size else 1.0
        heights = np.where(np.isinf(vals), top, np.nan_to_num(vals, nan=0.0))  # inf (identical frames): at the top
        bars = ax.bar(np.arange(len(ids)), heights, color="tab:blue")
        for bar, v in zip(bars, vals):
            if np.isinf(v):
                bar.set_hatch("//")
                ax.annotate("inf", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", fontsize=7)
        arrow = {"higher": " ↑", "lower": " ↓"}.get(m.better, "")
        ax.set_title(f"{m.name} [{m.unit}]{arrow}", fontsize=9)
        ax.set_xticks(np.arange(len(ids)))
        ax.set_xticklabels(ids if len(ids) <= 40 else [""] * len(ids), rotation=90, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.savefig(plot_dir / "per_clip.png", dpi=100)

    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    bins = np.arange(-15.5, 16.5, 1.0)
    drawn = False
    for name, label in (("av_offset", "mouth opening vs loudness"), ("lse_offset", "SyncNet")):
        vals = [x for x in (number(r.get(name)) for r in ok) if x is not None]
        if vals:
            ax.hist(np.clip(vals, -15, 15), bins=bins, alpha=0.6, label=f"{label} ({len(vals)} clips)")
            drawn = True
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("AV offset (frames; 0 = in sync)")
    ax.set_ylabel("clips")
    ax.set_title("Sync offset per clip")
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no offsets measured", ha="center", va="center", transform=ax.transAxes)
    fig.savefig(plot_dir / "sync_offset_hist.png", dpi=100)
