"""The benchmarks, run at tiny sizes so they cannot rot.

No timing is asserted (the machine running the tests is shared and noisy); what is
asserted is that every benchmark produces its rows, with positive numbers and both
comparison columns. The official SDK's column may only be missing when
``clerk_backend_api`` cannot be imported, and then the row says so.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import run as runner
from clerk_sessions import _decode

HAVE_OFFICIAL = importlib.util.find_spec("clerk_backend_api") is not None
# orjson installed and the fast paths on: then the decode benchmark measures both parsers.
HAVE_ORJSON = _decode._fast_loads is not None

# The rows the issue names; the sync and bulk modules add rows of their own.
EXPECTED = {
    "cold": ["cold start: import, client, one get"],
    "decode": (["decode 50 sessions, orjson (fast extra)"] if HAVE_ORJSON else [])
    + ["decode 50 sessions, json only"],
    "import": ["import (whole process)"],
    "verify": ["verify_token (cached key)"],
    "async": ["async list (50 sessions)", "async get"],
    "bulk": ["revoke 300 ids, concurrency 64", "peak RSS at 300 ids / at 100 ids"],
    "fleet": [
        "fleet: share of the quota used",
        "fleet: requests answered without 429",
        "fleet: limiter cost per request, one caller (p99)",
    ],
}
# The official SDK has no limiter to share: its fleet would be the raw httpx one.
RAW_ONLY = {"fleet"}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return runner.run_all(quick=True)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_every_benchmark_module_runs_without_error(report: dict[str, Any]) -> None:
    assert report["errors"] == {}


def test_every_benchmark_module_produces_rows(report: dict[str, Any]) -> None:
    produced = {r["benchmark"] for r in report["rows"]}
    assert produced == set(runner.BENCHMARKS)


@pytest.mark.parametrize("benchmark", sorted(EXPECTED))
def test_the_expected_rows_are_produced(report: dict[str, Any], benchmark: str) -> None:
    names = [r["name"] for r in report["rows"] if r["benchmark"] == benchmark]
    assert names == EXPECTED[benchmark]


def test_the_cold_start_decode_and_list_rows_come_first(report: dict[str, Any]) -> None:
    names = [r["name"] for r in report["rows"]]
    first = ["cold start: import, client, one get", *EXPECTED["decode"], "async list (50 sessions)"]

    assert names[: len(first)] == first


# The durable-jobs rows compare with plain revoke_many (in the raw column) only.
JOB_ROWS = [
    "job of 300 ids, 1 worker, SQLite (vs revoke_many), concurrency 8",
    "job of 300 ids, 1 worker, Redis (vs revoke_many), concurrency 8",
    "job of 300 ids, 2 workers, Redis (vs revoke_many in 1 process)",
    "peak RSS of create, 2000 ids, SQLite (vs the process before it)",
    "peak RSS of create, 2000 ids, Redis (vs the process before it)",
]


def test_the_jobs_rows_are_produced(report: dict[str, Any]) -> None:
    assert [r["name"] for r in report["rows"] if r["benchmark"] == "jobs"] == JOB_ROWS


def _compares_with_official(r: dict[str, Any]) -> bool:
    # Every row the issue lists has an official counterpart: ours, and any row whose target
    # names the official SDK. A supplementary row (e.g. thread scaling of the sync facade)
    # may compare with raw httpx only.
    if r["benchmark"] in RAW_ONLY:
        return False
    return r["benchmark"] in EXPECTED or "official" in r["target"]


def test_every_row_has_positive_numbers_and_both_comparisons(report: dict[str, Any]) -> None:
    assert report["rows"]
    for r in report["rows"]:
        assert _positive(r["ours"]), r
        assert _positive(r["raw_httpx"]) and _positive(r["ratio_vs_raw"]), r
        if not _compares_with_official(r):
            continue
        if HAVE_OFFICIAL:
            assert _positive(r["official"]) and _positive(r["ratio_vs_official"]), r
        else:
            assert r["official"] is None and "clerk_backend_api not importable" in r["notes"]


def test_rows_of_the_helper_modules_follow_the_common_format(report: dict[str, Any]) -> None:
    keys = {"name", "ours", "raw_httpx", "official", "unit", "ratio_vs_raw", "ratio_vs_official"}
    for r in report["rows"]:
        assert keys <= r.keys(), r


def test_the_environment_names_the_event_loop_and_sniffio(report: dict[str, Any]) -> None:
    env = report["environment"]
    assert env["event_loop"].startswith("asyncio")
    assert env["sniffio_importable"] is True


def test_the_server_can_answer_faster_than_any_client(report: dict[str, Any]) -> None:
    assert report["server"]["requests_per_s"] > 0


def test_the_report_is_json_and_plots(report: dict[str, Any], tmp_path: Path) -> None:
    json.dumps(report)
    from benchmarks.plot import draw

    draw(report, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "writes"),
    [([], True), (["--only", "decode"], False), (["--only", "decode", "--no-docs"], False)],
    ids=["whole run", "partial run", "partial run, no docs"],
)
def test_only_a_whole_run_rewrites_the_results_page_plot_and_json(
    report: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    writes: bool,
) -> None:
    # The page holds one whole run; a subset of it must not replace the page's table.
    updated: list[object] = []
    monkeypatch.setattr(runner, "run_all", lambda quick, only: report)
    monkeypatch.setattr(runner, "RESULTS", tmp_path / "latest.json")
    monkeypatch.setattr(runner, "PLOT", tmp_path / "plot.png")
    monkeypatch.setattr(runner, "update_docs", lambda r: updated.append(r) or True)

    assert runner.main(argv) == 0

    assert (tmp_path / "latest.json").exists() is writes
    assert (tmp_path / "plot.png").exists() is writes
    assert bool(updated) is writes
