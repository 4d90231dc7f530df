"""The cold start of this checkout against an earlier one, side by side in one run.

    git worktree add /tmp/before <commit>
    python -m benchmarks.compare_cold /tmp/before            # 25 rounds
    python -m benchmarks.compare_cold /tmp/before --rounds 5

Why: a change to the cold start is measured by the two cold-start rows of the full run
(`benchmarks.bench_cold`), but the effect of the change itself, before against after,
taken from two runs at two moments of a shared host, is buried in how much the host's
speed moves between them (tens of milliseconds). Here the SDK of the other checkout runs
as a fourth contender, interleaved with this checkout's SDK, raw httpx and the official
SDK, in the dev environment and in bare installs (`benchmarks._bare_env`; the earlier
SDK gets a bare environment of its own, built the same way), with the very scripts of
the cold-start rows. It prints the medians and the ratios; it writes nothing. On a busy
shared host, take many rounds: the spread of one contender's processes can exceed the
difference being measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import _bare_env, bench_cold
from benchmarks._common import (
    SECRET_KEY,
    SESSION_ID,
    fresh_processes,
    importable,
    running_server,
)

__all__ = ["main"]


def _table(title: str, samples: dict[str, list[float]]) -> str:
    ms = {who: statistics.median(values) * 1e3 for who, values in samples.items()}
    after, before, raw, official = ms["after"], ms["before"], ms["raw_httpx"], ms["official"]
    return (
        f"{title} (medians of {len(samples['after'])} fresh processes each): after "
        f"{after:.0f} ms, before {before:.0f} ms, raw httpx {raw:.0f} ms, official "
        f"{official:.0f} ms | after/official {after / official:.2f}x, before/official "
        f"{before / official:.2f}x, after/raw {after / raw:.2f}x, before/raw "
        f"{before / raw:.2f}x | before - after {before - after:.0f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_cold", description=__doc__)
    parser.add_argument("before", type=Path, help="a checkout of the earlier commit")
    parser.add_argument("--rounds", type=int, default=25, help="fresh processes per contender")
    args = parser.parse_args(argv)
    before_package = (args.before / "clerk_sessions").resolve()
    if not (before_package / "__init__.py").is_file():
        parser.error(f"{args.before} holds no clerk_sessions package (a checkout of this repo?)")
    if not importable("clerk_backend_api"):
        parser.error("the official SDK is not importable here: pip install clerk-backend-api")
    here = Path(__file__).resolve().parents[1] / "clerk_sessions"

    with running_server(50) as server:
        fields = {"key": SECRET_KEY, "base": server.base_url, "sid": SESSION_ID}
        ours = bench_cold._OURS.format(**fields)
        scripts = {
            "after": ours,
            "raw_httpx": bench_cold._RAW.format(**fields),
            "official": bench_cold._OFFICIAL.format(**fields),
        }
        # In the dev environment the earlier package goes first on the path; in bare
        # installs each SDK has an environment of its own, so the script is the same.
        dev = {
            **scripts,
            "before": f"import sys\nsys.path.insert(0, {str(args.before)!r})\n" + ours,
        }
        print(_table("dev environment", fresh_processes(dev, args.rounds)), flush=True)

        with tempfile.TemporaryDirectory(prefix="compare-cold-") as tmp:
            packages = {
                "after": ("clerk-sessions", here),
                "before": ("clerk-sessions", before_package),
                "raw_httpx": ("httpx", None),
                "official": ("clerk-backend-api", None),
            }
            interpreters = {}
            for who, (dist, package) in packages.items():
                editable = {"clerk-sessions": [package or here]}
                env = _bare_env.build(Path(tmp) / who, dist, editable=editable)
                interpreters[who] = env.python
            bare = {**scripts, "before": ours}
            samples = fresh_processes(bare, args.rounds, interpreters=interpreters)
            print(_table("bare install", samples), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
