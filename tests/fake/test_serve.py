"""The fake on a real loopback port: uvicorn in a background thread."""

from __future__ import annotations

import socket
import ssl
import threading

import httpx2
import pytest

from clerk_sessions.testing import FakeClerk, FaultConfig


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("FakeClerk:")]


def test_serve_yields_a_v1_url_on_loopback_that_answers(fake: FakeClerk) -> None:
    session = fake.add_session()
    with fake.serve() as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        response = httpx2.get(f"{url}/sessions/{session['id']}", headers=headers)
    assert response.json() == session
    assert server_threads() == []


def test_serve_with_a_certificate_speaks_https(
    fake: FakeClerk, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import trustme

    ca = trustme.CA()
    server_pem = tmp_path_factory.mktemp("tls") / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    session = fake.add_session()
    headers = {"Authorization": f"Bearer {fake.secret_key}"}
    with fake.serve(ssl_certfile=str(server_pem)) as url:
        assert url.startswith("https://127.0.0.1:") and url.endswith("/v1")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        response = httpx2.get(f"{url}/sessions/{session['id']}", headers=headers, verify=context)
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx2.get(f"{url}/sessions/{session['id']}", headers=headers)  # not trusted
    assert response.json() == session


def test_serve_on_ipv6_loopback_yields_a_bracketed_url(fake: FakeClerk) -> None:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 on this machine")
    session = fake.add_session()
    with fake.serve(host="::1") as url:
        assert url.startswith("http://[::1]:") and url.endswith("/v1")
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        response = httpx2.get(f"{url}/sessions/{session['id']}", headers=headers)
    assert response.json() == session


def test_serve_routes_on_the_raw_path(fake: FakeClerk) -> None:
    fake.add_session(session_id="sess_a/b")
    with fake.serve() as url:
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        response = httpx2.get(f"{url}/sessions/sess_a%2Fb", headers=headers)
    assert response.json()["id"] == "sess_a/b"


def test_drop_before_closes_the_socket_without_a_response() -> None:
    fake = FakeClerk(faults=FaultConfig(drop_before_rate=1.0))
    session = fake.add_session()
    with fake.serve() as url, httpx2.Client() as client:
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            client.post(f"{url}/sessions/{session['id']}/revoke", headers=headers)
    assert fake.get_session(session["id"])["status"] == "active"


def test_drop_after_changes_state_and_closes_the_socket() -> None:
    fake = FakeClerk(faults=FaultConfig(drop_after_rate=1.0))
    session = fake.add_session()
    with fake.serve() as url, httpx2.Client() as client:
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        with pytest.raises(httpx2.RemoteProtocolError):
            client.post(f"{url}/sessions/{session['id']}/revoke", headers=headers)
    assert fake.get_session(session["id"])["status"] == "revoked"


def test_truncated_body_is_cut_short_on_the_wire() -> None:
    fake = FakeClerk(faults=FaultConfig(truncate_rate=1.0))
    session = fake.add_session()
    with fake.serve() as url, httpx2.Client() as client:
        headers = {"Authorization": f"Bearer {fake.secret_key}"}
        with pytest.raises(httpx2.RemoteProtocolError, match="complete message body"):
            client.get(f"{url}/sessions/{session['id']}", headers=headers)


@pytest.mark.anyio
async def test_serve_async_starts_and_stops(fake: FakeClerk) -> None:
    async with fake.serve_async() as url, httpx2.AsyncClient() as client:
        response = await client.get(
            f"{url}/jwks", headers={"Authorization": f"Bearer {fake.secret_key}"}
        )
    assert response.json() == fake.jwks()
    assert server_threads() == []
