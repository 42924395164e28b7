"""A room's state as the REST API shows it, for tests that check a refused event changed nothing."""

from __future__ import annotations

from typing import Any

import httpx


async def room_snapshot(base_url: str, code: str) -> dict[str, Any]:
    """`GET /api/rooms/{code}` without `seconds_left`, which moves on its own."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        r = await http.get(f"/api/rooms/{code}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    body.pop("seconds_left")
    return body
