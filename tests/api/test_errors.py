"""One error shape on every route, and an OpenAPI document that says so."""

from __future__ import annotations

import warnings

import httpx
import pytest

from tests.api.conftest import MakeClient


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"]


async def test_every_error_has_the_one_shape(make_client: MakeClient) -> None:
    client = await make_client(admin_token="s3cret")
    assert_error(await client.get("/api/rooms/QQQQQ"), 404, "room_not_found")
    assert_error(await client.get("/api/rooms/not-a-code"), 404, "room_not_found")
    assert_error(await client.get("/videos/" + "a" * 64 + ".mp4"), 404, "video_not_found")
    assert_error(await client.get("/videos/../../etc/passwd"), 404, "not_found")
    assert_error(await client.get("/no/such/route"), 404, "not_found")
    assert_error(await client.post("/health"), 405, "method_not_allowed")
    assert_error(await client.get("/api/videos", params={"black": "b"}), 422, "invalid_request")
    assert_error(await client.get("/api/videos", params={"black": "b", "white": ""}), 422,
                 "invalid_request")
    assert_error(await client.get("/api/videos", params={"black": "b", "white": "x"}), 404,
                 "video_not_found")
    entry = {"black": "b", "white": ["w"]}
    assert_error(await client.delete("/api/cache/entry", params=entry), 401, "unauthorized")
    disabled = await make_client(admin_token="")
    assert_error(await disabled.delete("/api/cache/entry", params=entry), 403, "admin_disabled")


async def test_head_gets_the_error_status_without_a_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/videos/" + "b" * 64 + ".mp4")
    assert response.status_code == 404 and response.content == b""


async def test_openapi_agrees_with_the_responses(client: httpx.AsyncClient) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns about duplicate operation ids
        spec = (await client.get("/openapi.json")).json()
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), ids
    video = spec["paths"]["/videos/{name}"]
    assert video["get"]["operationId"] != video["head"]["operationId"]
    assert "404" in video["get"]["responses"] and "404" in video["head"]["responses"]
    ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == ref, (path, method, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    entry = spec["paths"]["/api/cache/entry"]["delete"]
    assert {"401", "403", "422", "429"} <= set(entry["responses"])
    assert {"404", "429"} <= set(spec["paths"]["/api/rooms/{code}"]["get"]["responses"])
    white = next(p for p in spec["paths"]["/api/videos"]["get"]["parameters"]
                 if p["name"] == "white")
    assert white["schema"]["items"]["minLength"] == 1 and white["schema"]["items"]["pattern"]


@pytest.mark.parametrize("white", ["", " ", "\t"])
async def test_blank_white_card_is_refused_by_the_schema(client: httpx.AsyncClient,
                                                        white: str) -> None:
    response = await client.get("/api/videos", params={"black": "Why?", "white": white})
    assert_error(response, 422, "invalid_request")
    assert "white" in response.json()["error"]["message"]


async def test_range_errors_have_the_one_shape(client: httpx.AsyncClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    folder = settings.resolved_video_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = "c" * 64 + ".mp4"
    (folder / name).write_bytes(b"x" * 100)
    assert (await client.get(f"/videos/{name}", headers={"Range": "bytes=0-9"})).content == \
        b"x" * 10
    unsatisfiable = await client.get(f"/videos/{name}", headers={"Range": "bytes=500-"})
    assert_error(unsatisfiable, 416, "range_not_satisfiable")
    assert unsatisfiable.headers["content-range"] == "bytes */100"
    assert_error(await client.get(f"/videos/{name}", headers={"Range": "items=0-1"}), 400,
                 "bad_range")


async def test_card_limits_in_the_schema_are_the_card_rules(client: httpx.AsyncClient) -> None:
    from app.core.cards import MAX_BLACK_CHARS, MAX_WHITE_CARDS, MAX_WHITE_CHARS

    spec = (await client.get("/openapi.json")).json()
    params = {p["name"]: p["schema"] for p in spec["paths"]["/api/videos"]["get"]["parameters"]}
    assert params["black"]["maxLength"] == MAX_BLACK_CHARS
    assert params["white"]["maxItems"] == MAX_WHITE_CARDS
    assert params["white"]["items"]["maxLength"] == MAX_WHITE_CHARS
    too_long = await client.get("/api/videos", params={"black": "b" * (MAX_BLACK_CHARS + 1),
                                                       "white": "w"})
    assert_error(too_long, 422, "invalid_request")
    invisible = await client.get("/api/videos", params={"black": "\u200b", "white": "w"})
    assert_error(invisible, 422, "invalid_cards")


async def test_an_unexpected_error_is_a_500_in_the_one_shape(tmp_path) -> None:
    from app.main import create_app
    from app.services.video_cache import VideoCache
    from tests.api.conftest import app_settings

    settings = app_settings(tmp_path)
    app = create_app(settings, cache_facade=VideoCache(settings))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom")
    assert_error(response, 500, "internal")
    assert "secret detail" not in response.text
