"""What the SDK tells an operator for each way a real Redis refuses it (`_redis.describe`,
shared by the fleet quota and the Redis job store), and how it asks for the eviction
policy when CONFIG is refused.

The refusals come from real redis-servers made to refuse: a replica, a server busy in a
script, one whose last save failed, one with a command disabled.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import coredis
import pytest
from coredis.exceptions import AuthenticationError, ResponseError

from clerk_sessions import _redis
from tests._redis import RedisServer

from .conftest import redis_command

pytestmark = pytest.mark.anyio

NEEDS, KEYS = "EVALSHA and reads", "clerk:*"


def _client(server: RedisServer) -> Any:
    return coredis.Redis.from_url(server.url, decode_responses=False)


async def _refusal(server: RedisServer, command: Callable[[Any], Any]) -> BaseException:
    async with _client(server) as client:
        with pytest.raises(Exception) as info:
            await command(client)
    return info.value


async def test_a_replica_is_named_and_the_primary_asked_for(
    start_redis: Callable[..., RedisServer],
) -> None:
    primary = start_redis()
    replica = start_redis("--replicaof", "127.0.0.1", str(primary.port))

    exc = await _refusal(replica, lambda c: c.set("k", "v"))

    said = _redis.describe(exc, 1, needs=NEEDS, keys=KEYS)
    assert said == "the server is a read-only replica: give the URL of the primary"
    assert not _redis.is_transient(exc)


async def test_a_disabled_command_says_which_redis_is_needed(
    start_redis: Callable[..., RedisServer],
) -> None:
    server = start_redis("--rename-command", "EVALSHA", "")

    exc = await _refusal(server, lambda c: c.evalsha("0" * 40, [], []))

    assert "does not know a command the job store needs" in _redis.describe(
        exc, 1, needs=NEEDS, keys=KEYS
    )


async def test_a_server_busy_in_a_script_is_transient(
    start_redis: Callable[..., RedisServer],
) -> None:
    server = start_redis("--busy-reply-threshold", "50")
    endless = "local n = 0 while true do n = n + 1 end"

    async def spin() -> None:
        async with _client(server) as client:
            with pytest.raises(ResponseError):  # ended by SCRIPT KILL below
                await client.eval(endless, [], [])

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(spin)
        with anyio.fail_after(10):
            while not redis_command(server.port, "GET", "k").startswith(b"-BUSY"):  # noqa: ASYNC110 - polls another process
                await anyio.sleep(0.05)
        busy = [await _refusal(server, lambda c: c.get("k"))]
        redis_command(server.port, "SCRIPT", "KILL")

    (exc,) = busy
    assert _redis.describe(exc, 1, needs=NEEDS, keys=KEYS) == (
        "the server stayed busy running another script"
    )
    assert _redis.is_transient(exc)


async def test_a_server_whose_save_failed_refuses_writes_and_says_where_to_look(
    tmp_path: Path, start_redis: Callable[..., RedisServer]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = start_redis("--save", "3600 1", "--dir", str(data))
    shutil.rmtree(data)  # the next save cannot write its file
    redis_command(server.port, "BGSAVE")
    deadline = time.monotonic() + 10
    while b"rdb_last_bgsave_status:err" not in redis_command(server.port, "INFO", "persistence"):
        assert time.monotonic() < deadline, "the save did not fail"
        await anyio.sleep(0.05)

    exc = await _refusal(server, lambda c: c.set("k", "v"))
    redis_command(server.port, "CONFIG", "SET", "save", "")  # else it stops only when killed

    assert _redis.describe(exc, 1, needs=NEEDS, keys=KEYS) == (
        "the server refuses writes because it cannot save its data to disk (see its log)"
    )


def test_a_refusal_without_a_code_is_named_by_its_class() -> None:
    said = _redis.describe(ResponseError("no code here"), 1, needs=NEEDS, keys=KEYS)

    assert said == "Redis refused the operation (ResponseError)"


class _Answers:
    """A client whose CONFIG GET and INFO answer (or raise) as told: the shapes a managed
    Redis gives that a test server cannot be made to (CONFIG renamed but INFO's
    credentials refused, a CONFIG reply without the setting)."""

    def __init__(self, config: Any, info: Any) -> None:
        self.config, self.info_reply = config, info

    async def config_get(self, names: list[str]) -> Any:
        if isinstance(self.config, BaseException):
            raise self.config
        return self.config

    async def info(self, section: str) -> Any:
        if isinstance(self.info_reply, BaseException):
            raise self.info_reply
        return self.info_reply


async def test_the_eviction_policy_is_read_from_info_when_config_does_not_tell() -> None:
    refused = _Answers(
        ResponseError("NOPERM no permissions to run 'config|get'"),
        {"maxmemory_policy": b"allkeys-lru"},
    )
    without = _Answers({b"maxmemory": b"0"}, {"maxmemory_policy": "noeviction"})
    neither = _Answers({}, {})

    assert await _redis.eviction_policy(refused) == "allkeys-lru"
    assert await _redis.eviction_policy(without) == "noeviction"
    assert await _redis.eviction_policy(neither) is None


async def test_refused_credentials_are_not_taken_for_a_refused_command() -> None:
    at_info = _Answers(ResponseError("unknown command 'CONFIG'"), AuthenticationError("WRONGPASS"))

    with pytest.raises(AuthenticationError):
        await _redis.eviction_policy(at_info)
