"""The test Redis behaves as the fleet tests assume: real, killable, restartable."""

from __future__ import annotations

import socket

from tests._redis import RedisServer


def _command(port: int, line: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(line)
        return sock.recv(256)


def test_the_fixture_server_answers_and_starts_empty(
    redis_url: str, redis_server: RedisServer
) -> None:
    assert redis_url == redis_server.url
    assert _command(redis_server.port, b"DBSIZE\r\n") == b":0\r\n"
    assert _command(redis_server.port, b"INFO server\r\n").find(b"redis_version:") > 0


def test_a_killed_server_comes_back_on_the_same_port_with_empty_memory(
    own_redis_server: RedisServer,
) -> None:
    port = own_redis_server.port
    assert _command(port, b"SET k v\r\n") == b"+OK\r\n"
    own_redis_server.kill()
    try:
        _command(port, b"PING\r\n")
    except OSError:
        pass
    else:
        raise AssertionError("a killed server still answered")
    own_redis_server.restart()
    assert own_redis_server.port == port
    assert _command(port, b"EXISTS k\r\n") == b":0\r\n"


def test_a_frozen_server_accepts_nothing_until_thawed(own_redis_server: RedisServer) -> None:
    own_redis_server.freeze()
    with socket.create_connection(("127.0.0.1", own_redis_server.port), timeout=5) as sock:
        sock.settimeout(0.3)
        sock.sendall(b"PING\r\n")
        try:
            sock.recv(16)
        except TimeoutError:
            pass
        else:
            raise AssertionError("a frozen server answered")
        own_redis_server.thaw()
        sock.settimeout(5)
        assert sock.recv(16) == b"+PONG\r\n"
