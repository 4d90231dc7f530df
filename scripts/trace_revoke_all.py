"""Draw the trace of one real ``revoke_all`` as an exporter gets it (the docs' picture).

Usage: python scripts/trace_revoke_all.py [--out PATH]

A `FakeClerk` on a loopback port holds one user with six active sessions and a quota
of 4 requests per second; the client's own `RateLimit` allows 5 per second, one more
than the quota. Two workers revoke: the fifth request of the first second gets a 429,
the limiter pauses every worker for its ``Retry-After`` (the other worker's next request
waits for the limiter) and the SDK retries it. The run is real (real sockets, real
sleeps: about a second). The spans go to the OpenTelemetry SDK's in-memory exporter, and
the picture draws them as a waterfall: one bar per span, the time a request waited for
the limiter hatched, each retry a marker with its wait dashed after it. It prints one
line per span too.

The docs' how-to (docs/how-to/opentelemetry.md) shows the picture; a test runs this
script (tests/telemetry/test_picture.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "trace-revoke-all.png"
SESSIONS = 6


def traced_run() -> list[Any]:
    """Run one ``revoke_all`` with the SDK's tracer provider set; its finished spans."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from clerk_sessions import Clerk, RateLimit
    from clerk_sessions.testing import FakeClerk, Quota

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    fake = FakeClerk(quota=Quota(4, 1.0))
    user_id = fake.add_user()
    for _ in range(SESSIONS):
        fake.add_session(user_id=user_id)
    with (
        fake.serve() as url,
        Clerk(fake.secret_key, server_url=url, rate_limit=RateLimit(5, 1.0)) as clerk,
    ):
        result = clerk.sessions.revoke_all(user_id=user_id, concurrency=2)
    if len(result.revoked) != SESSIONS or result.failed:
        raise SystemExit(f"the run revoked {len(result.revoked)} of {SESSIONS} sessions")
    provider.shutdown()
    return sorted(exporter.get_finished_spans(), key=lambda span: span.start_time or 0)


def describe(span: Any) -> str:
    """One line for a span: its name and the attributes worth reading."""
    attributes = dict(span.attributes or {})
    parts = [span.name.removeprefix("clerk.sessions.")]
    if "http.response.status_code" in attributes:
        parts.append(str(attributes["http.response.status_code"]))
    if attributes.get("clerk.attempts", 1) > 1:
        parts.append(f"{attributes['clerk.attempts']} attempts")
    for event in span.events:
        retry = dict(event.attributes or {})
        parts.append(
            f"retried after {retry.get('http.response.status_code', retry['clerk.retry.cause'])}"
            f" in {retry['clerk.retry.wait_ms']:.0f} ms"
        )
    if attributes.get("clerk.rate_limit.wait_ms"):
        parts.append(f"waited {attributes['clerk.rate_limit.wait_ms']:.0f} ms")
    if "clerk.bulk.revoked" in attributes:
        parts.append(f"{attributes['clerk.bulk.revoked']} revoked")
    return ", ".join(parts)


def draw(spans: Sequence[Any], path: Path) -> None:
    """The waterfall of ``spans`` (the bulk span first) as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    start = min(span.start_time for span in spans)

    def ms(ns: int) -> float:
        return (ns - start) / 1e6

    right = max(ms(span.end_time) for span in spans)
    # A request to a local server takes a few ms: wide enough to see at this scale.
    least = right / 250
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(spans) + 2.2))
    for row, span in enumerate(spans):
        attributes = dict(span.attributes or {})
        begin, end = ms(span.start_time), ms(span.end_time)
        bulk = "clerk.bulk.revoked" in attributes
        color = "#2e86de" if bulk else ("#e67e22" if span.events else "#27ae60")
        ax.barh(row, max(end - begin, least), left=begin, height=0.6, color=color, alpha=0.85)
        wait = float(attributes.get("clerk.rate_limit.wait_ms", 0.0))
        if wait and not span.events:
            # A first attempt's wait comes before it is sent, at the start of the span.
            ax.barh(row, wait, left=begin, height=0.6, color="white", hatch="////", alpha=0.9)
        for event in span.events:
            at = ms(event.timestamp)
            waited = float(dict(event.attributes or {})["clerk.retry.wait_ms"])
            ax.plot([at], [row], marker="x", color="#c0392b", markersize=9, mew=2)
            ax.plot([at, at + waited], [row, row], color="#c0392b", linestyle="--")
        ax.text(max(end, begin + least) + right / 100, row, describe(span), va="center", fontsize=8)
    ax.set_yticks(range(len(spans)))
    ax.set_yticklabels([span.name for span in spans], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms since the revoke_all began")
    ax.set_title(
        f"One revoke_all of {SESSIONS} sessions: quota 4/s, client RateLimit(5, 1.0), "
        "concurrency 2",
        fontsize=10,
    )
    ax.set_xlim(0, right * 1.65)
    ax.legend(
        handles=[
            Patch(color="#2e86de", label="bulk operation (parent)"),
            Patch(color="#27ae60", label="request, one attempt"),
            Patch(color="#e67e22", label="request retried after a 429"),
            Patch(
                facecolor="white", edgecolor="grey", hatch="////", label="waited for the limiter"
            ),
            plt.Line2D(
                [], [], color="#c0392b", marker="x", linestyle="--", label="retry event, its wait"
            ),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=3,
        fontsize=8,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write ({OUT})")
    args = parser.parse_args(argv)
    spans = traced_run()
    draw(spans, args.out)
    for span in spans:
        print(describe(span))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
