"""Sweeping: temporary videos go with their cache entry (folder and bucket alike), and render
files of dead processes go at once while a live process's render is never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.cache.entry import utc_now_iso
from app.core.cards import Combination
from app.core.config import Settings
from app.video.render import RenderJob, render_video
from app.video.storage import VideoMeta, VideoStorage, sha_of_key
from app.video.sweeper import TemporarySweeper, sweep_temporary
from tests.support.redis_server import free_port
from tests.support.s3_server import S3Server
from tests.video.conftest import ServiceFactory, video_settings
from tests.video.test_storage_s3 import make_bucket, s3_settings

OLD = "2026-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3-sweep"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real MP4, copied for every stored video of these tests (a render takes 0.6 s)."""
    path = tmp_path_factory.mktemp("mp4") / "one.mp4"
    render_video(RenderJob("Sweep _.", ("me",)), str(path))
    return path


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "local":
        return video_settings(tmp_path, cache_temporary_ttl=3600)
    server: S3Server = request.getfixturevalue("s3_server")
    settings = s3_settings(server, tmp_path, f"sweep-{uuid.uuid4().hex[:12]}",
                           cache_temporary_ttl=3600)
    make_bucket(settings)
    return settings


def store(storage: VideoStorage, rendered: Path, black: str, *, permanent: bool = False,
          created_at: str = OLD) -> Combination:
    combo = Combination(black, ["it"])
    sha = sha_of_key(combo.key)
    temp = storage.temp_path(sha)
    shutil.copyfile(rendered, temp)
    meta = VideoMeta(key=combo.key, black_card=combo.black, white_cards=list(combo.whites),
                     permanent=permanent, created_at=created_at)
    storage.publish(temp, meta)
    return combo


async def test_expired_temporary_videos_are_deleted_and_nothing_else(
        settings: Settings, service_factory: ServiceFactory, rendered: Path) -> None:
    service = service_factory(settings=settings)
    storage = service.storage
    expired = store(storage, rendered, "Expired _.")
    cached = store(storage, rendered, "Still cached _.")
    await service.cache.aset(cached, storage.url_for(sha_of_key(cached.key)))
    young = store(storage, rendered, "Young _.", created_at=utc_now_iso())
    winner = store(storage, rendered, "Winner _.", permanent=True)
    promoted = store(storage, rendered, "Promoted _.")  # its mark_permanent was lost
    await service.cache.aset(promoted, storage.url_for(sha_of_key(promoted.key)),
                             permanent=True)

    report = await sweep_temporary(service)

    assert (report.scanned, report.deleted, report.cached, report.young, report.permanent,
            report.promoted, report.skipped) == (5, 1, 1, 1, 1, 1, False)
    left = {sha for sha, _ in storage.iter_videos()}
    assert left == {sha_of_key(c.key) for c in (cached, young, winner, promoted)}
    assert not storage.exists(sha_of_key(expired.key))
    assert storage.read_meta(sha_of_key(expired.key)) is None
    assert storage.poster(sha_of_key(expired.key)) is None  # the poster went with it
    meta = storage.read_meta(sha_of_key(promoted.key))
    assert meta is not None and meta.permanent  # repaired: a later sweep keeps it for good
    again = await sweep_temporary(service)
    assert (again.deleted, again.permanent, again.promoted) == (0, 2, 0)


async def test_nothing_is_deleted_while_redis_is_unreachable(
        tmp_path: Path, service_factory: ServiceFactory, rendered: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    service = service_factory(settings=video_settings(tmp_path, dead))
    expired = store(service.storage, rendered, "Expired _.")
    report = await sweep_temporary(service)
    assert report.skipped and report.deleted == 0
    assert service.storage.exists(sha_of_key(expired.key))


async def test_the_periodic_sweeper_runs_the_pass(
        tmp_path: Path, service_factory: ServiceFactory, rendered: Path) -> None:
    service = service_factory(settings=video_settings(tmp_path))
    expired = store(service.storage, rendered, "Expired _.")
    sweeper = TemporarySweeper(service, interval=0.05, first_delay=0)
    sweeper.start()
    try:
        for _ in range(200):
            if sweeper.last is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await sweeper.stop()
    assert sweeper.last is not None and sweeper.last.deleted == 1
    assert not service.storage.exists(sha_of_key(expired.key))
    idle = TemporarySweeper(service, interval=0)
    idle.start()  # 0: off
    assert idle._task is None


# --- render files of dead processes ----------------------------------------------------------
CHILD = """
import sys, time
from pathlib import Path
from app.video.storage import VideoStorage
temp = VideoStorage(Path(sys.argv[1])).temp_path("ab" * 32)
temp.write_bytes(b"half a render")
print(temp, flush=True)
if sys.argv[2] == "stay":
    time.sleep(60)
"""


def child(directory: Path, mode: str) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), mode],
                               stdout=subprocess.PIPE, text=True, cwd=Path.cwd())
    assert process.stdout is not None
    with process.stdout:
        return process, Path(process.stdout.readline().strip())


def test_a_dead_process_render_file_goes_at_once_and_a_live_one_stays(tmp_path: Path) -> None:
    storage = VideoStorage(tmp_path / "videos")
    dead, dead_file = child(storage.directory, "exit")
    dead.wait(30)
    alive, alive_file = child(storage.directory, "stay")
    try:
        mine = storage.temp_path("cd" * 32)
        mine.write_bytes(b"this process renders it")
        foreign = storage.directory / f".tmp-{'ef' * 8}-4242.77@another_host-{'0' * 12}.mp4"
        foreign.write_bytes(b"a render on another machine sharing the folder")
        assert dead_file.is_file() and alive_file.is_file()

        assert storage.remove_stale_temps() == 1  # default: 1 h for anything not provably dead
        assert not dead_file.exists()
        assert alive_file.exists() and mine.exists() and foreign.exists()

        os.kill(alive.pid, signal.SIGKILL)  # a worker killed in the middle of a render
        alive.wait(30)
        assert storage.remove_stale_temps() == 1
        assert not alive_file.exists() and mine.exists() and foreign.exists()

        old = time.time() - 7200
        os.utime(foreign, (old, old))
        assert storage.remove_stale_temps() == 1 and not foreign.exists()
        assert mine.exists()
    finally:
        if alive.poll() is None:
            os.kill(alive.pid, signal.SIGKILL)
            alive.wait(30)


def test_temp_names_are_checked(tmp_path: Path) -> None:
    storage = VideoStorage(tmp_path / "videos")
    with pytest.raises(ValueError, match="sha256"):
        storage.temp_path("../../etc")
    meta = VideoMeta(key="video:" + "ab" * 32, black_card="a", white_cards=[], permanent=False,
                     created_at=OLD)
    assert replace(meta, permanent=True).permanent
