"""HTTP routes of the video layer: the files (with Range support) and the stats.

    app.include_router(app.video.routes.router)

Starlette's `FileResponse` implements single and multiple byte ranges (206, Content-Range,
Accept-Ranges, 416 with `bytes */size`), so the route only validates the name and adds caching
headers: a name is a content hash, so the file behind it never changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse

from app.core.config import get_settings
from app.video.service import VideoService, get_video_service
from app.video.storage import VideoStorage

IMMUTABLE = "public, max-age=31536000, immutable"


def get_video_storage(
    service: Annotated[VideoService, Depends(get_video_service)],
) -> VideoStorage:
    return service.storage


files_router = APIRouter(tags=["videos"])
stats_router = APIRouter(tags=["videos"])


@files_router.api_route(
    get_settings().video_public_prefix.rstrip("/") + "/{name}", methods=["GET", "HEAD"]
)
async def serve_video(
    name: str, storage: Annotated[VideoStorage, Depends(get_video_storage)]
) -> FileResponse:
    path = storage.resolve(name)  # None unless "<64 lowercase hex>.mp4" and present
    if path is None:
        raise HTTPException(status_code=404, detail="video not found")
    return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": IMMUTABLE})


@stats_router.get("/api/video/stats")
async def video_stats(
    service: Annotated[VideoService, Depends(get_video_service)],
) -> dict[str, Any]:
    return service.stats()


router = APIRouter()
router.include_router(files_router)
router.include_router(stats_router)
