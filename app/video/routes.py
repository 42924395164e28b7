"""HTTP routes of the video layer: the files (with Range support) and the stats.

With an object store (VIDEO_STORAGE=s3) the file route serves nothing itself: it redirects
(307) to the object's public URL, or to a presigned one (`VideoStorage.redirect_for`).

    app.include_router(build_router(settings.video_public_prefix))

Starlette's `FileResponse` implements single and multiple byte ranges (206, Content-Range,
Accept-Ranges, 416 with `bytes */size`), so the route only validates the name and adds caching
headers: a name is a content hash, so the file behind it never changes. Nothing here reads the
settings: `create_app` passes the public prefix, and `router` is the default-prefix router.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from app.core.errors import ApiError, responses
from app.video.service import VideoService, get_video_service
from app.video.storage import VideoStorage

IMMUTABLE = "public, max-age=31536000, immutable"
# A redirect may be kept a little while, well within the life of a presigned URL (1 h); not for
# ever, since the bucket's public base may change.
REDIRECT_CACHE = "private, max-age=300"
DEFAULT_PREFIX = "/videos"


def get_video_storage(
    service: Annotated[VideoService, Depends(get_video_service)],
) -> VideoStorage:
    return service.storage


async def serve_video(
    name: str, storage: Annotated[VideoStorage, Depends(get_video_storage)],
    range_header: Annotated[str | None, Header(alias="Range", include_in_schema=False)] = None,
    if_range: Annotated[str | None, Header(alias="If-Range", include_in_schema=False)] = None,
) -> Response:
    if storage.remote:
        location = await asyncio.to_thread(storage.redirect_for, name)
        if location is None:
            raise ApiError(404, "video_not_found", "video not found")
        return RedirectResponse(location, 307, headers={"Cache-Control": REDIRECT_CACHE})
    path = storage.resolve(name)  # None unless "<64 lowercase hex>.mp4" and present
    if path is None:
        raise ApiError(404, "video_not_found", "video not found")
    if range_header is not None and if_range is None:
        check_range(range_header, path.stat().st_size)
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": IMMUTABLE})


def check_range(header: str, size: int) -> None:
    """Refuse a bad Range in the one error shape, with Starlette's own parser (FileResponse
    would answer it in plain text). With If-Range, Starlette may ignore the Range: let it."""
    try:
        FileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as exc:
        raise ApiError(400, "bad_range", exc.content or "malformed Range header") from None
    except RangeNotSatisfiable:
        raise ApiError(416, "range_not_satisfiable", "the range is outside the file",
                       headers={"Content-Range": f"bytes */{size}"}) from None


async def video_stats(
    service: Annotated[VideoService, Depends(get_video_service)],
) -> dict[str, Any]:
    return await service.astats()


FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the MP4 file", "content": {"video/mp4": {}}},
    206: {"description": "the requested byte range(s)", "content": {"video/mp4": {}}},
    307: {"description": "the video is in an object store (VIDEO_STORAGE=s3): go there"},
    **responses(400, 404, 416),
}


def build_router(public_prefix: str = DEFAULT_PREFIX) -> APIRouter:
    """The file route under `public_prefix` (VIDEO_PUBLIC_PREFIX) and `/api/video/stats`."""
    router = APIRouter(tags=["videos"])
    path = public_prefix.rstrip("/") + "/{name}"
    # GET and HEAD as two routes: one operation id each (one route with both gives a duplicate).
    for method, operation_id in (("GET", "get_video_file"), ("HEAD", "head_video_file")):
        router.add_api_route(path, serve_video, methods=[method], operation_id=operation_id,
                             response_class=FileResponse, responses=FILE_RESPONSES)
    router.add_api_route("/api/video/stats", video_stats, methods=["GET"])
    return router


router = build_router()
