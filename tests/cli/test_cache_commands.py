"""The cache commands of `python -m app.cli`, in-process (typer's CliRunner) over a real Redis.

One smoke test runs the real command in a subprocess against a real server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from app.cache.connection import redis_target
from app.cache.entry import CacheEntry, utc_now_iso
from app.cache.journal import Journal, JournalRecord
from app.cache.keys import key_for
from app.cli import cli
from app.core.config import Settings, get_settings
from tests.support.app_server import run_app_server
from tests.support.redis_server import RedisServer, free_port

REPO = Path(__file__).resolve().parents[2]
ENTRY = {"video_url": "/videos/k.mp4", "created_at": "2026-01-01T00:00:00+00:00",
         "permanent": True}


def settings_for(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    return Settings(_env_file=None, redis_url=redis_url, data_dir=tmp_path / "data",
                    **overrides)


def invoke(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), obj=settings, input=stdin)


def journal_write(settings: Settings, black: str, target: str | None = None) -> Path:
    """A write journaled during an outage, meant for `target` (this settings' Redis)."""
    target = target or redis_target(settings)
    journal = Journal(settings.journal_path, target=target)
    entry = CacheEntry.new("/videos/journaled.mp4", True)
    journal.append(JournalRecord(key_for(black, ["w"]), entry, None, utc_now_iso(), target))
    return settings.journal_path


def test_stats_get_and_purge(redis_server: RedisServer, redis_url: str, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, redis_url)
    client = redis_server.client()
    client.set(key_for("keep", ["me"]), json.dumps(ENTRY))
    client.set(key_for("drop", ["me"]), json.dumps({**ENTRY, "permanent": False}), ex=3600)

    stats = invoke(settings, "stats", "--json")
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["total_entries"] == 2

    found = invoke(settings, "get", "keep", "me")
    assert found.exit_code == 0 and "/videos/k.mp4" in found.stdout
    missing = invoke(settings, "get", "nothing", "here")
    assert missing.exit_code == 1 and "not cached" in missing.stdout

    refused = invoke(settings, "purge", "--temporary", stdin="n\n")
    assert refused.exit_code == 1
    assert client.exists(key_for("drop", ["me"])) == 1
    purged = invoke(settings, "purge", "--temporary", "--yes")
    assert purged.exit_code == 0 and "deleted 1 entries" in purged.stdout
    assert client.exists(key_for("drop", ["me"])) == 0
    assert client.exists(key_for("keep", ["me"])) == 1

    one = invoke(settings, "purge", "keep", "me")
    assert one.exit_code == 0 and "deleted" in one.stdout
    assert client.exists(key_for("keep", ["me"])) == 0
    assert invoke(settings, "purge").exit_code == 2


def test_read_only_commands_never_replay_or_write(redis_server: RedisServer, redis_url: str,
                                                   tmp_path: Path) -> None:
    settings = settings_for(tmp_path, redis_url)
    journal = journal_write(settings, "journaled")
    for args in (("stats",), ("get", "journaled", "w"), ("doctor",)):
        invoke(settings, *args)
        assert redis_server.client().keys("*") == [], args
    assert journal.exists()
    assert "1 writes waiting for replay" in invoke(settings, "doctor").stdout
    # A command that writes replays it, into the Redis it was meant for.
    assert invoke(settings, "purge", "other", "w").exit_code == 0
    assert redis_server.client().exists(key_for("journaled", ["w"])) == 1
    assert not journal.exists()


def test_a_journal_for_another_redis_is_set_aside(redis_server: RedisServer, redis_url: str,
                                                   own_redis: RedisServer, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    here = settings_for(tmp_path, redis_url)
    there = settings_for(tmp_path, own_redis.url)  # the same DATA_DIR, another Redis
    journal_write(here, "meant for there", target=redis_target(there))
    assert invoke(here, "purge", "other", "w").exit_code == 0  # connects: claims the journal
    assert redis_server.client().keys("*") == []
    assert "meant for another Redis" in caplog.text
    doctor = invoke(here, "doctor")
    assert "1 files set aside for another Redis" in doctor.stdout
    # The Redis it was meant for gets it.
    assert invoke(there, "purge", "other", "w").exit_code == 0
    assert own_redis.client().exists(key_for("meant for there", ["w"])) == 1
    assert not list(here.data_dir.glob("cache-journal.jsonl.aside.*"))


def test_unreachable_redis_is_reported_by_every_command(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"redis://:pa55word@127.0.0.1:{free_port()}")
    for args, code in ((("stats",), 1), (("get", "a", "b"), 1), (("doctor",), 1),
                       (("purge", "--all", "--yes"), 1), (("purge", "a", "b"), 1)):
        result = invoke(settings, *args)
        assert result.exit_code == code, (args, result.output)
        assert "unreachable" in result.output, args
        assert "pa55word" not in result.output
    # Nothing went to the journal behind the operator's back.
    assert not settings.journal_path.exists()


def test_doctor_flags_an_evicting_policy(redis_server: RedisServer, redis_url: str,
                                         tmp_path: Path) -> None:
    settings = settings_for(tmp_path, redis_url)
    client = redis_server.client()
    client.config_set("maxmemory-policy", "volatile-lru")
    healthy = invoke(settings, "doctor")
    assert healthy.exit_code == 0, healthy.output
    assert "maxmemory-policy volatile-lru" in healthy.stdout
    assert "client tracking available" in healthy.stdout
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        risky = invoke(settings, "doctor")
        assert risky.exit_code == 1
        assert "allkeys-lru can evict permanent winners" in risky.stdout
    finally:
        client.config_set("maxmemory-policy", "noeviction")


def test_doctor_reports_a_password_the_server_ignores(redis_server: RedisServer, redis_url: str,
                                                      tmp_path: Path) -> None:
    settings = settings_for(tmp_path, redis_url.replace("redis://", "redis://:s3cret@"))
    result = invoke(settings, "doctor")
    assert result.exit_code == 1
    assert "accepts connections without one" in result.stdout
    assert "s3cret" not in result.output


def test_doctor_reports_unavailable_client_tracking(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "acl-redis", password="adminpw")
    server.start()
    try:
        server.client().acl_setuser("app", enabled=True, passwords=["+apppw"], keys=["*"],
                                    commands=["+@all", "-client"])
        settings = settings_for(tmp_path, f"redis://app:apppw@127.0.0.1:{server.port}")
        result = invoke(settings, "doctor")
        assert result.exit_code == 1, result.output
        assert "client tracking unavailable" in result.stdout
        assert "the server requires the password" in result.stdout
        assert "apppw" not in result.output
    finally:
        server.stop()


def test_a_malformed_redis_url_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:notaport")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["stats"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert result.output.count("\n") == 1, result.output
    assert "REDIS_URL is malformed" in result.output
    assert "hunter2" not in result.output


def test_stats_server_reports_a_dead_server(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "memory://")
    result = invoke(settings, "stats", "--server", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1 and "cannot read" in result.output
    assert invoke(settings, "stats", "--server", "ftp://x").exit_code == 2


def test_help_shows_defaults_and_no_bool_metavars() -> None:
    runner = CliRunner()
    for command in ("stats", "purge", "reindex", "warm", "doctor", "get"):
        result = runner.invoke(cli, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output, command
    warm = runner.invoke(cli, ["warm", "--help"], env={"COLUMNS": "200"}).output
    assert "PREGEN_TOP_N" in warm and "default:" in warm


@pytest.mark.slow
def test_smoke_real_process_reads_a_running_servers_stats(redis_server: RedisServer,
                                                          redis_url: str, tmp_path: Path) -> None:
    redis_server.client().set(key_for("keep", ["me"]), json.dumps(ENTRY))
    with run_app_server(tmp_path / "server", {"REDIS_URL": redis_url}) as server:
        env = {**os.environ, "REDIS_URL": "memory://", "DATA_DIR": str(tmp_path / "cli"),
               "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "stats", "--json", "--server", server.base_url],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["total_entries"] == 1 and data["redis_connected"] is True
