"""The cold start of this checkout against an earlier one, side by side in one run.

    git worktree add /tmp/before <commit>
    python -m benchmarks.compare_cold /tmp/before            # 25 rounds
    python -m benchmarks.compare_cold /tmp/before --rounds 5

Why: a change to the cold start is measured by the two cold-start rows of the full run
(`benchmarks.bench_cold`), but the effect of the change itself, before against after,
taken from two runs at two moments of a shared host, is buried in how much the host's
speed moves between them (tens of milliseconds). Here the SDK of the other checkout runs
as one more contender, interleaved with this checkout's SDK, raw httpx2, raw httpx and
the official SDK, in the dev environment and in bare installs, with the very scripts of
the cold-start rows. It prints what each bare environment holds, then the medians and
the ratios; it writes nothing. On a busy
shared host, take many rounds: the spread of one contender's processes can exceed the
difference being measured.

The earlier checkout may run on another HTTP engine (the SDK before its move to httpx2
ran on httpx and httpcore): its bare environment holds what its own ``pyproject.toml``
declares, resolved against the distributions installed here (`benchmarks._bare_env`), so
those must be installed (``pip install httpx`` for an SDK on httpx); this checkout's
holds what the installed clerk-sessions declares (httpx2). In the dev environment the
earlier package goes first on the path, beside everything installed here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import _bare_env, bench_cold
from benchmarks._common import fresh_processes, importable, running_server

__all__ = ["main"]

# The earlier SDK declares its own engine; only the official SDK must stay out.
_NOT_IN_BEFORE = ("pydantic", "clerk_backend_api")
_LABELS = {
    "after": "after",
    "before": "before",
    "raw": "raw httpx2",
    "raw_httpx": "raw httpx",
    "official": "official",
}


def _table(title: str, samples: dict[str, list[float]]) -> str:
    ms = {who: statistics.median(values) * 1e3 for who, values in samples.items()}
    times = ", ".join(f"{label} {ms[who]:.0f} ms" for who, label in _LABELS.items())
    ratios = ", ".join(
        f"{sdk}/{_LABELS[other]} {ms[sdk] / ms[other]:.2f}x"
        for other in ("official", "raw", "raw_httpx")
        for sdk in ("after", "before")
    )
    return (
        f"{title} (medians of {len(samples['after'])} fresh processes each): {times} | "
        f"{ratios} | before - after {ms['before'] - ms['after']:.0f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: measure; print what each bare environment holds, then one
    line of medians and ratios per environment kind."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_cold", description=__doc__)
    parser.add_argument("before", type=Path, help="a checkout of the earlier commit")
    parser.add_argument("--rounds", type=int, default=25, help="fresh processes per contender")
    args = parser.parse_args(argv)
    before_package = (args.before / "clerk_sessions").resolve()
    if not (before_package / "__init__.py").is_file():
        parser.error(f"{args.before} holds no clerk_sessions package (a checkout of this repo?)")
    try:
        before_requires = _bare_env.declared_requirements(args.before)
    except LookupError as exc:
        parser.error(str(exc))
    if not importable("clerk_backend_api"):
        parser.error("the official SDK is not importable here: pip install clerk-backend-api")
    here = Path(__file__).resolve().parents[1] / "clerk_sessions"

    with running_server(50) as server, tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        found = bench_cold.scripts(server.base_url)
        ours = found.pop("ours")
        # Each SDK gets an environment of its own, so one script runs both.
        bare = {"after": ours, "before": ours, **found}
        try:
            envs = {
                "after": _bare_env.build(
                    Path(tmp) / "after", "clerk-sessions", editable={"clerk-sessions": [here]}
                ),
                "before": _bare_env.build(
                    Path(tmp) / "before",
                    "clerk-sessions",
                    editable={"clerk-sessions": [before_package]},
                    requires=before_requires,
                ),
            }
        except LookupError as exc:
            parser.error(f"cannot build the bare environments: {exc}")
        for who in found:
            envs[who] = _bare_env.build(Path(tmp) / who, bench_cold.DISTRIBUTIONS[who])
        empty = Path(tmp) / "cwd"
        empty.mkdir()
        # Before measuring: each script runs, from compiled bytecode, in an environment
        # without what it must not hold (whatever engine the earlier SDK declares).
        not_in = {**bench_cold.NOT_IN, "after": bench_cold.NOT_IN["ours"], "before": _NOT_IN_BEFORE}
        for who, env in envs.items():
            bench_cold.checked_probe(who, env, bare[who], cwd=empty, not_in=not_in[who])
            print(f"bare environment of {_LABELS[who]}: {', '.join(env.distributions)}")

        dev = {**bare, "before": f"import sys\nsys.path.insert(0, {str(args.before)!r})\n" + ours}
        print(_table("dev environment", fresh_processes(dev, args.rounds)), flush=True)
        samples = fresh_processes(
            bare, args.rounds, interpreters={who: env.python for who, env in envs.items()}
        )
        print(_table("bare install", samples), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
