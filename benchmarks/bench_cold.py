"""Cold start: a fresh process that imports the SDK, builds a client and completes one
``get`` against the benchmark server, wall time of the whole process.

This is what a CLI command or a serverless function pays on every start, so it counts
everything: the interpreter, the imports, building the client (httpx's SSL context
included, though the server speaks plain HTTP), connecting, the first request and
whatever is built on first use (our decoder is generated then). Each contender runs the
same steps under ``asyncio.run``:

- ours: ``AsyncClerk(...)`` then ``await clerk.sessions.get(id)``;
- raw httpx: ``httpx.AsyncClient(headers=...)``, ``get`` and ``json.loads``;
- official: ``clerk_backend_api.Clerk(...)`` then ``await sdk.sessions.get_async(...)``.

Every contender runs in ``rounds`` fresh processes, interleaved (`fresh_processes`);
the row has the medians and the notes the interquartile ranges, since the machine these
run on is shared.

Two rows. The first runs every contender in the dev environment, where trio, click,
rich, orjson and the rest of the ``dev`` extra are installed and get imported on the
way (httpcore imports trio, httpx its command line's click and rich, ours orjson). The
second, "bare install", runs each contender in an environment of its own that holds
only what ``pip install`` of it would (`benchmarks._bare_env`), as a deployed function
would have; each environment is checked first: the contender imports, and none of the
dev-only packages can be.
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
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

_RAW = """
import asyncio
import json
import httpx

async def main():
    headers = {{"Authorization": "Bearer " + {key!r}, "Accept": "application/json"}}
    async with httpx.AsyncClient(headers=headers) as client:
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


def _quartiles(values: list[float]) -> str:
    q1, _median, q3 = statistics.quantiles(values, n=4)
    return f"{q1 * 1e3:.0f}-{q3 * 1e3:.0f}"


# Contender -> (the distribution `pip install` would name, the module its script imports).
_PACKAGES = {
    "ours": ("clerk-sessions", "clerk_sessions"),
    "raw_httpx": ("httpx", "httpx"),
    "official": ("clerk-backend-api", "clerk_backend_api"),
}
# In the dev environment, never in a bare one. All but pytest are picked up by an import
# on the way when present (httpcore: trio; httpx: click, rich; ours: orjson).
_DEV_ONLY = ("trio", "orjson", "click", "rich", "pytest")
# Per contender, what else its bare environment must not hold.
_NOT_IN = {
    "ours": ("pydantic", "clerk_backend_api"),
    "raw_httpx": ("pydantic", "clerk_sessions", "clerk_backend_api"),
    "official": ("clerk_sessions",),
}
# Reported in the notes, whoever holds them: they change what an import or a request costs
# (httpcore tries `import sniffio` on every async request and pays a failed import without).
_REPORTED = ("pydantic", "sniffio")
_TARGET = "official <= 0.5; raw <= 1.3"


def _row(
    name: str, samples: dict[str, list[float]], rounds: int, where: str, missing: str, **extra: Any
) -> dict[str, Any]:
    ms = {who: statistics.median(values) * 1e3 for who, values in samples.items()}
    spread = ", ".join(f"{who} {_quartiles(values)}" for who, values in samples.items())
    return row(
        name,
        ms["ours"],
        ms["raw_httpx"],
        ms.get("official"),
        "ms",
        target=_TARGET,
        notes=(
            f"{where}; median of {rounds} fresh processes each, interleaved; interquartile "
            f"ranges (ms): {spread}. {missing}"
        ).strip(),
        rounds=rounds,
        samples_ms={who: [v * 1e3 for v in values] for who, values in samples.items()},
        **extra,
    )


def _bare_row(scripts: dict[str, str], rounds: int, missing: str) -> dict[str, Any]:
    """The same scripts, each contender in an environment of only its declared deps."""
    spec = importlib.util.find_spec("clerk_sessions")  # the package the dev row imports
    assert spec is not None and spec.submodule_search_locations
    ours_dir = Path(next(iter(spec.submodule_search_locations)))
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        envs: dict[str, _bare_env.BareEnv] = {}
        holders: dict[str, dict[str, bool]] = {}
        empty = Path(tmp) / "cwd"
        empty.mkdir()
        for who in scripts:
            dist, module = _PACKAGES[who]
            env = _bare_env.build(Path(tmp) / who, dist, editable={"clerk-sessions": [ours_dir]})
            probes = (*_DEV_ONLY, *_NOT_IN[who], *_REPORTED)
            found = _bare_env.find_specs(env, [module], probes, cwd=empty)
            leaked = [m for m in (*_DEV_ONLY, *_NOT_IN[who]) if found[m]]
            if leaked:
                raise RuntimeError(f"the bare environment of {who} holds {', '.join(leaked)}")
            envs[who], holders[who] = env, found
        samples = fresh_processes(
            scripts, rounds, interpreters={who: env.python for who, env in envs.items()}
        )
    held = "; ".join(
        f"{who} {len(env.distributions)} distributions ({', '.join(env.names)})"
        for who, env in envs.items()
    )
    reported = "; ".join(
        f"{module} importable in: {', '.join(w for w in envs if holders[w][module]) or 'none'}"
        for module in _REPORTED
    )
    where = (
        "each contender in a virtualenv of its own holding only what `pip install` of it "
        "would (its declared dependencies, recursively, no extras; linked from the "
        f"installed distributions): {held}. Importable in none: {', '.join(_DEV_ONLY)}; "
        f"{reported}"
    )
    return _row(
        "cold start, bare install: import, client, one get",
        samples,
        rounds,
        where,
        missing,
        environments={who: list(env.distributions) for who, env in envs.items()},
        importable=holders,
    )


def _measure(server: ServerHandle, quick: bool) -> list[dict[str, Any]]:
    fields = {"key": SECRET_KEY, "base": server.base_url, "sid": SESSION_ID}
    scripts = {"ours": _OURS.format(**fields), "raw_httpx": _RAW.format(**fields)}
    missing = "official column skipped: clerk_backend_api not importable"
    if importable("clerk_backend_api"):
        scripts["official"] = _OFFICIAL.format(**fields)
        missing = ""
    rounds = 2 if quick else 25
    dev = _row(
        "cold start: import, client, one get",
        fresh_processes(scripts, rounds),
        rounds,
        "every contender in the dev environment (the `dev` extra installed; trio, click, "
        "rich and orjson among it, which httpcore, httpx and ours import when present)",
        missing,
    )
    return [dev, _bare_row(scripts, rounds, missing)]


def run(quick: bool, server: ServerHandle | None = None) -> list[dict[str, Any]]:
    """The cold-start rows (dev environment, bare install); starts a server if given none."""
    if server is not None:
        return _measure(server, quick)
    from benchmarks._common import running_server

    with running_server(50 if quick else 500) as own:
        return _measure(own, quick)
