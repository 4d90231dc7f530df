"""Decoding a 500-session list body into models, without the network.

- ours: ``_serde.decode_session_page`` (``json.loads`` + the fast converter: the
  same function the ``list`` operations call on each response body);
- raw: ``json.loads`` alone, the floor: plain dicts, no types, no validation;
- official: what ``clerk_backend_api`` does with a list body (``http_res.text``, then
  its ``unmarshal_json`` into ``List[models.Session]``: pydantic validation).

A fourth number goes into ``extra``: cattrs with default settings (a plain
``cattrs.Converter()`` structuring the same dicts), the reference the issue quotes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cattrs

from benchmarks._common import LIST_SIZE, interleave, list_body, row
from clerk_sessions import _serde
from clerk_sessions.models import Session

__all__ = ["run"]


def run(quick: bool, server: object = None) -> list[dict[str, Any]]:
    """One row: decode ``LIST_SIZE`` (quick: 50) sessions; ``server`` is not used."""
    size = 50 if quick else LIST_SIZE
    rounds, inner = (3, 2) if quick else (60, 5)
    body = list_body(size)
    plain = cattrs.Converter()
    structure_plain = plain.get_structure_hook(list[Session])

    contenders: dict[str, Callable[[], Any]] = {
        "ours": lambda: _serde.decode_session_page(body),
        "raw_httpx": lambda: json.loads(body),
        "cattrs_default": lambda: structure_plain(json.loads(body), list[Session]),
    }
    official_note = ""
    try:
        from clerk_backend_api import models as official_models
        from clerk_backend_api.utils.serializers import unmarshal_json

        target = list[official_models.Session]
        contenders["official"] = lambda: unmarshal_json(body.decode(), target)
    except ImportError:
        official_note = "official column skipped: clerk_backend_api not importable"
    # Warm-up, and a check that each contender decodes every session.
    for name, fn in contenders.items():
        result = fn()
        assert len(result.data if name == "ours" else result) == size, name
    times = interleave(contenders, rounds, inner=inner)
    return [
        row(
            f"decode {size} sessions (no network)",
            times["ours"] * 1e3,
            times["raw_httpx"] * 1e3,
            times.get("official", 0) * 1e3 or None,
            "ms",
            target="raw <= 1.8",
            notes=(
                "raw = json.loads alone. cattrs with default settings: "
                f"{times['cattrs_default'] / times['raw_httpx']:.2f}x json.loads. {official_note}"
            ).strip(),
            cattrs_default_ms=times["cattrs_default"] * 1e3,
            cattrs_default_ratio_vs_raw=times["cattrs_default"] / times["raw_httpx"],
        )
    ]
