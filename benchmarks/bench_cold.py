"""Cold start: a fresh process that imports the SDK, builds a client and completes one
``get`` against the benchmark server, wall time of the whole process.

This is what a CLI command or a serverless function pays on every start, so it counts
everything: the interpreter, the imports, building the client (its SSL context
included, though the server speaks plain HTTP), connecting, the first request and
whatever is built on first use. Each contender runs the same steps under
``asyncio.run``:

- ours: ``AsyncClerk(...)`` then ``await clerk.sessions.get(id)``;
- raw httpx2, the floor: ``httpx2.AsyncClient(headers=...)``, ``get`` and ``json.loads``;
- raw httpx, beside it: the same with ``httpx``;
- official: ``clerk_backend_api.Clerk(...)`` then ``await sdk.sessions.get_async(...)``.

Every contender runs in ``rounds`` fresh processes, interleaved (`fresh_processes`);
the row has the medians and the notes the interquartile ranges, since the machine these
run on is shared.

Two rows. The first, "bare install", carries the target: each contender runs in an
environment of its own that holds only what ``pip install`` of it would
(`benchmarks._bare_env`), its bytecode compiled as pip compiles it, as a deployed
function would have; each environment is checked first: the contender's script runs,
every module it imports from that environment is read from compiled bytecode, none of
the dev-only packages can be imported, nor the other contenders' HTTP stacks. The
second runs every contender in the dev environment, where trio, click, rich, orjson and
the rest of the ``dev`` extra are installed and get imported on the way (httpcore and
httpcore2 import trio, httpx its command line's click and rich, ours orjson), with
bytecode cached alike for every contender; it is reported, not a target.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _bare_env
from benchmarks._common import (
    SECRET_KEY,
    SESSION_ID,
    ServerHandle,
    fresh_processes,
    importable,
    row,
)

__all__ = ["run"]

_OURS = """
import asyncio
from clerk_sessions import AsyncClerk

async def main():
    async with AsyncClerk({key!r}, server_url={base!r}) as clerk:
        session = await clerk.sessions.get({sid!r})
    assert session.id == {sid!r}

asyncio.run(main())
"""

# The floor (``httpx2``) and the legacy library beside it (``httpx``): the same script.
_RAW = """
import asyncio
import json
import {lib}

async def main():
    headers = {{"Authorization": "Bearer " + {key!r}, "Accept": "application/json"}}
    async with {lib}.AsyncClient(headers=headers) as client:
        response = await client.get({base!r} + "/sessions/" + {sid!r})
    assert json.loads(response.content)["id"] == {sid!r}

asyncio.run(main())
"""

_OFFICIAL = """
import asyncio
from clerk_backend_api import Clerk

async def main():
    async with Clerk(bearer_auth={key!r}, server_url={base!r}) as sdk:
        session = await sdk.sessions.get_async(session_id={sid!r})
    assert session.id == {sid!r}

asyncio.run(main())
"""


def scripts(base_url: str, *, official: bool = True) -> dict[str, str]:
    """The script of each contender (``official`` False: without the official SDK)."""
    fields = {"key": SECRET_KEY, "base": base_url, "sid": SESSION_ID}
    found = {
        "ours": _OURS.format(**fields),
        "raw": _RAW.format(lib="httpx2", **fields),
        "raw_httpx": _RAW.format(lib="httpx", **fields),
    }
    if official:
        found["official"] = _OFFICIAL.format(**fields)
    return found


def _quartiles(values: list[float]) -> str:
    q1, _median, q3 = statistics.quantiles(values, n=4)
    return f"{q1 * 1e3:.0f}-{q3 * 1e3:.0f}"


# Contender -> the distribution `pip install` would name.
DISTRIBUTIONS = {
    "ours": "clerk-sessions",
    "raw": "httpx2",
    "raw_httpx": "httpx",
    "official": "clerk-backend-api",
}
# In the dev environment, never in a bare one. All but pytest are picked up by an import
# on the way when present (httpcore, httpcore2: trio; httpx: click, rich; ours: orjson).
DEV_ONLY = ("trio", "orjson", "click", "rich", "pytest")
# Per contender, what else its bare environment must not hold: the other contenders,
# and the HTTP stack it does not run on.
NOT_IN = {
    "ours": ("pydantic", "clerk_backend_api", "httpx", "httpcore"),
    "raw": ("pydantic", "clerk_sessions", "clerk_backend_api", "httpx", "httpcore", "attrs"),
    "raw_httpx": ("pydantic", "clerk_sessions", "clerk_backend_api", "httpx2", "httpcore2"),
    "official": ("clerk_sessions", "httpx2", "httpcore2"),
}
# Reported in the notes, whoever holds them: they change what an import or a request costs
# (httpcore tries `import sniffio` on every async request and pays a failed import without;
# neither anyio nor httpx2 requires sniffio any more).
_REPORTED = ("pydantic", "sniffio")
_TARGET = "official <= 0.5; raw <= 1.2"


def _row(
    name: str,
    samples: dict[str, list[float]],
    rounds: int,
    where: str,
    missing: str,
    *,
    target: str = "",
    **extra: Any,
) -> dict[str, Any]:
    ms = {who: statistics.median(values) * 1e3 for who, values in samples.items()}
    spread = ", ".join(f"{who} {_quartiles(values)}" for who, values in samples.items())
    if "official" in ms:
        # What any SDK that imports httpx2 starts from, against the official SDK.
        extra["raw_vs_official"] = ms["raw"] / ms["official"]
        missing = f"Raw httpx2 alone is {extra['raw_vs_official']:.2f}x official. {missing}"
    return row(
        name,
        ms["ours"],
        ms["raw"],
        ms.get("official"),
        "ms",
        raw_httpx=ms["raw_httpx"],
        target=target,
        notes=(
            f"{where}; median of {rounds} fresh processes each, interleaved; interquartile "
            f"ranges (ms): {spread}. {missing}"
        ).strip(),
        rounds=rounds,
        samples_ms={who: [v * 1e3 for v in values] for who, values in samples.items()},
        **extra,
    )


def _ours_dir() -> Path:
    spec = importlib.util.find_spec("clerk_sessions")  # the package the dev row imports
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def checked_probe(
    who: str,
    env: _bare_env.BareEnv,
    script: str,
    *,
    cwd: Path,
    not_in: Sequence[str] | None = None,
) -> _bare_env.Probe:
    """Run ``who``'s script in its bare environment once, and refuse the environment
    when it holds a dev-only package or one of ``not_in`` (by default ``NOT_IN[who]``),
    or when a module of its own was read without compiled bytecode."""
    forbidden = (*DEV_ONLY, *(NOT_IN[who] if not_in is None else not_in))
    found = _bare_env.probe(env, script, (*forbidden, *_REPORTED), cwd=cwd)
    leaked = [m for m in forbidden if found.importable[m]]
    if leaked:
        raise RuntimeError(f"the bare environment of {who} holds {', '.join(leaked)}")
    site = env.site_packages.resolve()
    uncompiled = [
        path
        for path in found.uncompiled
        if Path(os.path.realpath(os.path.dirname(path))).is_relative_to(site)
    ]
    if uncompiled:
        raise RuntimeError(
            f"the bare environment of {who} has no bytecode for {', '.join(uncompiled)}"
        )
    return found


def _bare_row(scripts: dict[str, str], rounds: int, warmups: int, missing: str) -> dict[str, Any]:
    """The same scripts, each contender in an environment of only its declared deps."""
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        envs: dict[str, _bare_env.BareEnv] = {}
        probes: dict[str, _bare_env.Probe] = {}
        empty = Path(tmp) / "cwd"
        empty.mkdir()
        for who, script in scripts.items():
            env = _bare_env.build(
                Path(tmp) / who, DISTRIBUTIONS[who], editable={"clerk-sessions": [_ours_dir()]}
            )
            envs[who], probes[who] = env, checked_probe(who, env, script, cwd=empty)
        samples = fresh_processes(
            scripts,
            rounds,
            interpreters={who: env.python for who, env in envs.items()},
            warmups=warmups,
        )
    held = "; ".join(
        f"{who} {len(env.distributions)} distributions ({', '.join(env.names)})"
        for who, env in envs.items()
    )
    reported = "; ".join(
        f"{module} importable in: "
        f"{', '.join(w for w in envs if probes[w].importable[module]) or 'none'}"
        for module in _REPORTED
    )
    compiled = ", ".join(f"{who} {p.from_source}" for who, p in probes.items())
    stdlib = sum(len(p.uncompiled) for p in probes.values())
    where = (
        "each contender in a virtualenv of its own holding only what `pip install` of it "
        "would (its declared dependencies, recursively, no extras; linked from the "
        f"installed distributions): {held}. Importable in none: {', '.join(DEV_ONLY)}; "
        f"{reported}. Bytecode compiled for every contender alike when its environment "
        "was built (compileall, timestamp-checked .pyc, as pip install does) and read "
        "from there (no PYTHONPYCACHEPREFIX, no PYTHONDONTWRITEBYTECODE); modules each "
        f"script imports from source files: {compiled}, every one from its environment "
        "read from compiled bytecode"
        + (f" ({stdlib} of the interpreter's own without it)" if stdlib else "")
    )
    return _row(
        "cold start, bare install: import, client, one get",
        samples,
        rounds,
        where,
        missing,
        target=_TARGET,
        environments={who: list(env.distributions) for who, env in envs.items()},
        importable={who: p.importable for who, p in probes.items()},
        modules_from_source={who: p.from_source for who, p in probes.items()},
    )


def _measure(server: ServerHandle, quick: bool) -> list[dict[str, Any]]:
    have_official = importable("clerk_backend_api")
    found = scripts(server.base_url, official=have_official)
    missing = "" if have_official else "official column skipped: clerk_backend_api not importable"
    # Quick: one warm-up run is enough to write the bytecode the dev row caches.
    rounds, warmups = (2, 1) if quick else (25, 2)
    bare = _bare_row(found, rounds, warmups, missing)
    dev = _row(
        "cold start, dev environment: import, client, one get",
        fresh_processes(found, rounds, warmups=warmups),
        rounds,
        "every contender in the dev environment (the `dev` extra installed; trio, click, "
        "rich and orjson among it, which httpcore and httpcore2, httpx and ours import "
        "when present), bytecode cached alike for every contender (a fresh "
        "PYTHONPYCACHEPREFIX filled by the warm-up runs); reported, the bare-install "
        "row carries the target",
        missing,
    )
    return [bare, dev]


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """The cold-start rows (bare install, dev environment); starts a server if given none."""
    if server is not None:
        return _measure(server, quick)
    from benchmarks._common import running_server

    with running_server(50 if quick else 500) as own:
        return _measure(own, quick)
