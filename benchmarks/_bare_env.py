"""Bare environments: what ``pip install <package>`` alone would give, built offline.

Why: the benchmarks run in the development environment (the ``dev`` extra), which holds
trio, pytest, click, rich, orjson and much more. Some of that changes what an import
costs: httpcore imports trio whenever it is installed, httpx imports its command line's
click and rich when they are, and our ``fast`` extra (orjson) is picked up when present.
A deployed function or a CLI installed on its own has none of it. A cold start measured
only in the dev environment therefore charges every contender for packages a user would
not have, and not alike (the larger the import graph that reaches them, the more).

How: `build` makes a virtual environment without pip (``venv``, no network, a few
milliseconds) and symlinks into its ``site-packages`` exactly the files that the
installer recorded (``RECORD``) for each distribution of the package's dependency
closure, taken from the distributions installed in the running interpreter. The closure
follows ``Requires-Dist`` recursively with the markers evaluated for this interpreter and
no extras for the package itself (extras a dependency asks of another, ``pyjwt[crypto]``,
are followed, as pip would). Files outside ``site-packages`` (console scripts) are left
out; nothing else is copied, so nothing installed in the dev environment leaks in.

A distribution installed in editable mode (ours, in the dev environment) has no package
files in its ``RECORD``, only a ``.pth`` that puts the whole checkout on ``sys.path``;
for it the caller names the package directories to link instead (`build`'s
``editable``), file by file like the others, and the ``.pth`` is left out. A checkout of
another commit (the SDK before a change, `benchmarks.compare_cold`) is not installed
here at all: its own ``pyproject.toml`` says what it needs (`declared_requirements`,
passed as `build`'s ``requires``), and those requirements are resolved against the
distributions installed here like any others, versions checked.

Then the environment's interpreter compiles every module of its ``site-packages`` to
bytecode (``compileall``, timestamp-checked ``.pyc`` files in ``__pycache__`` beside
the links), as ``pip install`` does by default: a cold start measured there reads
compiled bytecode, for every contender alike, and `probe` checks that each module a
script imports was read from it.

The interpreters of these environments are meant for a fresh ``python -c SCRIPT`` each
(`benchmarks._common.fresh_processes`), started in an empty working directory with the
variables of `environ`, so neither the checkout, the caller's path nor a bytecode cache
elsewhere leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
import venv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import Distribution, distributions
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement

__all__ = [
    "BareEnv",
    "Probe",
    "build",
    "declared_requirements",
    "dependency_closure",
    "environ",
    "probe",
]

#: Variables that would make an interpreter look elsewhere for modules or bytecode.
_NOT_FOR_BARE = ("PYTHONPATH", "PYTHONHOME", "PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")


def environ() -> dict[str, str]:
    """The environment variables for an interpreter of a bare environment: this
    process's, without those that would point it at other modules or other bytecode."""
    return {k: v for k, v in os.environ.items() if k not in _NOT_FOR_BARE}


@dataclass(frozen=True)
class BareEnv:
    """A built environment: its interpreter and the distributions it holds."""

    root: Path
    python: Path
    site_packages: Path
    distributions: tuple[str, ...]  # "name version", sorted by name
    files: int  # files linked

    @property
    def names(self) -> list[str]:
        """The distributions' names, without versions."""
        return [entry.split(" ", 1)[0] for entry in self.distributions]


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _installed() -> dict[str, Distribution]:
    found: dict[str, Distribution] = {}
    for dist in distributions():  # sys.path order: the first of a name is the one imported
        name = dist.metadata["Name"]
        if name:
            found.setdefault(_canonical(name), dist)
    return found


def declared_requirements(checkout: Path) -> list[str]:
    """The run-time requirements that ``checkout``'s ``pyproject.toml`` declares
    (``[project] dependencies``; no extras)."""
    path = checkout / "pyproject.toml"
    try:
        project = tomllib.loads(path.read_text())["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise LookupError(f"cannot read the [project] table of {path}: {exc!r}") from exc
    return [str(req) for req in project.get("dependencies", [])]


def dependency_closure(package: str, requires: Sequence[str] | None = None) -> list[Distribution]:
    """``package`` and every distribution it needs at run time, recursively.

    Markers are evaluated for the running interpreter; ``package`` itself gets no extras,
    and an extra one dependency asks of another (``pyjwt[crypto]``) is followed.
    ``requires``, when given, are ``package``'s own requirements, in place of those of a
    distribution installed here (a checkout of another commit, `declared_requirements`):
    ``package`` is then neither looked up nor returned. Raises `LookupError` when a needed
    distribution is not installed here, or not in a version its requirement allows.
    """
    from packaging.requirements import Requirement

    installed = _installed()
    wanted: dict[str, set[str]] = {}  # canonical name -> extras whose requirements were read
    if requires is None:
        todo = [Requirement(package)]
    else:
        todo = [req for req in map(Requirement, requires) if _applies(req, frozenset())]
    while todo:
        req = todo.pop()
        name, extras = _canonical(req.name), frozenset(_canonical(e) for e in req.extras)
        dist = installed.get(name)
        if dist is None:
            raise LookupError(f"{name} (needed by {package}) is not installed here")
        if not req.specifier.contains(dist.version, prereleases=True):
            raise LookupError(
                f"{req} (needed by {package}): {name} {dist.version} is installed here"
            )
        seen = wanted.get(name)
        if seen is not None and extras <= seen:
            continue
        wanted.setdefault(name, set()).update(extras)
        todo += [r for r in map(Requirement, dist.requires or []) if _applies(r, extras)]
    return [installed[name] for name in sorted(wanted)]


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    """Whether ``req`` holds here for a distribution asked for with ``extras``."""
    marker = req.marker
    return marker is None or any(marker.evaluate({"extra": e}) for e in ("", *extras))


def _site_packages(root: Path) -> Path:
    found = sorted(root.glob("lib/python*/site-packages")) or sorted(root.glob("Lib/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages in the new environment {root}")
    return found[0]


def _is_editable(dist: Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    return bool(json.loads(text).get("dir_info", {}).get("editable"))


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source.resolve())


def _link_recorded_files(dist: Distribution, site: Path, *, skip_pth: bool) -> int:
    base = Path(str(dist.locate_file(""))).resolve()
    count = 0
    for item in dist.files or []:
        source = Path(str(dist.locate_file(item)))
        relative = os.path.relpath(os.path.normpath(base / item), base)
        parts = Path(relative).parts
        if parts[0] == os.pardir or "__pycache__" in parts:
            continue  # a console script (bin/), or bytecode the installer wrote
        if skip_pth and relative.endswith(".pth"):
            continue
        if not source.exists():
            continue  # recorded but removed since (RECORD lists RECORD itself, always there)
        _link(source, site / relative)
        count += 1
    return count


def _link_tree(path: Path, site: Path) -> int:
    """Link a package directory (or a module) of a source tree into ``site``, file by
    file: the directories are the environment's own, so bytecode compiled there stays
    there (a linked directory would take it into the source tree)."""
    if path.is_file():
        _link(path, site / path.name)
        return 1
    count = 0
    for source in sorted(path.rglob("*")):
        relative = source.relative_to(path.parent)
        if source.is_file() and "__pycache__" not in relative.parts:
            _link(source, site / relative)
            count += 1
    return count


def _compile(python: Path, site: Path) -> None:
    """Compile every module under ``site`` with the environment's interpreter, as pip
    does after an install (its failures, a file that is not Python, ignored as pip
    ignores them: `probe` reports any module imported without bytecode)."""
    subprocess.run(
        [
            *(os.fspath(python), "-m", "compileall", "-q", "-j", "0"),
            *("--invalidation-mode", "timestamp", os.fspath(site)),
        ],
        env=environ(),
        stdout=subprocess.DEVNULL,
        check=False,
    )


def build(
    root: Path,
    package: str,
    *,
    editable: Mapping[str, Sequence[Path]] | None = None,
    requires: Sequence[str] | None = None,
) -> BareEnv:
    """Create at ``root`` a virtual environment holding only ``package``'s closure, its
    bytecode compiled.

    ``editable`` names, per distribution installed in editable mode, the package
    directories (or modules) to link into ``site-packages`` in place of its ``.pth``.
    ``requires`` are ``package``'s requirements when it is a source tree of another
    commit rather than a distribution installed here (`declared_requirements`); its
    package directories must then be named in ``editable``.
    """
    editable = {_canonical(k): v for k, v in (editable or {}).items()}
    if requires is not None and _canonical(package) not in editable:
        raise LookupError(f"{package} is given by its requirements: name its packages")
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(root)
    site = _site_packages(root)
    closure = dependency_closure(package, requires)
    files = 0
    listed = [f"{d.metadata['Name']} {d.version}" for d in closure]
    if requires is not None:
        listed = sorted([*listed, f"{package} (source tree)"], key=str.lower)
        for path in editable[_canonical(package)]:
            files += _link_tree(path, site)
    for dist in closure:
        name = _canonical(dist.metadata["Name"])
        is_editable = _is_editable(dist)
        files += _link_recorded_files(dist, site, skip_pth=is_editable)
        if not is_editable:
            continue
        if name not in editable:
            raise LookupError(f"{name} is installed in editable mode: name its packages")
        for path in editable[name]:
            files += _link_tree(path, site)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _compile(python, site)
    return BareEnv(
        root=root,
        python=python,
        site_packages=site,
        distributions=tuple(listed),
        files=files,
    )


@dataclass(frozen=True)
class Probe:
    """What a script did in a fresh interpreter of a bare environment."""

    #: Per probed module name: whether it could be imported there.
    importable: dict[str, bool]
    #: How many modules the script imported from Python source files.
    from_source: int
    #: The source files of those without compiled bytecode that the import system would
    #: use (a ``.pyc`` missing, or stale: its header does not match the source).
    uncompiled: list[str]


_PROBE = """
import importlib.util, json, os, sys
exec(compile(sys.argv[1], "<script>", "exec"), {"__name__": "__main__"})

def compiled(spec):
    # The checks the import system makes before it uses a .pyc (PEP 552's header).
    try:
        with open(spec.cached, "rb") as f:
            head = f.read(16)
        with open(spec.origin, "rb") as f:
            stat, source = os.fstat(f.fileno()), f.read()
    except (OSError, TypeError):
        return False
    flags = int.from_bytes(head[4:8], "little")
    if head[:4] != importlib.util.MAGIC_NUMBER:
        return False
    if flags == 0:
        mtime, size = int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF
        return head[8:16] == mtime.to_bytes(4, "little") + size.to_bytes(4, "little")
    return not flags & 2 or head[8:16] == importlib.util.source_hash(source)

specs = [m.__spec__ for m in list(sys.modules.values()) if getattr(m, "__spec__", None)]
sources = [s for s in specs if s.has_location and (s.origin or "").endswith(".py")]
print(json.dumps({
    "importable": {m: importlib.util.find_spec(m) is not None for m in sys.argv[2].split(",") if m},
    "from_source": len(sources),
    "uncompiled": sorted(s.origin for s in sources if not compiled(s)),
}))
"""


def probe(env: BareEnv, script: str, probes: Iterable[str], *, cwd: Path) -> Probe:
    """Run ``script`` in a fresh interpreter of ``env`` (failing loudly when it fails),
    writing no bytecode; then report which of ``probes`` could be imported there, and
    which modules the script imported without compiled bytecode."""
    environ_ = {**environ(), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [os.fspath(env.python), "-c", _PROBE, script, ",".join(probes)],
        cwd=cwd,
        env=environ_,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"in the bare environment of {env.root}: {done.stderr.strip()}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return Probe(
        importable=found["importable"],
        from_source=found["from_source"],
        uncompiled=found["uncompiled"],
    )
