"""Draw the results as one picture: how much each contender costs relative to ours.

Every row becomes a group of up to three bars, "raw httpx2" (the floor), "raw httpx"
and "official SDK", each showing ``other's cost / our cost`` (for rates, ``our rate /
other's rate``... inverted so that in every group a bar *above 1* means we are faster
than that contender and *below 1* means we are slower). The dashed line at 1 is parity;
a marker shows where the issue's target sits for that bar. Rows whose raw column is not
raw httpx2 (their ``floor`` says what it is: ``json.loads``, PyJWT, ...) keep that
label on their first bar.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from benchmarks._common import RAW_HTTPX2

__all__ = ["draw"]


def _speedup(ratio: float | None, better: str) -> float | None:
    """Ours-vs-other ratio turned into "how many times faster we are" (>1 = faster)."""
    if ratio is None or ratio == 0:
        return None
    return ratio if better == "higher" else 1 / ratio


def _target_speedup(target: str, who: str, better: str) -> float | None:
    for clause in target.split(";") if target else []:
        if len(clause.split()) != 3:
            continue  # an absolute goal (the fleet's "p99 < 5 ms"), not a ratio to draw
        name, _op, value = clause.split()
        if name == who:
            return _speedup(float(value), better)
    return None


def draw(report: dict[str, Any], path: Path) -> None:
    """Write the plot of ``report`` (as written by `benchmarks.run`) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    rows = [r for r in report["rows"] if r.get("plot", True)]
    labels = [
        textwrap.fill(
            r["name"] + ("" if r["floor"] == RAW_HTTPX2 else f" (floor: {r['floor']})"), 30
        )
        for r in rows
    ]
    height = 0.27
    fig, ax = plt.subplots(figsize=(10, 1.0 * len(rows) + 2.2))
    for offset, key, who, color, label in (
        (-height, "ratio_vs_raw", "raw", "#7f8c8d", "vs raw httpx2 (the floor)"),
        (0.0, "ratio_vs_raw_httpx", "raw_httpx", "#b8c2c3", "vs raw httpx"),
        (height, "ratio_vs_official", "official", "#2e86de", "vs official SDK"),
    ):
        ys, xs = [], []
        for i, r in enumerate(rows):
            value = _speedup(r[key], r["better"])
            if value is not None:
                ys.append(i + offset)
                xs.append(value)
        bars = ax.barh(ys, xs, height=height, color=color, label=label)
        for bar, value in zip(bars, xs, strict=True):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {value:.2f}x",
                va="center",
                fontsize=8,
            )
        for i, r in enumerate(rows):
            goal = _target_speedup(r["target"], who, r["better"])
            if goal is not None:
                ax.plot([goal], [i + offset], marker="|", markersize=14, color="#c0392b")
    ax.plot([], [], marker="|", linestyle="", markersize=12, color="#c0392b", label="target")
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}x"))
    ax.set_xlabel(
        "advantage of clerk-sessions: N times faster (or leaner, for memory); right of 1x = better"
    )
    env = report["environment"]
    ax.set_title(
        f"clerk-sessions vs raw httpx2, raw httpx and clerk-backend-api\n"
        f"{env['python']}, {env['event_loop'].split(' ')[0]}, {env['cpu']} x{env['cpu_count']}",
        fontsize=10,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
