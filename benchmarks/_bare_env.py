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
``editable``), and the ``.pth`` is left out.

The interpreters of these environments are meant for a fresh ``python -c SCRIPT`` each
(`benchmarks._common.fresh_processes`), started in an empty working directory and
without ``PYTHONPATH``, so neither the checkout nor the caller's path leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import Distribution, distributions
from pathlib import Path

__all__ = ["BareEnv", "build", "dependency_closure", "find_specs"]


@dataclass(frozen=True)
class BareEnv:
    """A built environment: its interpreter and the distributions it holds."""

    root: Path
    python: Path
    site_packages: Path
    distributions: tuple[str, ...]  # "name version", sorted by name
    files: int  # symlinks made (files, and the editable packages' directories)

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


def dependency_closure(package: str) -> list[Distribution]:
    """``package`` and every distribution it needs at run time, recursively.

    Markers are evaluated for the running interpreter; ``package`` itself gets no extras,
    and an extra one dependency asks of another (``pyjwt[crypto]``) is followed. Raises
    `LookupError` when a needed distribution is not installed here.
    """
    from packaging.requirements import Requirement

    installed = _installed()
    wanted: dict[str, set[str]] = {}  # canonical name -> extras whose requirements were read
    todo: list[tuple[str, frozenset[str]]] = [(_canonical(package), frozenset())]
    while todo:
        name, extras = todo.pop()
        seen = wanted.get(name)
        if seen is not None and extras <= seen:
            continue
        dist = installed.get(name)
        if dist is None:
            raise LookupError(f"{name} (needed by {package}) is not installed here")
        wanted.setdefault(name, set()).update(extras)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(
                req.marker.evaluate({"extra": extra}) for extra in ("", *extras)
            ):
                continue
            todo.append((_canonical(req.name), frozenset(_canonical(e) for e in req.extras)))
    return [installed[name] for name in sorted(wanted)]


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
        target = site / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.resolve())
        count += 1
    return count


def build(
    root: Path, package: str, *, editable: Mapping[str, Sequence[Path]] | None = None
) -> BareEnv:
    """Create at ``root`` a virtual environment holding only ``package``'s closure.

    ``editable`` names, per distribution installed in editable mode, the package
    directories (or modules) to link into ``site-packages`` in place of its ``.pth``.
    """
    editable = {_canonical(k): v for k, v in (editable or {}).items()}
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt", clear=True).create(root)
    site = _site_packages(root)
    closure = dependency_closure(package)
    files = 0
    for dist in closure:
        name = _canonical(dist.metadata["Name"])
        is_editable = _is_editable(dist)
        files += _link_recorded_files(dist, site, skip_pth=is_editable)
        if not is_editable:
            continue
        if name not in editable:
            raise LookupError(f"{name} is installed in editable mode: name its packages")
        for path in editable[name]:
            (site / path.name).symlink_to(path.resolve(), target_is_directory=path.is_dir())
            files += 1
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    return BareEnv(
        root=root,
        python=python,
        site_packages=site,
        distributions=tuple(f"{d.metadata['Name']} {d.version}" for d in closure),
        files=files,
    )


_FIND = """
import importlib.util, json, sys
for module in sys.argv[1].split(","):
    if module:
        __import__(module)
print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[2].split(",")}))
"""


def find_specs(
    env: BareEnv, imports: Iterable[str], probes: Iterable[str], *, cwd: Path
) -> dict[str, bool]:
    """In a fresh interpreter of ``env``: import ``imports`` (failing loudly when one
    does not import), then report which of ``probes`` could be imported."""
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(env.python), "-c", _FIND, ",".join(imports), ",".join(probes)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"in the bare environment of {env.root}: {done.stderr.strip()}")
    result: dict[str, bool] = json.loads(done.stdout)
    return result
