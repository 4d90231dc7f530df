"""Run every benchmark in one process against one local server, print one table.

    python -m benchmarks              # the full run: writes benchmarks/results/latest.json,
                                      # docs/img/benchmarks.png and the table in
                                      # docs/benchmarks.md
    python -m benchmarks --quick      # tiny sizes, seconds; what the test suite runs
    python -m benchmarks --only cold,decode   # a subset: prints its rows, writes nothing
                                              # unless given --json or --plot

Each benchmark module has ``run(quick, server=None) -> list[dict]`` returning rows in
the format of `benchmarks._common.row`. Modules run one after the other (never in
parallel: they would measure each other), the ones that start fresh processes first.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import (
    COLUMNS,
    OPTIONAL_MODULES,
    RAW_HTTPX2,
    environment,
    running_server,
    server_capacity,
)

__all__ = ["BENCHMARKS", "main", "run_all"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
PLOT = ROOT / "docs" / "img" / "benchmarks.png"

#: name -> module; the order in which they run and appear in the table.
BENCHMARKS = {
    "cold": "benchmarks.bench_cold",
    "decode": "benchmarks.bench_decode",
    "async": "benchmarks.bench_async",
    "import": "benchmarks.bench_import",
    "verify": "benchmarks.bench_verify",
    "sync": "benchmarks.bench_sync",
    "bulk": "benchmarks.bench_bulk",
    "fleet": "benchmarks.bench_fleet",
    "jobs": "benchmarks.bench_jobs",
    # Last: it loads OpenTelemetry's API into the process, which no row before measures.
    "otel": "benchmarks.bench_otel",
}


def _call(module: Any, quick: bool, server: Any) -> list[dict[str, Any]]:
    params = inspect.signature(module.run).parameters
    rows: list[dict[str, Any]] = (
        module.run(quick, server=server) if "server" in params else module.run(quick)
    )
    return rows


def run_all(quick: bool, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the selected benchmarks; return the whole report (environment, rows, errors)."""
    selected = [name for name in BENCHMARKS if not only or name in only]
    started = time.time()
    report: dict[str, Any] = {
        "command": "python -m benchmarks" + (" --quick" if quick else ""),
        "quick": quick,
        "columns": COLUMNS,
        "environment": environment(),
        "rows": [],
        "errors": {},
    }
    with running_server(50 if quick else 500) as server:
        report["server"] = {
            "list_size": server.list_size,
            **server_capacity(server, seconds=0.2 if quick else 2.0, connections=1),
        }
        for name in selected:
            try:
                module = importlib.import_module(BENCHMARKS[name])
            except ImportError as exc:
                report["errors"][name] = f"not available: {exc}"
                continue
            t0 = time.perf_counter()
            try:
                # Over the whole module (so including its set-up): a floor for its load.
                with server.cpu_meter() as meter:
                    rows = _call(module, quick, server)
            except Exception:
                report["errors"][name] = traceback.format_exc()
                continue
            report["server"].setdefault("cpu_pct_by_benchmark", {})[name] = meter["cpu_pct"]
            for item in rows:
                item.setdefault("benchmark", name)
                item.setdefault("seconds", time.perf_counter() - t0)
            report["rows"].extend(rows)
    report["duration_s"] = time.time() - started
    report["environment"]["load_average_after"] = list(os.getloadavg())
    return report


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(report: dict[str, Any]) -> str:
    """The rows as a Markdown table (also readable in a terminal).

    The "raw httpx2" column is each row's floor: raw httpx2 unless the row's ``floor``
    names something else, which the table then says in that cell.
    """
    lines = [
        "| benchmark | unit | ours | raw httpx2 (floor) | raw httpx | official "
        "| ours/raw httpx2 | ours/raw httpx | ours/official | target | met |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in report["rows"]:
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        better = "higher is better" if r["better"] == "higher" else ""
        unit = f"{r['unit']} ({better})" if better else r["unit"]
        raw = _fmt(r["raw"])
        if r["floor"] != RAW_HTTPX2:
            raw = f"{raw} ({r['floor']})"
        lines.append(
            f"| {r['name']} | {unit} | {_fmt(r['ours'])} | {raw} | {_fmt(r['raw_httpx'])} "
            f"| {_fmt(r['official'])} | {_ratio(r['ratio_vs_raw'])} "
            f"| {_ratio(r['ratio_vs_raw_httpx'])} | {_ratio(r['ratio_vs_official'])} "
            f"| {r['target'] or '-'} | {met} |"
        )
    return "\n".join(lines)


def _importable(env: dict[str, Any]) -> str:
    """Which of the modules that change a contender's work are importable, and why each
    matters."""
    return "; ".join(
        f"{module} {'yes' if found else 'no'} ({OPTIONAL_MODULES[module]})"
        for module, found in env["importable"].items()
    )


DOCS = ROOT / "docs" / "benchmarks.md"
_START, _END = "<!-- results:start -->", "<!-- results:end -->"


def results_markdown(report: dict[str, Any]) -> str:
    """The generated part of docs/benchmarks.md: machine, command, server check, table."""
    env = report["environment"]
    server = report["server"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    # The server must answer far faster than the fastest client asks: name that client.
    raw_gets = {
        label: us
        for r in report["rows"]
        if r["name"] == "async get"
        for label, us in (("raw httpx2", r["raw"]), ("raw httpx", r["raw_httpx"]))
        if us
    }
    fastest = min(raw_gets, key=raw_gets.__getitem__) if raw_gets else None
    server_cpu = [
        f"{r['name']}: {r['extra']['server_cpu_pct']:.0f}%"
        for r in report["rows"]
        if "server_cpu_pct" in r.get("extra", {})
    ] + [
        f"whole {name} module: {pct:.0f}%"
        for name, pct in server.get("cpu_pct_by_benchmark", {}).items()
        if name in ("sync", "bulk")
    ]
    lines = [
        f"Measured with `{report['command']}` in {report['duration_s']:.0f} s.",
        "",
        f"- Machine: {env['cpu']} x{env['cpu_count']}, {env['platform']}; "
        f"load average {', '.join(f'{x:.2f}' for x in env['load_average'])} at the start.",
        f"- Python: {env['python']}; event loop: {env['event_loop']}.",
        f"- Importable in the environment every row runs in (but the bare-install cold "
        f"start, whose note says what each of its environments holds): {_importable(env)}.",
        f"- Versions: {versions}.",
        f"- Server ceiling: {server['requests_per_s']:,.0f} single-session GETs/s from a "
        f"raw-socket client, using {server['server_cpu_pct']:.0f}% of one core"
        + (
            f"; the fastest HTTP client here ({fastest}) asks for {1e6 / raw_gets[fastest]:,.0f}/s"
            if fastest
            else ""
        )
        + ". Server CPU during the runs: "
        + ("; ".join(server_cpu) or "n/a")
        + ".",
        "",
        table(report),
    ]
    notes = [f"- **{r['name']}**: {r['notes']}" for r in report["rows"] if r["notes"]]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def update_docs(report: dict[str, Any], path: Path = DOCS) -> bool:
    """Replace the generated block of the results page; False when it has no markers."""
    if not path.exists():
        return False
    text = path.read_text()
    if _START not in text or _END not in text:
        return False
    head, rest = text.split(_START, 1)
    _old, tail = rest.split(_END, 1)
    path.write_text(f"{head}{_START}\n{results_markdown(report)}\n{_END}{tail}")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: run, print the table, write JSON and the plot."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no files written")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--json", type=Path, help=f"where to write results (whole run: {RESULTS})")
    parser.add_argument("--plot", type=Path, help=f"where to draw the plot (whole run: {PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot")
    parser.add_argument(
        "--no-docs", action="store_true", help=f"do not rewrite the results in {DOCS.name}"
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    report = run_all(args.quick, only)
    env = report["environment"]
    print(
        f"{env['python']} on {env['cpu']} x{env['cpu_count']}, {env['event_loop']}, "
        f"importable: {env['importable']}, load {env['load_average']}"
    )
    print(
        f"server ceiling: {report['server']['requests_per_s']:,.0f} GET/s at "
        f"{report['server']['server_cpu_pct']:.0f}% of one core"
    )
    print(table(report))
    for name, error in report["errors"].items():
        print(f"\n[{name}] {error}", file=sys.stderr)
    # The results page, its plot and latest.json hold one whole run: a quick or partial
    # run writes only where it is told to.
    whole = not args.quick and only is None
    json_path = args.json or (RESULTS if whole else None)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {json_path}")
    plot_path = args.plot or (PLOT if whole and not args.no_plot else None)
    if plot_path is not None and not args.no_plot:
        from benchmarks.plot import draw

        draw(report, plot_path)
        print(f"drew {plot_path}")
    if whole and not args.no_docs and update_docs(report):
        print(f"updated {DOCS}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
