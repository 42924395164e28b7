"""The winners gallery, share pages, posters, take-downs and a room's history.

    app.include_router(build_router(settings.video_public_prefix))  # before the video routes

- `GET /winners` (HTML) and `GET /api/winners` (JSON): recent winners, newest first, paged with
  the `before` cursor (the `next_before` of the previous page).
- `GET /w/{id}`: one winner's share page, with OpenGraph and Twitter meta tags.
- `GET {prefix}/{id}.png`: the poster frame (its `og:image`).
- `DELETE /api/winners/{id}` (admin): take a winner down from the gallery and its share page.
- `GET /api/rooms/{code}/history`: a room's finished rounds and winners.

The pages are plain server-rendered HTML without scripts; every text (cards are user content)
goes through `html.escape`, and a Content-Security-Policy allows no script at all. Unknown,
opted-out and taken-down ids answer 404 `winner_not_found` in the one error shape.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from html import escape
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from PIL import Image
from pydantic import BaseModel

from app.api.deps import AdminDep, limit_room_lookups
from app.api.rooms import find_room
from app.cache.errors import CacheBackendError
from app.core.errors import ApiError, responses
from app.game import events as ev
from app.state.record import decode_outcome
from app.state.wiring import GameState, game_state
from app.video.combos import combination_of
from app.video.errors import InvalidCardsError
from app.video.routes import IMMUTABLE, get_video_storage
from app.video.service import VideoService, get_video_service
from app.video.storage import VideoStorage, sha_of_key
from app.video.winners import MAX_PAGE, Winner, WinnersIndex, sentence_of

ServiceDep = Annotated[VideoService, Depends(get_video_service)]
StorageDep = Annotated[VideoStorage, Depends(get_video_storage)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="winners per page")]
Before = Annotated[float | None, Query(ge=0, description="the next_before of the last page")]

DEFAULT_SIZE = (640, 360)  # 360p, the default resolution, when a video has no poster
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:; "
            "media-src 'self' https:; base-uri 'none'; form-action 'none'")
STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#18181b;color:#f5f5f5}
main{max-width:46rem;margin:0 auto;padding:1rem}
a{color:#ffce40}
ol{list-style:none;padding:0}
li{margin:0 0 1.5rem;padding:.75rem;background:#060606;border:1px solid #46464c;border-radius:8px}
img,video{width:100%;height:auto;border-radius:4px;display:block;background:#000}
.sentence{display:block;font-size:1.1rem;margin:.5rem 0;overflow-wrap:anywhere}
time{color:#aaa;font-size:.85rem}
"""


class WinnerOut(BaseModel):
    id: str
    sentence: str
    won_at: str  # ISO-8601, UTC
    video_url: str
    poster_url: str
    share_url: str


class WinnersPage(BaseModel):
    winners: list[WinnerOut]
    next_before: float | None  # pass as `before` for the next page; null on the last page


class RoundOut(BaseModel):
    game: int
    round: int
    outcome: Literal["won", "voided"]
    reason: str | None = None  # why a round was voided
    black_card: str | None = None
    white_cards: list[str] | None = None
    sentence: str | None = None
    winner_name: str | None = None
    video_id: str | None = None  # the video's content address (its file may still be rendering)
    video_url: str | None = None
    share_url: str | None = None  # only when the room is in the public gallery


class RoomHistory(BaseModel):
    code: str
    rounds: list[RoundOut]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _out(storage: VideoStorage, w: Winner) -> WinnerOut:
    return WinnerOut(id=w.sha, sentence=w.sentence, won_at=_iso(w.won_at),
                     video_url=storage.url_for(w.sha), poster_url=storage.poster_url(w.sha),
                     share_url=f"/w/{w.sha}")


def _absolute(request: Request, url: str) -> str:
    """OpenGraph wants absolute URLs; the prefix may already be one (a CDN)."""
    if url.startswith(("http://", "https://")):
        return url
    return str(request.base_url).rstrip("/") + url


def _html(body: str, title: str, head: str = "") -> HTMLResponse:
    page = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{escape(title)}</title>{head}<style>{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
    return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP,
                                       "X-Content-Type-Options": "nosniff",
                                       "Referrer-Policy": "same-origin"})


async def _page(index: WinnersIndex, storage: VideoStorage, limit: int,
                before: float | None) -> WinnersPage:
    winners, cursor = await index.page(limit, before)
    return WinnersPage(winners=[_out(storage, w) for w in winners], next_before=cursor)


async def _winner(index: WinnersIndex, sha: str) -> Winner:
    winner = await index.get(sha)
    if winner is None:
        raise ApiError(404, "winner_not_found", "no such winner in the gallery")
    return winner


async def list_winners(service: ServiceDep, limit: Limit = 20, before: Before = None
                       ) -> WinnersPage:
    return await _page(service.winners, service.storage, limit, before)


async def winners_page(service: ServiceDep, limit: Limit = 20, before: Before = None
                       ) -> HTMLResponse:
    page = await _page(service.winners, service.storage, limit, before)
    items = "".join(
        # One link per winner, named by its sentence (the poster beside it is decorative).
        f"<li><a href=\"{escape(w.share_url)}\"><img src=\"{escape(w.poster_url)}\" alt=\"\" "
        f"loading=\"lazy\" width=\"640\" height=\"360\">"
        f"<span class=\"sentence\">{escape(w.sentence)}</span></a>"
        f"<a href=\"{escape(w.video_url)}\">MP4</a> · "
        f"<time datetime=\"{escape(w.won_at)}\">{escape(w.won_at[:10])}</time></li>"
        for w in page.winners)
    body = "<h1>Winners</h1>" + (f"<ol>{items}</ol>" if items else "<p>No winners yet.</p>")
    if page.next_before is not None:
        body += (f"<p><a rel=\"next\" href=\"/winners?before={page.next_before!r}"
                 f"&amp;limit={limit}\">Older winners</a></p>")
    return _html(body, "Punchline winners")


async def share_page(id: str, request: Request, service: ServiceDep) -> HTMLResponse:
    winner = await _winner(service.winners, id)
    storage = service.storage
    video = _absolute(request, storage.url_for(id))
    poster = _absolute(request, storage.poster_url(id))
    page = _absolute(request, f"/w/{id}")
    title = winner.sentence
    width, height = await asyncio.to_thread(_poster_size, storage, id)
    meta = {
        "og:type": "video.other", "og:site_name": "Punchline", "og:title": title,
        "og:url": page, "og:video": video, "og:video:type": "video/mp4",
        "og:video:width": str(width), "og:video:height": str(height),
        "og:image": poster, "og:image:type": "image/png",
        "og:image:width": str(width), "og:image:height": str(height),
        "twitter:card": "summary_large_image", "twitter:title": title, "twitter:image": poster,
    }
    if video.startswith("https://"):
        meta["og:video:secure_url"] = video
    head = "".join(
        f"<meta {'name' if k.startswith('twitter:') else 'property'}=\"{k}\" "
        f"content=\"{escape(v)}\">" for k, v in meta.items())
    body = (f"<h1 class=\"sentence\">{escape(title)}</h1>"
            f"<video controls playsinline preload=\"metadata\" poster=\"{escape(poster)}\" "
            f"src=\"{escape(video)}\" width=\"{width}\" height=\"{height}\">"
            f"<track kind=\"captions\" srclang=\"en\" label=\"English\" default "
            f"src=\"/w/{id}/captions.vtt\"></video>"
            f"<p><time datetime=\"{_iso(winner.won_at)}\">{_iso(winner.won_at)[:10]}</time> · "
            "<a href=\"/winners\">More winners</a> · <a href=\"/\">Play Punchline</a></p>")
    return _html(body, title, head)


def _poster_size(storage: VideoStorage, sha: str) -> tuple[int, int]:
    """The video's frame size, read from its poster's PNG header (any provider's size)."""
    path = storage.poster(sha)
    if path is not None:
        try:
            with Image.open(path) as image:
                return image.size
        except (OSError, ValueError):
            pass
    return DEFAULT_SIZE


def _vtt_text(text: str) -> str:
    """Cue text: `&`, `<` and `>` are markup in WebVTT, and a blank line would end the cue."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split()).replace("-->", "--&gt;")


async def captions(id: str, service: ServiceDep) -> Response:
    """The sentence as one caption for the whole video (the narration, when there is one)."""
    winner = await _winner(service.winners, id)
    meta = await asyncio.to_thread(service.storage.read_meta, id)
    seconds = meta.duration if meta is not None and meta.duration > 0 else 60.0
    end = f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:06.3f}"
    body = f"WEBVTT\n\n00:00:00.000 --> {end}\n{_vtt_text(winner.sentence)}\n"
    return Response(body, media_type="text/vtt", headers={"X-Content-Type-Options": "nosniff"})


async def serve_poster(id: str, storage: StorageDep) -> FileResponse:
    path = await asyncio.to_thread(storage.poster, id)
    if path is None:
        raise ApiError(404, "poster_not_found", "poster not found")
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": IMMUTABLE})


async def take_down(id: str, _admin: AdminDep, service: ServiceDep) -> Response:
    try:
        done = await service.winners.take_down(id)
    except CacheBackendError as exc:
        raise ApiError(503, "unavailable", f"the winners index is unavailable ({exc}); "
                       "retry when Redis is back") from None
    if not done:
        raise ApiError(404, "winner_not_found", "no such winner in the gallery")
    return Response(status_code=204)


def _round_out(storage: VideoStorage, game: int, outcome: ev.RoundWon | ev.RoundVoided
               ) -> RoundOut:
    if isinstance(outcome, ev.RoundVoided):
        return RoundOut(game=game, round=outcome.round, outcome="voided", reason=outcome.reason)
    whites = list(outcome.white_card_texts)
    out = RoundOut(game=game, round=outcome.round, outcome="won",
                   black_card=outcome.black_card_text, white_cards=whites,
                   winner_name=outcome.winner_name)
    try:
        combo = combination_of(outcome.black_card_text, whites)
    except InvalidCardsError:  # cards from a deck never do this
        return out
    sha = sha_of_key(combo.key)
    out.sentence = sentence_of(combo)
    out.video_id, out.video_url = sha, storage.url_for(sha)
    out.share_url = f"/w/{sha}" if outcome.public_gallery else None
    return out


async def room_history(code: str, state: Annotated[GameState, Depends(game_state)],
                       service: ServiceDep) -> RoomHistory:
    record = await find_room(state, code)
    history = [decode_outcome(text) for text in await state.book.history(record.code)]
    return RoomHistory(code=record.code,
                       rounds=[_round_out(service.storage, game, o) for game, o in history])


def build_router(public_prefix: str = "/videos") -> APIRouter:
    """The routes above; the poster route lives under `public_prefix` (VIDEO_PUBLIC_PREFIX),
    so include this router before the video file routes."""
    router = APIRouter(tags=["winners"])
    html: dict[str, Any] = {"response_class": HTMLResponse, "include_in_schema": True}
    router.add_api_route("/winners", winners_page, methods=["GET"], **html,
                         responses=responses(422))
    router.add_api_route("/api/winners", list_winners, methods=["GET"],
                         response_model=WinnersPage, responses=responses(422))
    # An HTML route's declared errors would default to text/html: they are JSON (ErrorOut).
    error_json = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    json_404: dict[int | str, dict[str, Any]] = {
        404: {"description": "not_found", "content": error_json}}
    router.add_api_route("/w/{id}", share_page, methods=["GET"], **html, responses=json_404)
    router.add_api_route("/w/{id}/captions.vtt", captions, methods=["GET"],
                         response_class=Response, responses={
                             200: {"description": "WebVTT captions", "content": {"text/vtt": {}}},
                             **responses(404)})
    router.add_api_route("/api/winners/{id}", take_down, methods=["DELETE"], status_code=204,
                         response_class=Response,
                         responses=responses(401, 403, 404, 429, 503))
    router.add_api_route("/api/rooms/{code}/history", room_history, methods=["GET"],
                         response_model=RoomHistory, tags=["rooms"],
                         dependencies=[Depends(limit_room_lookups)],
                         responses=responses(404, 429, 503))
    path = public_prefix.rstrip("/") + "/{id}.png"
    for method, operation_id in (("GET", "get_poster_file"), ("HEAD", "head_poster_file")):
        router.add_api_route(path, serve_poster, methods=[method], operation_id=operation_id,
                             response_class=FileResponse, responses={
                                 200: {"description": "the poster PNG",
                                       "content": {"image/png": {}}}, **responses(404)})
    return router

