"""The web client's files, served in-process: `/`, the modules it loads, and nothing from
another origin (it must work offline)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from app.core.config import Settings
from app.main import create_app
from app.web.routes import STATIC_DIR


async def fetch(tmp_path: Path, paths: list[str]) -> dict[str, httpx.Response]:
    """GET each path from an in-process app (`/` and `/static` need no lifespan)."""
    app = create_app(Settings(_env_file=None, app_env="test", redis_url="memory://",
                              pregen_enabled=False, data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app.state.socket_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return {path: await client.get(path) for path in paths}


async def test_index_and_every_file_it_loads_are_served(tmp_path: Path) -> None:
    index = (await fetch(tmp_path, ["/?room=K7QXM"]))["/?room=K7QXM"]
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', index.text)
    modules = {p.name for p in STATIC_DIR.glob("*.js")}
    assert len(assets) == 3 and modules == {"main.js", "net.js", "dom.js", "messages.js"}
    paths = [*assets, *(f"/static/{m}" for m in modules), "/static/nope.js"]
    responses = await fetch(tmp_path, paths)
    for path in paths[:-1]:
        assert responses[path].status_code == 200, path
        if path.endswith(".js"):
            assert "javascript" in responses[path].headers["content-type"], path
    assert responses["/static/nope.js"].status_code == 404


def test_the_client_loads_nothing_from_another_origin() -> None:
    for path in STATIC_DIR.glob("*.*"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), path
        imports = re.findall(r'from "([^"]+)"', text)
        assert all(i.startswith("./") for i in imports), (path, imports)
