"""Find the Python examples in Markdown pages.

A page's examples are its fenced blocks whose info string starts with ``python``. A
block directly preceded by ``<!-- not-run: REASON -->`` (blank lines between are
allowed) is listed but not run; the reason is required and shows in the skip message.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import attrs

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})python[^\n]*\n(?P<code>.*?)^(?P=indent)(?P=ticks)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_NOT_RUN = re.compile(r"<!--\s*not-run:(?P<reason>[^>]*?)-->\s*\Z")
_ANY_MARKER = re.compile(r"<!--\s*not-run\b")


@attrs.frozen
class Block:
    """One fenced Python example of a page."""

    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    not_run: str | None  # the reason, when the block is marked not to run

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every Python block of ``path``, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        marker = _NOT_RUN.search(before)
        reason = None
        if marker is not None:
            reason = marker.group("reason").strip()
            if not reason:
                raise ValueError(f"{path}: a not-run marker needs a reason")
        found.append(
            Block(
                path=path,
                line=before.count("\n") + 1,
                code=textwrap.dedent(match.group("code")),
                not_run=reason,
            )
        )
    return found


def stray_markers(path: Path) -> list[int]:
    """Lines of ``not-run`` markers that do not stand right before a Python block."""
    text = path.read_text(encoding="utf-8")
    used = set()
    for match in _FENCE.finditer(text):
        marker = _NOT_RUN.search(text[: match.start()])
        if marker is not None:
            used.add(marker.start())
    return [
        text[: m.start()].count("\n") + 1
        for m in _ANY_MARKER.finditer(text)
        if m.start() not in used
    ]
