"""The gallery, share pages, posters, take-downs and room history, through the in-process app."""

from __future__ import annotations

import html
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.core.cards import Combination
from app.video.service import VideoService
from app.video.storage import sha_of_key
from tests.api.conftest import MakeClient
from tests.support.redis_server import free_port

HOSTILE = Combination('Never trust "_" in a card.',
                      ["<script>alert('pwned')</script> & <b>bold</b>"])
TOKEN = "s3cret-admin-token"


class Meta(HTMLParser):
    """The page's meta tags (property= or name=) and whether it holds any <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, str] = {}
        self.scripts = 0
        self.videos: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "video":
            self.videos.append(found)
        if tag == "meta":
            key = found.get("property") or found.get("name")
            if key and found.get("content") is not None:
                self.tags[key] = str(found["content"])


def parse(page: str) -> Meta:
    meta = Meta()
    meta.feed(page)
    return meta


async def win(client: httpx.AsyncClient, combo: Combination) -> str:
    service: VideoService = client.app.state.video_service  # type: ignore[attr-defined]
    await service.get_or_create(combo, permanent=True)
    assert await service.record_winner(combo) is not None
    return sha_of_key(combo.key)


async def test_share_page_has_meta_tags_and_escapes_card_text(client: httpx.AsyncClient) -> None:
    sha = await win(client, HOSTILE)
    response = await client.get(f"/w/{sha}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; &lt;b&gt;" in page
    meta = parse(page)
    assert meta.scripts == 0
    sentence = "Never trust \"<script>alert('pwned')</script> & <b>bold</b>\" in a card."
    assert meta.tags["og:title"] == sentence == meta.tags["twitter:title"]
    assert meta.tags["og:video"] == f"http://testserver/videos/{sha}.mp4"
    assert meta.tags["og:video:type"] == "video/mp4"
    assert meta.tags["og:image"] == f"http://testserver/videos/{sha}.png"
    assert meta.tags["twitter:card"] == "summary_large_image"
    assert meta.tags["og:url"] == f"http://testserver/w/{sha}"
    assert meta.videos and meta.videos[0]["src"] == meta.tags["og:video"]
    assert (meta.tags["og:video:width"], meta.tags["og:video:height"]) == ("640", "360")
    assert (meta.tags["og:image:width"], meta.tags["og:image:height"]) == ("640", "360")
    # The captions track: the sentence as one cue, its markup escaped for WebVTT.
    assert f'src="/w/{sha}/captions.vtt"' in page
    vtt = await client.get(f"/w/{sha}/captions.vtt")
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    lines = vtt.text.splitlines()
    assert lines[0] == "WEBVTT" and lines[2].startswith("00:00:00.000 --> 00:00:0")
    assert lines[3] == ("Never trust \"&lt;script&gt;alert('pwned')&lt;/script&gt; &amp; "
                        "&lt;b&gt;bold&lt;/b&gt;\" in a card.")
    # What the tags point at is there: the video and its poster.
    video = await client.get(f"/videos/{sha}.mp4")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    poster = await client.get(f"/videos/{sha}.png")
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/png"
    assert "immutable" in poster.headers["cache-control"]
    image = Image.open(io.BytesIO(poster.content))
    assert image.format == "PNG" and image.size == (640, 360)
    head = await client.head(f"/videos/{sha}.png")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("path", ["/w/" + "0" * 64, "/w/nope", "/w/" + "A" * 64,
                                  "/w/" + "0" * 64 + "/captions.vtt",
                                  "/videos/" + "0" * 64 + ".png", "/videos/nope.png"])
async def test_unknown_ids_answer_404_in_the_one_error_shape(client: httpx.AsyncClient,
                                                             path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    code = response.json()["error"]["code"]
    assert code in {"winner_not_found", "poster_not_found", "video_not_found"}


@pytest.mark.slow
async def test_gallery_lists_newest_first_with_pages(client: httpx.AsyncClient) -> None:
    combos = [Combination(f"Round {i}: _.", [f"Answer {i}"]) for i in range(3)]
    shas = [await win(client, c) for c in combos]
    first = (await client.get("/api/winners", params={"limit": 2})).json()
    assert [w["id"] for w in first["winners"]] == shas[:0:-1]
    top = first["winners"][0]
    assert top == {"id": shas[2], "sentence": "Round 2: Answer 2.", "won_at": top["won_at"],
                   "video_url": f"/videos/{shas[2]}.mp4", "poster_url": f"/videos/{shas[2]}.png",
                   "share_url": f"/w/{shas[2]}"}
    assert first["next_before"] is not None
    second = (await client.get("/api/winners", params={"limit": 2,
                                                       "before": first["next_before"]})).json()
    assert [w["id"] for w in second["winners"]] == [shas[0]] and second["next_before"] is None

    page = (await client.get("/winners", params={"limit": 2})).text
    assert page.index(shas[2]) < page.index(shas[1]) and shas[0] not in page
    assert "Round 2: Answer 2." in page and f'href="/w/{shas[2]}"' in page
    older = re.search(r'rel="next" href="([^"]+)"', page)
    assert older is not None
    rest = (await client.get(html.unescape(older.group(1)))).text
    assert shas[0] in rest and shas[2] not in rest and 'rel="next"' not in rest
    assert parse(page).scripts == 0

    bad = await client.get("/api/winners", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_an_empty_gallery(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/winners")).json() == {"winners": [], "next_before": None}
    assert "No winners yet." in (await client.get("/winners")).text


async def test_admin_takes_a_winner_down(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    sha = await win(client, HOSTILE)
    assert (await client.delete(f"/api/winners/{sha}")).status_code == 401
    wrong = await client.delete(f"/api/winners/{sha}", headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    assert (await client.get(f"/w/{sha}")).status_code == 200  # refused: nothing changed
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = await client.delete(f"/api/winners/{sha}", headers=auth)
    assert response.status_code == 204
    gone = await client.get(f"/w/{sha}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "winner_not_found"
    assert (await client.get("/api/winners")).json()["winners"] == []
    again = await client.delete(f"/api/winners/{sha}", headers=auth)
    assert again.status_code == 404
    assert (await client.delete("/api/winners/nope", headers=auth)).status_code == 404


async def test_take_down_is_disabled_without_an_admin_token(client: httpx.AsyncClient) -> None:
    sha = await win(client, HOSTILE)
    response = await client.delete(f"/api/winners/{sha}")
    assert response.status_code == 403 and response.json()["error"]["code"] == "admin_disabled"
    assert (await client.get(f"/w/{sha}")).status_code == 200


@pytest.mark.slow
async def test_gallery_on_a_real_redis_survives_a_flush(make_client: MakeClient,
                                                        redis_url: str, redis_server: object,
                                                        tmp_path: Path) -> None:
    client = await make_client(redis_url=redis_url)
    sha = await win(client, HOSTILE)
    assert [w["id"] for w in (await client.get("/api/winners")).json()["winners"]] == [sha]
    redis_server.flush()  # type: ignore[attr-defined]
    # Until the rebuild, the share page still finds the record on disk ...
    assert (await client.get(f"/w/{sha}")).status_code == 200
    # ... and the rebuild brings the listing back.
    service: VideoService = client.app.state.video_service  # type: ignore[attr-defined]
    assert await service.winners.rebuild() == 1
    assert [w["id"] for w in (await client.get("/api/winners")).json()["winners"]] == [sha]


@pytest.mark.parametrize("before", ["inf", "1e400", "0", "1.5"])
async def test_odd_cursors_on_a_real_redis(make_client: MakeClient, redis_url: str,
                                           before: str) -> None:
    client = await make_client(redis_url=redis_url)
    response = await client.get("/api/winners", params={"before": before})
    assert response.status_code == 200, response.text
    assert response.json() == {"winners": [], "next_before": None}


@pytest.mark.parametrize("before", ["nan", "-1", "x"])
async def test_bad_cursors_are_refused(client: httpx.AsyncClient, before: str) -> None:
    response = await client.get("/api/winners", params={"before": before})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


async def test_take_down_waits_for_an_unreachable_redis(make_client: MakeClient) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = await make_client(redis_url=dead, admin_token=TOKEN)
    sha = await win(client, HOSTILE)  # recorded on disk and in memory while Redis is down
    response = await client.delete(f"/api/winners/{sha}",
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
    assert (await client.get(f"/w/{sha}")).status_code == 200  # nothing changed
    service: VideoService = client.app.state.video_service  # type: ignore[attr-defined]
    record = service.winners.records.read(sha)
    assert record is not None and not record.taken_down
