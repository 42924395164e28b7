"""The S3-compatible backend against a real S3 HTTP server (moto's server mode) on loopback.

Every video is a real render, uploaded through boto3's whole stack, downloaded over HTTP (the
public URL, or a presigned one) and decoded with PyAV.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from pydantic import ValidationError

from app.cache.doctor import diagnose
from app.core.cards import Combination
from app.core.config import Settings
from app.video.doctor import storage_checks
from app.video.errors import StorageError
from app.video.mp4 import open_video
from app.video.reindex import reindex
from app.video.render import RenderJob, render_video
from app.video.routes import get_video_storage, router
from app.video.storage import VideoMeta, VideoStorage, build_storage, sha_of_key
from app.video.storage_s3 import ObjectStoreError, S3VideoStorage, make_client
from tests.support.redis_server import RedisServer, free_port
from tests.support.s3_server import ACCESS_KEY, S3Server
from tests.video.conftest import ServiceFactory, video_settings
from tests.video.mp4 import decode

SECRET = "s3cr3t-DO-NOT-LOG-4f9a1c"
BLACK, WHITES = "Stored far away: _.", ["a bucket"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


def s3_settings(server: S3Server, tmp_path: Path, bucket: str, *, public: bool = True,
                **overrides: Any) -> Settings:
    return video_settings(
        tmp_path, video_storage="s3", s3_bucket=bucket, s3_endpoint_url=server.endpoint,
        s3_region="us-east-1", s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET,
        s3_public_base_url=f"{server.endpoint}/{bucket}" if public else "",
        s3_addressing_style="path", **overrides)


def make_bucket(settings: Settings) -> None:
    """A new bucket whose videos/ objects anyone may read (as behind a CDN)."""
    client = make_client(settings)
    client.create_bucket(Bucket=settings.s3_bucket)
    client.put_bucket_policy(Bucket=settings.s3_bucket, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{settings.s3_bucket}/{settings.s3_prefix}*"}]}))


@pytest.fixture
def bucket() -> str:
    return f"punchline-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(s3_server: S3Server, tmp_path: Path, bucket: str) -> Settings:
    settings = s3_settings(s3_server, tmp_path, bucket)
    make_bucket(settings)
    return settings


@pytest.fixture
def storage(settings: Settings) -> S3VideoStorage:
    storage = build_storage(settings)
    assert isinstance(storage, S3VideoStorage)
    return storage


def combo_meta(black: str = BLACK, whites: list[str] | None = None,
               permanent: bool = False) -> tuple[str, VideoMeta]:
    combo = Combination(black, whites or WHITES)
    return sha_of_key(combo.key), VideoMeta(
        key=combo.key, black_card=combo.black, white_cards=list(combo.whites),
        permanent=permanent, created_at="2026-01-01T00:00:00+00:00")


def render_into(storage: VideoStorage, sha: str) -> Path:
    temp = storage.temp_path(sha)
    render_video(RenderJob("Stored far away: _.", ("a bucket",)), str(temp))
    return temp


def keys(settings: Settings) -> list[str]:
    listed = make_client(settings).list_objects_v2(Bucket=settings.s3_bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def download(url: str, dest: Path) -> httpx.Response:
    response = httpx.get(url, follow_redirects=False, timeout=10)
    assert response.status_code == 200, (url, response.status_code)
    dest.write_bytes(response.content)
    return response


def test_publish_uploads_a_playable_video_its_poster_and_sidecar(
        storage: S3VideoStorage, settings: Settings, tmp_path: Path) -> None:
    sha, meta = combo_meta()
    temp = render_into(storage, sha)
    published = storage.publish(temp, meta)
    assert not temp.exists() and not list(storage.directory.glob("*.mp4"))  # nothing staged
    assert keys(settings) == [f"videos/{sha}.json", f"videos/{sha}.mp4", f"videos/{sha}.png"]
    url = storage.url_for(sha)
    assert url == f"{settings.s3_public_base_url}/videos/{sha}.mp4"
    response = download(url, tmp_path / "downloaded.mp4")
    assert response.headers["content-type"] == "video/mp4"
    assert "immutable" in response.headers["cache-control"]
    decoded = decode(tmp_path / "downloaded.mp4")
    assert (decoded.codec, decoded.width, decoded.height) == ("h264", 640, 360)
    assert decoded.frames > 0 and abs(decoded.duration - published.duration) < 0.1
    with open_video(tmp_path / "downloaded.mp4", "not playable") as (_container, stream):
        assert stream.codec_context.name == "h264"
    download(storage.poster_url(sha), tmp_path / "poster.png")
    with Image.open(tmp_path / "poster.png") as poster:
        assert poster.size == (640, 360)
    assert storage.read_meta(sha) == published and storage.exists(sha)
    assert storage.sha_of_url(url) == sha
    assert storage.sha_of_url(f"/videos/{sha}.mp4") == sha  # an entry from before the bucket
    assert storage.sha_of_url(f"{settings.s3_public_base_url}/other/{sha}.mp4") is None
    assert not S3VideoStorage.from_settings(settings).exists("ab" * 32)


def test_a_retried_upload_rewrites_the_same_objects(storage: S3VideoStorage,
                                                    settings: Settings) -> None:
    sha, meta = combo_meta()
    first = storage.publish(render_into(storage, sha), meta)
    second = storage.publish(render_into(storage, sha), meta)
    assert first == second
    assert keys(settings) == [f"videos/{sha}.json", f"videos/{sha}.mp4", f"videos/{sha}.png"]
    assert [s for s, _ in storage.iter_videos()] == [sha]


def test_a_broken_file_is_never_uploaded(storage: S3VideoStorage, settings: Settings) -> None:
    sha, meta = combo_meta()
    temp = storage.temp_path(sha)
    temp.write_bytes(b"<html>an error page, not a video</html>")
    with pytest.raises(StorageError):
        storage.publish(temp, meta)
    assert keys(settings) == [] and not temp.exists()


def test_list_records_promotion_and_delete(storage: S3VideoStorage, settings: Settings) -> None:
    one, meta_one = combo_meta()
    two, meta_two = combo_meta("Second _.", ["one"])
    storage.publish(render_into(storage, one), meta_one)
    storage.publish(render_into(storage, two), meta_two)
    listed = dict(S3VideoStorage.from_settings(settings).iter_videos())
    assert sorted(listed) == sorted([one, two])
    assert listed[one] is not None and listed[one].key == meta_one.key
    assert storage.mark_permanent(one) and not storage.mark_permanent(one)
    meta = storage.read_meta(one)
    assert meta is not None and meta.permanent
    storage.write_extra(one, ".winner.json", b'{"sentence": "x", "won_at": 1}')
    assert storage.read_extra(one, ".winner.json") == b'{"sentence": "x", "won_at": 1}'
    assert storage.read_extra(two, ".winner.json") is None
    with pytest.raises(ValueError):
        storage.read_extra(one, ".mp4")
    assert storage.delete(two) and not storage.delete(two)
    assert not storage.exists(two) and storage.read_meta(two) is None
    assert [s for s, _ in storage.iter_videos()] == [one]
    assert f"videos/{one}.winner.json" in keys(settings)
    poster = storage.poster(one)  # a local copy, for the poster route and its size
    assert poster is not None and poster.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert storage.poster(two) is None


async def _route(storage: VideoStorage, path: str) -> httpx.Response:
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[get_video_storage] = lambda: storage
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_the_file_route_redirects_to_the_public_url(storage: S3VideoStorage,
                                                          tmp_path: Path) -> None:
    sha, meta = combo_meta()
    storage.publish(render_into(storage, sha), meta)
    response = await _route(storage, f"/videos/{sha}.mp4")
    assert response.status_code == 307
    assert response.headers["location"] == storage.url_for(sha)
    download(response.headers["location"], tmp_path / "v.mp4")
    assert decode(tmp_path / "v.mp4").frames > 0
    assert (await _route(storage, f"/videos/{'ab' * 32}.mp4")).status_code == 404
    assert (await _route(storage, "/videos/nope.mp4")).status_code == 404


async def test_a_private_bucket_is_reached_through_presigned_urls(
        s3_server: S3Server, tmp_path: Path, bucket: str) -> None:
    settings = s3_settings(s3_server, tmp_path, bucket, public=False)
    make_client(settings).create_bucket(Bucket=bucket)  # no public policy
    storage = build_storage(settings)
    sha, meta = combo_meta()
    storage.publish(render_into(storage, sha), meta)
    assert storage.url_for(sha) == f"/videos/{sha}.mp4"  # the app's route, in cache entries
    assert httpx.get(f"{s3_server.endpoint}/{bucket}/videos/{sha}.mp4").status_code == 403
    response = await _route(storage, f"/videos/{sha}.mp4")
    assert response.status_code == 307
    assert response.headers["cache-control"] == "private, max-age=300"  # < the URL's life
    location = response.headers["location"]
    assert location.startswith(f"{s3_server.endpoint}/{bucket}/videos/{sha}.mp4?")
    assert "X-Amz-Signature=" in location
    download(location, tmp_path / "v.mp4")
    assert decode(tmp_path / "v.mp4").frames > 0


async def test_service_and_reindex_work_from_the_bucket(
        s3_server: S3Server, tmp_path: Path, bucket: str, redis_url: str,
        redis_server: RedisServer, service_factory: ServiceFactory) -> None:
    first = s3_settings(s3_server, tmp_path / "one", bucket, redis_url=redis_url)
    make_bucket(first)
    service = service_factory(settings=first)
    url = await service.get_or_create(BLACK, WHITES, permanent=True)
    temporary = await service.get_or_create("Only maybe _.", ["later"])
    combo = Combination(BLACK, WHITES)
    assert await service.record_winner(combo) is not None
    sha = sha_of_key(combo.key)
    assert url == f"{first.s3_public_base_url}/videos/{sha}.mp4"
    assert f"videos/{sha}.winner.json" in keys(first)
    # Redis loses everything; another machine (its own empty staging folder) rebuilds it.
    redis_server.flush()
    other = service_factory(settings=s3_settings(s3_server, tmp_path / "two", bucket,
                                                 redis_url=redis_url))
    report = await reindex(other)
    assert (report.scanned, report.restored, report.orphans, report.winners) == (2, 2, 0, 1)
    entry = await other.cache.aget_entry(combo)
    assert entry is not None and entry.permanent and entry.video_url == url
    again = await other.cache.aget_entry("Only maybe _.", ["later"])
    assert again is not None and not again.permanent and again.video_url == temporary
    page, _ = await other.winners.page()
    assert [w.sha for w in page] == [sha]
    assert await other.get_or_create(BLACK, WHITES) == url  # a hit: nothing rendered there
    assert not list((tmp_path / "two" / "videos").glob("*.mp4"))
    download(url, tmp_path / "v.mp4")
    assert decode(tmp_path / "v.mp4").frames > 0


def test_the_reindex_command_reads_the_bucket_and_never_prints_the_secret(
        s3_server: S3Server, tmp_path: Path, bucket: str, redis_url: str) -> None:
    settings = s3_settings(s3_server, tmp_path, bucket, redis_url=redis_url)
    make_bucket(settings)
    storage = build_storage(settings)
    sha, meta = combo_meta(permanent=True)
    storage.publish(render_into(storage, sha), meta)
    env = {**os.environ, "VIDEO_STORAGE": "s3", "S3_BUCKET": bucket,
           "S3_ENDPOINT_URL": s3_server.endpoint, "S3_REGION": "us-east-1",
           "S3_ACCESS_KEY_ID": ACCESS_KEY, "S3_SECRET_ACCESS_KEY": SECRET,
           "S3_PUBLIC_BASE_URL": settings.s3_public_base_url, "S3_ADDRESSING_STYLE": "path",
           "REDIS_URL": redis_url, "DATA_DIR": str(tmp_path / "cli"), "LOG_LEVEL": "DEBUG",
           "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "reindex"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = dict(tuple(cell.strip() for cell in line.strip("│ ").split("│"))[:2]
                for line in done.stdout.splitlines() if line.startswith("│"))
    assert rows["restored"] == "1" and rows["scanned"] == "1"
    assert f"s3://{bucket}/videos/" in "".join(done.stdout.split())  # the title (wrapped)
    assert "1/1" in done.stdout  # the progress bar's total comes from the bucket too
    assert SECRET not in done.stdout + done.stderr


def test_secrets_never_reach_logs_reprs_or_errors(
        storage: S3VideoStorage, settings: Settings, s3_server: S3Server, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # botocore's own debug logging included
    sha, meta = combo_meta()
    storage.publish(render_into(storage, sha), meta)
    storage.iter_videos()
    gone = S3VideoStorage.from_settings(s3_settings(s3_server, tmp_path, "no-such-bucket-x1"))
    with pytest.raises(ObjectStoreError) as failure:
        gone.publish(render_into(gone, sha), meta)
    assert not gone.mark_permanent(sha)  # logged, not raised: no sidecar to read
    assert any("botocore" in r.name for r in caplog.records)  # the debug logs were captured
    texts = [r.getMessage() for r in caplog.records] + [caplog.text]
    texts += [repr(settings), str(settings), repr(storage), repr(gone), str(failure.value),
              repr(failure.value.__cause__)]
    with pytest.raises(ValidationError) as invalid:
        Settings(_env_file=None, video_storage="s3", s3_secret_access_key=SECRET)
    texts.append(str(invalid.value))
    for text in texts:
        assert SECRET not in text
    assert "ACCESS_KEY" not in repr(settings)  # repr=False keeps it out too


def test_settings_validate_the_bucket_configuration(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="S3_BUCKET"):
        Settings(_env_file=None, video_storage="s3")
    with pytest.raises(ValidationError, match="not an http"):
        Settings(_env_file=None, s3_public_base_url="cdn.example")
    settings = Settings(_env_file=None, s3_prefix="/clips", s3_public_base_url="https://cdn.x/")
    assert (settings.s3_prefix, settings.s3_public_base_url) == ("clips/", "https://cdn.x")
    assert type(build_storage(video_settings(tmp_path))) is VideoStorage


# --- doctor ---------------------------------------------------------------------------------


def test_doctor_checks_the_bucket(s3_server: S3Server, settings: Settings, tmp_path: Path,
                                  bucket: str) -> None:
    [ok] = storage_checks(settings)
    assert ok.status == "ok"
    assert ok.text == (f"video storage: bucket {bucket} at {s3_server.endpoint} answers "
                       f"(players fetch from {s3_server.endpoint}/{bucket})")
    private = s3_settings(s3_server, tmp_path, bucket, public=False)
    assert "presigned" in storage_checks(private)[0].text

    [missing] = storage_checks(s3_settings(s3_server, tmp_path, bucket + "-gone"))
    assert missing.status == "fail"
    assert missing.text == (f"video storage: bucket {bucket}-gone at {s3_server.endpoint}: "
                            "404 (no such bucket)")
    closed = f"http://127.0.0.1:{free_port()}"
    [down] = storage_checks(settings.model_copy(update={"s3_endpoint_url": closed}))
    assert down.status == "fail"
    assert down.text == f"video storage: bucket {bucket} at {closed} failed: " \
                        "EndpointConnectionError"
    # The whole doctor has it, and never prints the secret key.
    lines = [f"{c.status} {c.text}" for c in diagnose(settings)]
    assert f"ok {ok.text}" in lines
    assert SECRET not in "\n".join(lines)


def test_doctor_checks_the_local_folder(tmp_path: Path) -> None:
    [ok] = storage_checks(video_settings(tmp_path))
    assert ok.status == "ok" and str(tmp_path / "videos") in ok.text
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    [bad] = storage_checks(video_settings(tmp_path, video_dir=blocker / "videos"))
    assert bad.status == "fail" and "is not writable" in bad.text
