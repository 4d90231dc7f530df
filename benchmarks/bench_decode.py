"""Decoding a 500-session list body into models, without the network.

- ours: ``_decode.decode_session_page`` (the function the ``list`` operations call on
  each response body), twice: as installed here, parsing with orjson when the ``fast``
  extra is installed, and with the standard library's `json` only, as without the extra;
- raw: ``json.loads`` alone, the floor: plain dicts, no types, no validation (no HTTP
  client is involved, so the row has no raw httpx column);
- official: what ``clerk_backend_api`` does with a list body (``http_res.text``, then
  its ``unmarshal_json`` into ``List[models.Session]``: pydantic validation).

Two more numbers go into ``extra``: ``orjson.loads`` alone, and cattrs with default
settings (a plain ``cattrs.Converter()`` structuring the same dicts), the reference
the first decoding issue quoted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import cattrs

from benchmarks._common import LIST_SIZE, interleave, list_body, row
from clerk_sessions._codec import decode as _decode
from clerk_sessions.models import Session, SessionPage

__all__ = ["run"]


def _stdlib_only(body: bytes) -> SessionPage:
    """``decode_session_page`` as it runs without orjson installed."""
    fast_loads, _decode._fast_loads = _decode._fast_loads, None
    try:
        return _decode.decode_session_page(body)
    finally:
        _decode._fast_loads = fast_loads


def run(quick: bool, server: object = None) -> list[dict[str, Any]]:
    """Rows for decoding ``LIST_SIZE`` (quick: 50) sessions; ``server`` is not used."""
    size = 50 if quick else LIST_SIZE
    rounds, inner = (3, 2) if quick else (60, 5)
    body = list_body(size)
    plain = cattrs.Converter()
    structure_plain = plain.get_structure_hook(list[Session])

    contenders: dict[str, Callable[[], Any]] = {
        "ours_json": lambda: _stdlib_only(body),
        "raw": lambda: json.loads(body),
        "cattrs_default": lambda: structure_plain(json.loads(body), list[Session]),
    }
    fast_loads = _decode._fast_loads
    if fast_loads is not None:
        contenders["ours_orjson"] = lambda: _decode.decode_session_page(body)
        contenders["orjson"] = lambda: fast_loads(body)
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
        assert len(result.data if name.startswith("ours") else result) == size, name
    times = interleave(contenders, rounds, inner=inner)
    ms = {name: value * 1e3 for name, value in times.items()}
    json_ms = ms["raw"]
    extra: dict[str, Any] = {
        "cattrs_default_ms": ms["cattrs_default"],
        "cattrs_default_ratio_vs_raw": ms["cattrs_default"] / json_ms,
    }
    cattrs_note = f"cattrs with default settings: {ms['cattrs_default'] / json_ms:.2f}x json.loads."
    rows = []
    if "ours_orjson" in ms:
        rows.append(
            row(
                f"decode {size} sessions, orjson (fast extra)",
                ms["ours_orjson"],
                json_ms,
                ms.get("official"),
                "ms",
                floor="json.loads",
                target="raw <= 1.3",
                notes=(
                    f"raw = json.loads alone; orjson.loads alone: "
                    f"{ms['orjson'] / json_ms:.2f}x json.loads. {official_note}"
                ).strip(),
                orjson_ms=ms["orjson"],
                **extra,
            )
        )
    rows.append(
        row(
            f"decode {size} sessions, json only",
            ms["ours_json"],
            json_ms,
            ms.get("official"),
            "ms",
            floor="json.loads",
            notes=(
                "as without the fast extra; raw = json.loads alone. "
                + ("" if "ours_orjson" in ms else "orjson is not installed here. ")
                + f"{cattrs_note} {official_note}"
            ).strip(),
            **extra,
        )
    )
    return rows
