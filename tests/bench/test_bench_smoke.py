"""The benchmarks, run at tiny sizes so they cannot rot.

No timing is asserted (the machine running the tests is shared and noisy); what is
asserted is that every benchmark produces its rows, with positive numbers and both
comparison columns. The official SDK's column may only be missing when
``clerk_backend_api`` cannot be imported, and then the row says so.
"""

from __future__ import annotations

import importlib.util
import json
from importlib.metadata import Distribution, PathDistribution
from pathlib import Path
from typing import Any

import pytest

from benchmarks import _bare_env
from benchmarks import run as runner
from clerk_sessions import _decode

HAVE_OFFICIAL = importlib.util.find_spec("clerk_backend_api") is not None
# orjson installed and the fast paths on: then the decode benchmark measures both parsers.
HAVE_ORJSON = _decode._fast_loads is not None

# The rows the issue names; the sync and bulk modules add rows of their own.
EXPECTED = {
    "cold": [
        "cold start: import, client, one get",
        "cold start, bare install: import, client, one get",
    ],
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


# The first test pays for `report`: every benchmark once in quick mode, about 70 s on a
# quiet 2-core machine (three bare environments and their fresh processes included),
# well past the suite's 120 s per-test timeout when the other workers load the machine.
pytestmark = pytest.mark.timeout(360)


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
    first = [*EXPECTED["cold"], *EXPECTED["decode"], "async list (50 sessions)"]

    assert names[: len(first)] == first


# Installed in the dev environment, picked up at import when present (pytest: the suite's).
DEV_ONLY = ["trio", "orjson", "click", "rich", "pytest"]


def test_the_bare_cold_start_runs_each_contender_with_only_its_declared_dependencies(
    report: dict[str, Any],
) -> None:
    (bare,) = [r for r in report["rows"] if r["name"] == EXPECTED["cold"][1]]
    envs = {
        who: {d.split()[0].lower() for d in dists}
        for who, dists in bare["extra"]["environments"].items()
    }
    found = bare["extra"]["importable"]

    assert {"clerk-sessions", "httpx", "httpcore", "anyio", "attrs", "cattrs"} <= envs["ours"]
    assert {"httpx", "httpcore", "anyio"} <= envs["raw_httpx"]
    assert not {"clerk-sessions", "attrs", "cattrs", "tenacity"} & envs["raw_httpx"]
    for who, names in envs.items():
        assert not {"trio", "orjson", "click", "rich", "pytest"} & names, who
        assert not any(found[who].get(module) for module in DEV_ONLY), who
    assert found["ours"]["pydantic"] is False
    assert found["ours"]["sniffio"] is True
    if HAVE_OFFICIAL:
        assert {"clerk-backend-api", "pydantic"} <= envs["official"]
        assert "clerk-sessions" not in envs["official"]
    assert "bare install" not in report["rows"][0]["name"]
    assert "dev environment" in report["rows"][0]["notes"]
    for who, names in envs.items():
        assert f"{who} {len(names)} distributions" in bare["notes"]


def test_a_bare_environment_imports_its_package_and_nothing_of_the_dev_extra(
    tmp_path: Path,
) -> None:
    env = _bare_env.build(tmp_path / "env", "httpx")
    (tmp_path / "cwd").mkdir()

    found = _bare_env.find_specs(
        env, ["httpx"], [*DEV_ONLY, "pydantic", "attrs"], cwd=tmp_path / "cwd"
    )

    assert found == dict.fromkeys([*DEV_ONLY, "pydantic", "attrs"], False)
    assert {"httpx", "httpcore", "h11", "anyio", "idna", "certifi"} <= set(env.names)
    linked = [p for p in env.site_packages.rglob("*") if not p.is_dir()]
    assert linked and all(p.is_symlink() for p in linked)
    assert not list(env.site_packages.glob("*.pth"))


def test_a_bare_environment_of_an_editable_install_links_the_named_package(
    tmp_path: Path,
) -> None:
    package = Path(_decode.__file__).parent
    with pytest.raises(LookupError, match="editable"):
        _bare_env.build(tmp_path / "unnamed", "clerk-sessions")

    env = _bare_env.build(
        tmp_path / "env", "clerk-sessions", editable={"clerk-sessions": [package]}
    )
    (tmp_path / "cwd").mkdir()
    found = _bare_env.find_specs(
        env, ["clerk_sessions"], ["orjson", "pydantic"], cwd=tmp_path / "cwd"
    )

    assert (env.site_packages / "clerk_sessions").resolve() == package.resolve()
    assert found == {"orjson": False, "pydantic": False}


def _fake_dist(root: Path, name: str, *requires: str) -> Distribution:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    return PathDistribution(info)


def test_the_closure_follows_extras_dependencies_ask_for_and_markers_not_the_roots_extras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dists = [
        _fake_dist(
            tmp_path, "root", "Dep[Fast]", "extra-only; extra == 'cli'", "old; python_version < '3'"
        ),
        _fake_dist(tmp_path, "dep", "speedups; extra == 'fast'", "plain"),
        _fake_dist(tmp_path, "speedups"),
        _fake_dist(tmp_path, "plain"),
        _fake_dist(tmp_path, "extra-only"),
        _fake_dist(tmp_path, "old"),
        _fake_dist(tmp_path, "lonely", "missing"),
    ]
    monkeypatch.setattr(_bare_env, "_installed", lambda: {d.metadata["Name"]: d for d in dists})

    names = [d.metadata["Name"] for d in _bare_env.dependency_closure("root")]

    assert names == ["dep", "plain", "root", "speedups"]
    with pytest.raises(LookupError, match="missing"):
        _bare_env.dependency_closure("lonely")


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


@pytest.mark.skipif(not HAVE_OFFICIAL, reason="compare_cold runs the official SDK too")
def test_compare_cold_prints_both_environments_with_before_and_after(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import compare_cold
    from tests.conftest import REPO_ROOT

    # This checkout against itself, one round: the tool runs, no timing is judged.
    assert compare_cold.main([str(REPO_ROOT), "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["dev environment", "bare install"]
    for line in lines:
        assert "after/official" in line and "before - after" in line


def test_compare_cold_refuses_a_directory_without_the_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import compare_cold

    with pytest.raises(SystemExit) as exited:
        compare_cold.main([str(tmp_path)])
    assert exited.value.code == 2
    assert "holds no clerk_sessions package" in capsys.readouterr().err
