"""Every check of the project, as nox sessions.

``nox`` runs all of them but ``bench`` (the README's test command); ``nox -s bench`` runs
the benchmarks. Virtualenvs are made with uv for speed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "codegen", "typecheck", "tests", "docs"]
nox.options.error_on_missing_interpreters = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# Test- and benchmark-only packages: Clerk's official SDK is what we compare against and
# what proves the fake server speaks Clerk's API. It is never a dependency of ours.
OFFICIAL_SDK = "clerk-backend-api==7.0.0"

# pyenv installs interpreters without putting `python3.X` on PATH unless selected; add
# them so every version above is found (a no-op on machines without pyenv).
_pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
if _pyenv.is_dir():
    _bins = sorted(str(p / "bin") for p in _pyenv.iterdir() if (p / "bin").is_dir())
    os.environ["PATH"] = os.pathsep.join([*_bins, os.environ.get("PATH", "")])


def _install_dev(session: nox.Session) -> None:
    session.install("-e", ".[dev]", OFFICIAL_SDK)


def _dev_requirement(name: str) -> str:
    """The dev extra's requirement for ``name``: one pin for every session that needs it."""
    dev = nox.project.load_toml("pyproject.toml")["project"]["optional-dependencies"]["dev"]
    return next(req for req in dev if re.match(rf"{re.escape(name)}\b(?![-_.])", req))


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
# make the suite slower (coverage costs about a third more time).
COVERAGE_PYTHON = "3.11"
# The Python whose session also runs the core and sync tests with the fast paths off.
NO_FAST_PATHS_PYTHON = "3.12"

# pytest-xdist. `worksteal` lets an idle worker take queued tests from a busy one, so a
# few long tests do not leave the other cores idle at the end. (Not `loadgroup` or
# `loadscope`: they key tests by node id, and schemathesis gives every operation of a
# spec the same node id, so all but one of them would silently not run.)
XDIST = ["-n", "auto", "--dist", "worksteal"]


def _xdist_workers() -> str:
    """How many workers `-n auto` starts: one more than there are cores, unless
    PYTEST_XDIST_AUTO_NUM_WORKERS says otherwise (`nox -- -n 0` runs serially).

    Many tests spend their time waiting (on a rate limit's window, a subprocess, a
    server in another thread), so an extra worker keeps the cores busy: on 2 cores, 3
    workers ran a 3.12 session in 58 s and 2 workers in 68 s (95 s and 117 s measuring
    coverage); 4 were no faster than 3.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or str(cores + 1)


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


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on one Python, on both asyncio and trio, on all cores.

    On COVERAGE_PYTHON it runs under `coverage run` (not pytest-cov: our pytest plugin,
    the `fake_clerk` fixture, imports the package before pytest-cov would start
    measuring), xdist workers and other subprocesses included (coverage's
    patch = subprocess), and every module must reach the bar.
    """
    _install_dev(session)
    _ensure_redis_server(session)
    env = {**_bytecode_cache(session), "PYTEST_XDIST_AUTO_NUM_WORKERS": _xdist_workers()}
    if session.python != COVERAGE_PYTHON:
        session.run("pytest", *XDIST, *session.posargs, env=env)
        if session.python == NO_FAST_PATHS_PYTHON and not session.posargs:
            # The fast paths off (the switch in docs/explanation/architecture.md): the
            # same behaviour on stock httpcore, cattrs and anyio, for the tests of the
            # core and the sync facade, which are where those paths run.
            no_fast_paths = {**env, "CLERK_SESSIONS_NO_FAST_PATHS": "1"}
            session.run("pytest", *XDIST, "tests/core", "tests/sync", env=no_fast_paths)
        return
    env["COVERAGE_FILE"] = f".coverage.{session.python}"
    session.run("coverage", "erase", env=env)
    session.run("coverage", "run", "-m", "pytest", *XDIST, *session.posargs, env=env)
    session.run("coverage", "combine", "--quiet", env=env)
    session.run("coverage", "report", env=env)
    report = f".coverage-{session.python}.json"
    session.run("coverage", "json", "--quiet", "-o", report, env=env)
    session.run("python", "scripts/check_coverage.py", report)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(_dev_requirement("ruff"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright on the package and on the typing test of the public API."""
    _install_dev(session)
    session.run("mypy", "clerk_sessions", "tests/typing")
    session.run("pyright", "clerk_sessions", "tests/typing")


@nox.session(python="3.11")
def codegen(session: nox.Session) -> None:
    """The generated code is fresh: the sync facade and the session decoders."""
    _install_dev(session)
    session.run("python", "scripts/gen_sync.py", "--check")
    session.run("python", "scripts/gen_decoders.py", "--check")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """The documentation site builds with --strict."""
    _install_dev(session)  # the dev extra carries the docs tools
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", ".nox/site", env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmarks against raw httpx and the official SDK (not part of `nox`)."""
    _install_dev(session)
    _ensure_redis_server(session)
    session.install("matplotlib", "uvloop")
    session.run("python", "-m", "benchmarks", *session.posargs)
