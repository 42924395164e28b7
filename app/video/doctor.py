"""Read-only checks of where published videos live (part of `python -m app.cli doctor`).

Local folder: it exists or can be made, and this process may write to it. S3: the bucket
answers a HEAD with these credentials (no object is written or read), and how players will
fetch the videos. Errors name the endpoint, the bucket and the store's error code, never a
credential.
"""

from __future__ import annotations

import os

from app.cache.topology import Check
from app.core.config import Settings


def storage_checks(settings: Settings) -> list[Check]:
    if settings.video_storage == "s3":
        return [_bucket_check(settings)]
    return [_folder_check(settings)]


def _folder_check(settings: Settings) -> Check:
    folder = settings.resolved_video_dir
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return Check("fail", f"video storage: local folder {folder} is not writable "
                             f"({existing} is the nearest existing path)")
    made = "" if folder.exists() else " (made at the first render)"
    return Check("ok", f"video storage: local folder {folder}{made}; several hosts need a "
                       "shared folder or VIDEO_STORAGE=s3")


def _bucket_check(settings: Settings) -> Check:
    from botocore.exceptions import BotoCoreError, ClientError

    from app.video.storage_s3 import make_client

    endpoint = settings.s3_endpoint_url or "AWS S3"
    where = f"bucket {settings.s3_bucket} at {endpoint}"
    client = make_client(settings, attempts=1)  # one try: the doctor reports, it does not wait
    try:
        client.head_bucket(Bucket=settings.s3_bucket)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "?")
        meaning = {"404": "no such bucket", "NoSuchBucket": "no such bucket",
                   "403": "access denied to these credentials",
                   "AccessDenied": "access denied to these credentials"}.get(str(code), "")
        return Check("fail", f"video storage: {where}: {code}"
                             + (f" ({meaning})" if meaning else ""))
    except BotoCoreError as exc:
        # unreachable, no credentials, a timeout...: the error's class says which
        return Check("fail", f"video storage: {where} failed: {type(exc).__name__}")
    finally:
        client.close()
    served = (f"players fetch from {settings.s3_public_base_url}" if settings.s3_public_base_url
              else "private: /videos/ redirects to presigned URLs")
    return Check("ok", f"video storage: {where} answers ({served})")
