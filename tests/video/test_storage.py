"""Content-addressed storage: atomic publication, sidecars, names."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.video.errors import StorageError
from app.video.render import RenderJob, render_video
from app.video.routes import get_video_storage, router
from app.video.storage import VideoMeta, VideoStorage, sha_of_key

SHA = "0123456789abcdef" * 4
KEY = f"video:{SHA}"


def meta(permanent: bool = False) -> VideoMeta:
    return VideoMeta(key=KEY, black_card="Why _?", white_cards=["Because"], permanent=permanent,
                     created_at="2026-01-01T00:00:00+00:00")


@pytest.fixture
def storage(tmp_path: Path) -> VideoStorage:
    return VideoStorage(tmp_path / "videos", "/videos")


def test_publish_is_content_addressed_with_a_sidecar(storage: VideoStorage) -> None:
    temp = storage.temp_path(SHA)
    assert temp.parent == storage.directory  # same filesystem: os.replace is atomic
    render_video(RenderJob("Why _?", ("Because",)), str(temp))
    published = storage.publish(temp, meta())
    assert not temp.exists()
    assert storage.path_for(SHA) == storage.directory / f"{SHA}.mp4"
    assert storage.exists(SHA)
    assert 4.0 <= published.duration <= 6.0
    assert storage.read_meta(SHA) == published
    assert storage.url_for(SHA) == f"/videos/{SHA}.mp4"
    assert storage.sha_of_url(f"/videos/{SHA}.mp4") == SHA
    assert storage.sha_of_url("https://cdn.example/x.mp4") is None
    assert [sha for sha, _ in storage.iter_videos()] == [SHA]
    assert sorted(p.name for p in storage.directory.iterdir()) == [
        f"{SHA}.json", f"{SHA}.mp4", f"{SHA}.png"]  # the sidecar, the video, its poster


def test_a_broken_file_is_never_published(storage: VideoStorage) -> None:
    temp = storage.temp_path(SHA)
    temp.write_bytes(b"<html>this is an error page, not a video</html>")
    with pytest.raises(StorageError):
        storage.publish(temp, meta())
    assert not storage.exists(SHA)
    assert list(storage.directory.iterdir()) == []


def test_empty_file_is_refused(storage: VideoStorage) -> None:
    temp = storage.temp_path(SHA)
    temp.touch()
    with pytest.raises(StorageError, match="no file"):
        storage.publish(temp, meta())


def test_mark_permanent_updates_the_sidecar(storage: VideoStorage) -> None:
    temp = storage.temp_path(SHA)
    render_video(RenderJob("Why _?", ("Because",)), str(temp))
    storage.publish(temp, meta(permanent=False))
    assert storage.mark_permanent(SHA)
    sidecar = storage.read_meta(SHA)
    assert sidecar is not None and sidecar.permanent
    assert not storage.mark_permanent(SHA)  # already permanent


@pytest.mark.parametrize("name", [
    f"{SHA.upper()}.mp4", f"{SHA[:-1]}.mp4", f"{SHA}.json", f"../{SHA}.mp4", f"{SHA}.mp4.part",
    "x" * 64 + ".mp4",
])
def test_resolve_refuses_bad_names(storage: VideoStorage, name: str) -> None:
    storage.directory.mkdir(parents=True)
    (storage.directory / f"{SHA}.mp4").write_bytes(b"x")
    assert storage.resolve(name) is None
    assert storage.resolve(f"{SHA}.mp4") == storage.directory / f"{SHA}.mp4"


def test_sha_of_key() -> None:
    assert sha_of_key(KEY) == SHA
    for bad in ("video:xyz", SHA, f"video:{SHA}0", f"other:{SHA}"):
        with pytest.raises(ValueError):
            sha_of_key(bad)


def test_unreadable_sidecar_is_ignored(storage: VideoStorage) -> None:
    storage.directory.mkdir(parents=True)
    (storage.directory / f"{SHA}.mp4").write_bytes(b"x")
    (storage.directory / f"{SHA}.json").write_text("{not json")
    assert storage.read_meta(SHA) is None
    assert list(storage.iter_videos()) == [(SHA, None)]


def test_stale_temporary_files_are_removed(storage: VideoStorage) -> None:
    temp = storage.temp_path(SHA)
    temp.write_bytes(b"partial")
    assert storage.remove_stale_temps(older_than=3600) == 0
    assert storage.remove_stale_temps(older_than=-1) == 1
    assert not temp.exists()


def test_a_symlink_out_of_the_folder_is_never_served(storage: VideoStorage, tmp_path: Path) -> None:
    storage.directory.mkdir(parents=True)
    (storage.directory / f"{SHA}.mp4").symlink_to("/etc/passwd")
    assert storage.resolve(f"{SHA}.mp4") is None
    assert not storage.exists(SHA)  # so the service renders it again instead of pointing at it
    assert list(storage.iter_videos()) == []  # and reindex ignores it
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"not ours")
    other = "ab" * 32
    (storage.directory / f"{other}.mp4").symlink_to(outside)
    assert storage.resolve(f"{other}.mp4") is None


def test_a_symlinked_video_folder_still_works(tmp_path: Path) -> None:
    real = tmp_path / "real-videos"
    real.mkdir()
    (real / f"{SHA}.mp4").write_bytes(b"x")
    (tmp_path / "videos").symlink_to(real, target_is_directory=True)
    storage = VideoStorage(tmp_path / "videos")
    assert storage.resolve(f"{SHA}.mp4") == tmp_path / "videos" / f"{SHA}.mp4"
    assert storage.exists(SHA)


async def test_the_file_route_refuses_a_symlink(tmp_path: Path) -> None:
    storage = VideoStorage(tmp_path / "videos")
    storage.directory.mkdir()
    (storage.directory / f"{SHA}.mp4").symlink_to("/etc/passwd")
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[get_video_storage] = lambda: storage
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(f"/videos/{SHA}.mp4")
    assert response.status_code == 404
    assert b"root:" not in response.content
