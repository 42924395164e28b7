"""Videos: providers (local renderer, hosted HTTP API), content-addressed storage, and the
generation service (single flight, Redis lock, negative cache, pre-generation).

Entry points: `app.video.service.get_video_service()`, `app.video.routes.router`,
`app.video.lifespan.video_lifespan()`. Nothing is imported here, so that render workers stay
light. See docs/videos.md.
"""
