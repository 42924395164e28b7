"""create_app: importing the app reads no setting and wires nothing; each app is its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import Settings
from app.main import create_app
from app.services.video_cache import VideoCache
from tests.api.conftest import MakeClient, app_settings

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60)


@pytest.mark.slow  # a fresh interpreter imports the whole app (about 2 s here)
def test_importing_the_app_reads_no_settings_and_builds_on_first_look_up() -> None:
    # A REDIS_URL that Settings refuses: any read at import time would fail the import.
    code = ("import os, app.main as m, app.video.routes, app.api.cache, app.api.deps\n"
            "from app.core.config import get_settings\n"
            "assert get_settings.cache_info().currsize == 0, 'settings read at import'\n"
            "assert m._default is None\n"
            "try:\n"
            "    m.socket_app\n"
            "except Exception as exc:\n"
            "    print('refused on first use:', type(exc).__name__)\n"
            "get_settings.cache_clear()\n"
            "os.environ['REDIS_URL'] = 'memory://'\n"
            "s = m.socket_app\n"
            "assert m.app.state.socket_app is s and m.sio is m.app.state.sio\n"
            "assert m.socket_app is s  # built once\n"
            "print('built')\n")
    result = run_python(code, REDIS_URL="http://not-redis",
                        DATA_DIR="/tmp/punchline-factory-test")
    assert result.returncode == 0, result.stderr
    assert "refused on first use: ValidationError" in result.stdout
    assert "built" in result.stdout


async def test_each_app_has_its_own_settings_and_objects(tmp_path: Path,
                                                         make_client: MakeClient) -> None:
    first = await make_client(video_public_prefix="/clips")
    second = await make_client(video_public_prefix="/videos")
    name = "d" * 64 + ".mp4"
    assert (await first.get(f"/clips/{name}")).json()["error"]["code"] == "video_not_found"
    assert (await first.get(f"/videos/{name}")).json()["error"]["code"] == "not_found"
    assert (await second.get(f"/videos/{name}")).json()["error"]["code"] == "video_not_found"
    a, b = first.app.state, second.app.state  # type: ignore[attr-defined]
    assert a.registry is not b.registry and a.sio is not b.sio
    assert a.rate_limits is not b.rate_limits


def test_create_app_connects_nothing(tmp_path: Path) -> None:
    from tests.support.redis_server import free_port

    settings: Settings = app_settings(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}")
    cache = VideoCache(settings)
    app = create_app(settings, cache_facade=cache)
    assert cache._started is False and cache._sync_client is None  # the lifespan connects
    assert app.state.settings is settings


def test_make_run_server_options_come_from_the_settings(tmp_path: Path) -> None:
    from app.main import uvicorn_options

    options = uvicorn_options(app_settings(tmp_path))
    assert options == {"http": "h11", "h11_max_incomplete_event_size": 65536,
                       "proxy_headers": True, "forwarded_allow_ips": "127.0.0.1"}
    behind = uvicorn_options(app_settings(tmp_path, forwarded_allow_ips="10.0.0.0/8",
                                          http_max_header_bytes=32768))
    assert behind["forwarded_allow_ips"] == "10.0.0.0/8"
    assert behind["h11_max_incomplete_event_size"] == 32768
    assert uvicorn_options(app_settings(tmp_path, forwarded_allow_ips=""))["proxy_headers"] is False
