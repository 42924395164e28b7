"""Shared FastAPI dependencies."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, status

from app.core.config import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_admin(settings: SettingsDep,
                  authorization: Annotated[str | None, Header()] = None) -> None:
    """Admin operations need `Authorization: Bearer <ADMIN_TOKEN>`."""
    if not settings.admin_token:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin operations are disabled: "
                            "set ADMIN_TOKEN to enable them")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token, settings.admin_token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid admin token is required",
                            headers={"WWW-Authenticate": "Bearer"})


AdminDep = Annotated[None, Depends(require_admin)]
