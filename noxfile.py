"""Every check of the project, as nox sessions.

``nox`` runs all of them but ``bench`` (the README's test command); ``nox -s bench`` runs
the benchmarks. Virtualenvs are made with uv for speed.

The test suite runs on the newest versions that resolve (``tests``, on each Python), on
the lowest versions the package's metadata allows (``tests_lowest``: lowest-direct
resolution of the package and its extras), and its core and sync tests once more on the
legacy httpx engine (inside the 3.12 ``tests`` session). The suite itself checks that the
generated code is fresh (tests/sync/test_generated.py, tests/core/
test_decoders_written_ahead.py) in every session, and builds the documentation with
``--strict`` (tests/docs/test_site.py, marked ``once``) in the ONCE_PYTHON session: no
session of its own repeats those.
Development tools come from the ``[dependency-groups]`` of pyproject.toml, never from the
package's extras.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "tests_lowest"]
nox.options.error_on_missing_interpreters = True

PYTHONS = ["3.11", "3.12", "3.13"]

# pyenv installs interpreters without putting `python3.X` on PATH unless selected; add
# them so every version above is found (a no-op on machines without pyenv).
_pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
if _pyenv.is_dir():
    _bins = sorted(str(p / "bin") for p in _pyenv.iterdir() if (p / "bin").is_dir())
    os.environ["PATH"] = os.pathsep.join([*_bins, os.environ.get("PATH", "")])


def _install(session: nox.Session, *groups: str) -> None:
    """The package with every extra, and the named dependency groups, in one resolution."""
    args = [arg for group in groups for arg in ("--group", group)]
    session.install("-e", ".[all]", *args)


def _ensure_redis_server(session: nox.Session) -> None:
    """The fleet tests (shared quota, Redis job store) run against a real redis-server.

    A fresh machine has none: install Debian's package (this is what makes the README's
    test command enough on its own). Without root or apt, stop with what to do: the
    Redis tests are never skipped.
    """
    if shutil.which("redis-server"):
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        session.error(
            "redis-server is missing and cannot be installed here (needs root and apt-get):"
            " install Redis 7 (Debian/Ubuntu: `apt-get install redis-server`) and run nox again."
        )
    session.log("redis-server is missing: installing Debian's package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "-qq", "update"], check=True, env=env)
    subprocess.run(
        [apt, "install", "-y", "-qq", "--no-install-recommends", "redis-server"],
        check=True,
        env=env,
    )
    if not shutil.which("redis-server"):
        session.error("apt-get installed redis-server but it is not on PATH")


# The per-module coverage bar is checked on one Python; measuring on every one would only
# make the suite slower (measured on 2 cores, the whole suite on 3.11: 456 s of CPU under
# coverage, 261 s without).
COVERAGE_PYTHON = "3.11"
# The session that also runs the tests marked `once` (see NOT_ONCE).
ONCE_PYTHON = "3.13"
# The Python whose session also runs the core and sync tests with the fast paths off, and
# on the legacy engine.
NO_FAST_PATHS_PYTHON = "3.12"
# The oldest Python runs the oldest versions: those are the ones old interpreters pin.
LOWEST_PYTHON = "3.11"
# uv itself, for what nox's session.install does not do (a lowest-direct resolution):
# the README's command installs it for the interpreter that runs nox.
UV = (sys.executable, "-m", "uv")

# pytest-xdist. `worksteal` lets an idle worker take queued tests from a busy one, so a
# few long tests do not leave the other cores idle at the end. (Not `loadgroup` or
# `loadscope`: they key tests by node id, and schemathesis gives every operation of a
# spec the same node id, so all but one of them would silently not run.) The suite's
# conftest orders the collection (tests/_schedule.py) so that each worker starts with its
# share of the long tests: on 2 cores, the whole suite on 3.11 with 6 workers took
# 172-175 s in collection order and 144-146 s so ordered.
XDIST = ["-n", "auto", "--dist", "worksteal"]


def _xdist_workers() -> str:
    """How many workers `-n auto` starts: three per core, unless
    PYTEST_XDIST_AUTO_NUM_WORKERS says otherwise (`nox -- -n 0` runs serially).

    Much of the suite waits rather than computes (on a rate limit's window, a subprocess,
    a server in another thread, a killed worker's lease), so workers beyond the cores keep
    them busy. Measured on 2 cores, the whole suite: 3 workers 308 s, 6 workers 230 s (412
    s of CPU either way); the jobs, Redis and bad-day tests alone: 3 workers 176 s, 6
    129 s, 10 120 s.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or str(cores * 3)


def _bytecode_cache(session: nox.Session) -> dict[str, str | None]:
    """Let the tests' processes cache compiled bytecode, under the session's venv.

    The suite starts about a hundred Python processes (the CLI, examples, gunicorn,
    the benchmarks, the xdist workers); with PYTHONDONTWRITEBYTECODE set, as in some
    sandboxes, each one compiles every module it imports from source again: a tenth of
    the suite's CPU time (measured on 3.12: 83-91 s instead of 96-108 s, serially). The
    cache lives under the venv, not in the checkout.
    """
    location = session.virtualenv.location
    return {
        "PYTHONDONTWRITEBYTECODE": None,
        "PYTHONPYCACHEPREFIX": str(Path(location, "pycache")) if location else None,
    }


def _warm_bytecode(session: nox.Session, env: dict[str, str | None], *args: str) -> None:
    """Compile what the tests import, once, before the xdist workers start.

    In a fresh venv the cache is empty, and every worker would otherwise compile the same
    modules, and rewrite the same test modules' asserts, side by side at start-up: measured
    on 3.11, a cold collection costs 14 s of CPU and a warm one 6 s: six cold workers 84 s,
    one collection and six warm workers 50 s. Two collections of half the suite each run
    side by side, since one would leave a core idle (on 3.13, 2 cores: the whole suite
    collected cold in 16.8 s, two halves side by side in 11.1 s).
    """
    parts = sorted(
        str(path)
        for path in Path("tests").iterdir()
        if (path.is_dir() and not path.name.startswith(("_", "."))) or path.match("test_*.py")
    )
    _side_by_side(
        session,
        [["pytest", "--collect-only", "-q", *args, *parts[half::2]] for half in (0, 1)],
        env=env,
        silent=True,
    )


def _side_by_side(
    session: nox.Session,
    commands: list[list[str]],
    env: dict[str, str | None] | None = None,
    *,
    silent: bool = False,
) -> None:
    """Run commands of the session's venv at once, each with its output kept apart (and
    printed after it ends, or, if ``silent``, only if it fails); fail the session if any
    fails."""
    environ = {**os.environ, "PATH": os.pathsep.join([str(session.bin), os.environ["PATH"]])}
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    for command in commands:
        session.log(" ".join(command))
    running = [
        subprocess.Popen(
            command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for command in commands
    ]
    failed = []
    for command, process in zip(commands, running, strict=True):
        output, _ = process.communicate()
        if process.returncode or not silent:
            print(output, end="")
        if process.returncode:
            failed.append(f"{' '.join(command)} (exit {process.returncode})")
    if failed:
        session.error("failed: " + "; ".join(failed))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on one Python, newest dependencies, asyncio and trio, all cores.

    On COVERAGE_PYTHON it runs under `coverage run` (not pytest-cov: our pytest plugin,
    the `fake_clerk` fixture, imports the package before pytest-cov would start
    measuring), xdist workers and other subprocesses included (coverage's
    patch = subprocess), and every module must reach the bar. On NO_FAST_PATHS_PYTHON,
    the same venv then runs the core and sync tests twice more: with the fast paths off,
    and on the legacy httpx engine. On ONCE_PYTHON it also runs the tests marked `once`.
    """
    _install(session, "test", "official")
    _ensure_redis_server(session)
    env = {**_bytecode_cache(session), "PYTEST_XDIST_AUTO_NUM_WORKERS": _xdist_workers()}
    _warm_bytecode(session, env)
    if session.python != COVERAGE_PYTHON:
        once = () if session.python == ONCE_PYTHON else NOT_ONCE
        session.run("pytest", *XDIST, *once, *session.posargs, env=env)
        if session.python == NO_FAST_PATHS_PYTHON and not session.posargs:
            # The fast paths off (the switch in docs/explanation/architecture.md): the
            # same behaviour on stock cattrs, json and anyio, for the tests of the core
            # and the sync facade, which are where those paths run.
            no_fast_paths = {**env, "CLERK_SESSIONS_NO_FAST_PATHS": "1"}
            session.run("pytest", *XDIST, *CORE_AND_SYNC, env=no_fast_paths)
            # The legacy engine: every client those tests build is an httpx.AsyncClient
            # (tests/_engine.py), so the SDK is shown to behave the same on it.
            legacy = {**env, "CLERK_SESSIONS_TEST_ENGINE": "httpx"}
            session.run("pytest", *XDIST, *CORE_AND_SYNC, env=legacy)
        return
    env["COVERAGE_FILE"] = f".coverage.{session.python}"
    session.run("coverage", "erase", env=env)
    session.run("coverage", "run", "-m", "pytest", *XDIST, *NOT_ONCE, *session.posargs, env=env)
    session.run("coverage", "combine", "--quiet", env=env)
    session.run("coverage", "report", env=env)
    report = f".coverage-{session.python}.json"
    session.run("coverage", "json", "--quiet", "-o", report, env=env)
    session.run("python", "scripts/check_coverage.py", report)


# The tests of the core and of the sync facade: where the fast paths and the engine run.
CORE_AND_SYNC = ("tests/core", "tests/sync")
# The conformance of the fake to Clerk's official SDK, which cannot be installed beside
# the lowest versions our metadata allows (it needs httpx>=0.28.1, our httpx extra allows
# 0.27). It runs in every `tests` session.
NEEDS_OFFICIAL_SDK = ("tests/fake/test_official_sdk.py",)
# Tests marked `once` check the repository's own tools, not the SDK: the benchmarks'
# harness in smoke mode (it compares with the official SDK too) and the documentation
# site's build. No interpreter or dependency version changes what they check, and together
# they cost a minute of CPU per run (about 65 s of it the benchmarks), so they run once: in
# the ONCE_PYTHON session, without coverage, which costs them much more (measured on 2
# cores, run on their own: 192 s of CPU under coverage, 140 s without). Every module stays
# over the coverage bar without them: the SDK's own tests cover it. Every other session
# deselects them, and says so.
NOT_ONCE = ("-m", "not once")


@nox.session(python=LOWEST_PYTHON)
def tests_lowest(session: nox.Session) -> None:
    """The test suite on the lowest versions pyproject.toml allows.

    uv resolves the package with every extra at ``lowest-direct`` (each of our own
    requirements at its lowest version, what they need at the newest that fits), the
    test tools are installed within those pins, and a check proves the pins held.
    """
    pins = Path(session.create_tmp(), "lowest.txt")
    session.run(
        *UV,
        "pip",
        "compile",
        "pyproject.toml",
        "--extra",
        "all",
        "--resolution",
        "lowest-direct",
        "--python-version",
        str(session.python),
        "--quiet",
        "--output-file",
        str(pins),
        external=True,
    )
    session.install("-r", str(pins))
    session.install("--no-deps", "-e", ".")
    session.install("--group", "test", "--constraint", str(pins))
    session.run("python", "scripts/check_pins.py", str(pins))
    _ensure_redis_server(session)
    env = {**_bytecode_cache(session), "PYTEST_XDIST_AUTO_NUM_WORKERS": _xdist_workers()}
    ignored = [f"--ignore={path}" for path in NEEDS_OFFICIAL_SDK]
    _warm_bytecode(session, env, *ignored)
    session.run("pytest", *XDIST, *ignored, *NOT_ONCE, *session.posargs, env=env)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("--group", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright on the package and on the typing test of the public API."""
    _install(session, "typecheck")
    # Side by side: they share nothing, and each alone leaves part of the cores idle (cold,
    # on 2 cores: mypy 8.8 s on one, pyright 10.2 s on about one and a half; together, the
    # session took 14 s instead of 22-25 s).
    _side_by_side(
        session,
        [["mypy", "clerk_sessions", "tests/typing"], ["pyright", "clerk_sessions", "tests/typing"]],
    )


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmarks against raw httpx2, raw httpx and the official SDK (not part of `nox`)."""
    _install(session, "test", "official")
    _ensure_redis_server(session)
    session.run("python", "-m", "benchmarks", *session.posargs)
