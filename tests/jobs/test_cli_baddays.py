"""``clerk-sessions job ...`` on a bad day, as processes against real redis-servers and a
fake Clerk on a real port: an evicting server, ACL users refused CONFIG, INFO or
EVALSHA, a password in the store URL, a job whose data vanished, a full server, a store
file deleted under a running worker.

Each failure is exit 3 and one line of the SDK's own (never Redis's or SQLite's text,
never the password); a job whose data vanished says how many items are unaccounted for.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import coredis
import pytest

from clerk_sessions.jobs._redis_scripts import Keys
from clerk_sessions.testing import FakeClerk, FaultConfig
from tests._redis import RedisServer
from tests.cli.conftest import Served

StartRedis = Callable[..., RedisServer]
RAW = ("NOPERM", "WRONGPASS", "OOM command", "No such key", "script:", "Traceback")


@pytest.fixture
def served() -> Iterator[Served]:
    fake = FakeClerk()
    with fake.serve() as url:
        yield Served(fake, url)


@pytest.fixture
def id_file(served: Served, tmp_path: Path) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(served.fake.add_session()["id"] for _ in range(25)) + "\n")
    return path


def one_line(result: subprocess.CompletedProcess[str], *secrets: str) -> str:
    """The single line a failed command printed, checked for what must never be in it."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in (*RAW, *secrets):
        assert text not in result.stderr + result.stdout, result.stderr
    return lines[0]


def admin(url: str, *command: str) -> None:
    async def run() -> None:
        async with coredis.Redis.from_url(url) as client:
            if command[0] == "ACL SETUSER":
                await client.acl_setuser(command[1], *command[2:])
            elif command[0] == "CONFIG SET":
                await client.config_set({command[1]: command[2]})
            elif command[0] == "DEL":
                await client.delete([command[1]])

    anyio.run(run)


def test_an_evicting_redis_is_exit_3_naming_the_setting_unless_the_url_allows_it(
    served: Served, start_redis: StartRedis, id_file: Path
) -> None:
    server = start_redis("--maxmemory-policy", "allkeys-lru")
    create = ("job", "create", "j", "--session-ids", str(id_file), "--store")
    refused = served.run(*create, server.url)
    assert refused.returncode == 3
    line = one_line(refused)
    assert "maxmemory-policy is allkeys-lru" in line
    assert "CONFIG SET maxmemory-policy noeviction" in line
    allowed_url = f"{server.url}?allow_eviction=true"
    created = served.run(*create, allowed_url)
    assert created.returncode == 0, created.stderr
    assert created.stderr.count("maxmemory-policy is allkeys-lru") == 1  # the one warning
    worked = served.run("job", "work", "j", "--store", allowed_url)
    assert worked.returncode == 0, worked.stderr
    assert "25 revoked, 0 failed, 0 pending" in worked.stderr


def test_acl_users_refused_config_work_through_info_and_refused_scripts_are_exit_3(
    served: Served, start_redis: StartRedis, id_file: Path
) -> None:
    server = start_redis()
    everything = ("on", ">pw", "~*", "&*", "+@all")
    admin(server.url, "ACL SETUSER", "noconfig", *everything, "-config")
    admin(server.url, "ACL SETUSER", "noscripts", *everything, "-evalsha")
    admin(server.url, "ACL SETUSER", "nodanger", *everything, "-@dangerous")
    url = f"redis://{{}}:pw@127.0.0.1:{server.port}/0"
    create = ("job", "create", "j", "--session-ids", str(id_file), "--store")
    assert served.run(*create, url.format("noconfig")).returncode == 0
    worked = served.run("job", "work", "j", "--store", url.format("noconfig"))
    assert worked.returncode == 0, worked.stderr
    no_scripts = served.run(*create, url.format("noscripts"))
    assert no_scripts.returncode == 3
    assert "does not let this user run EVALSHA" in one_line(no_scripts, ":pw@")
    no_policy = served.run("job", "status", "j", "--store", url.format("nodanger"))
    assert no_policy.returncode == 3
    assert "cannot tell whether the server evicts keys" in one_line(no_policy, ":pw@")


def test_a_store_url_with_a_password_is_never_printed(
    served: Served, start_redis: StartRedis, id_file: Path
) -> None:
    password = "cli-s3cret"
    server = start_redis("--requirepass", password)
    url = f"redis://:{password}@127.0.0.1:{server.port}/0"
    commands = [
        ("create", "j", "--session-ids", str(id_file)),
        ("work", "j"),
        ("status", "j"),
        ("failed", "j"),
    ]
    for command in commands:
        result = served.run("job", *command, "--store", url)
        assert result.returncode == 0, result.stderr
        assert password not in result.stdout + result.stderr
    wrong = served.run("job", "status", "j", "--store", url.replace(password, "nope"))
    assert wrong.returncode == 3
    assert "refused the credentials of the store URL" in one_line(wrong, password, "nope")
    env_store = subprocess.run(
        [sys.executable, "-m", "clerk_sessions.cli", "job", "status", "j"],
        env={**served.env, "CLERK_SESSIONS_JOB_STORE": url},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert env_store.returncode == 0, env_store.stderr
    assert password not in env_store.stdout + env_store.stderr


def test_a_job_whose_chunks_vanished_is_exit_3_counting_what_is_unaccounted_for(
    served: Served, redis_url: str, id_file: Path
) -> None:
    created = served.run("job", "create", "j", "--store", redis_url, "--session-ids", str(id_file))
    assert created.returncode == 0, created.stderr
    admin(redis_url, "DEL", Keys("j").chunks)  # what an eviction does
    for command in ("status", "work", "failed"):
        result = served.run("job", command, "j", "--store", redis_url)
        assert result.returncode == 3, result.stderr
        line = one_line(result)
        assert "the data of job 'j' was lost in the store" in line
        assert "25 of its 25 items are unaccounted for" in line
    assert served.fake.requests == []


def test_a_full_redis_stops_the_worker_with_exit_3_and_the_next_one_finishes(
    served: Served, start_redis: StartRedis, id_file: Path
) -> None:
    server = start_redis()
    created = served.run("job", "create", "j", "--store", server.url, "--session-ids", str(id_file))
    assert created.returncode == 0, created.stderr
    admin(server.url, "CONFIG SET", "maxmemory", "1")
    full = served.run("job", "work", "j", "--store", server.url)
    assert full.returncode == 3
    assert "the server is out of memory" in one_line(full)
    admin(server.url, "CONFIG SET", "maxmemory", "0")
    worked = served.run("job", "work", "j", "--store", server.url)
    assert worked.returncode == 0, worked.stderr
    assert "25 revoked, 0 failed, 0 pending" in worked.stderr


def test_a_store_file_deleted_under_a_running_worker_stops_it_with_exit_3(
    tmp_path: Path,
) -> None:
    fake = FakeClerk(faults=FaultConfig(latency_s=(0.05, 0.05)), validate_responses=False)
    ids = [fake.add_session()["id"] for _ in range(200)]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    path = tmp_path / "jobs.db"
    with fake.serve() as url:
        served = Served(fake, url)
        create = ("job", "create", "j", "--store", str(path), "--session-ids")
        assert served.run(*create, str(tmp_path / "ids.txt")).returncode == 0
        worker = subprocess.Popen(
            [sys.executable, "-m", "clerk_sessions.cli", "job", "work", "j", "--store", str(path)],
            env=served.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while sum(r.raw_path.endswith("/revoke") for r in fake.requests) < 20:
                assert time.monotonic() < deadline, "the worker did not start revoking"
                time.sleep(0.01)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            out, err = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert worker.returncode == 3, err
    line = one_line(subprocess.CompletedProcess([], 3, out, err))
    assert "the data of job 'j' was lost in the store: 200 of its 200 items" in line
    assert "the file was deleted while in use" in line
    assert not path.exists()
