"""The one error shape of the HTTP API, and the handlers that give it to every error.

Every error response, whatever the route and whoever raised it (a route, a dependency, request
validation, Starlette's own 404/405), has the body::

    {"error": {"code": "room_not_found", "message": "no such room"}}

`code` is a stable snake_case word a client may branch on; `message` is for people. Routes
raise `ApiError(status, code, message)`; a plain `HTTPException` gets the code of its status
(`STATUS_CODES`). docs/protocol.md (REST section) lists the codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    416: "range_not_satisfiable",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: ErrorBody


class ApiError(StarletteHTTPException):
    """An HTTP error with its own code: `raise ApiError(404, "room_not_found", "no such room")`."""

    def __init__(self, status_code: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status_code, message, dict(headers) if headers else None)
        self.code = code


def error_response(status_code: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` declaring the error shape for these statuses."""
    return {status: {"model": ErrorOut, "description": STATUS_CODES.get(status, "error")}
            for status in statuses}


def describe(exc: RequestValidationError) -> str:
    """The first few validation errors as one line: `query.white.0: String should ...`."""
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)[:500] or "invalid request"


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = getattr(exc, "code", None) or STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail
    if isinstance(detail, dict) and {"code", "message"} <= detail.keys():  # legacy dict detail
        code, detail = str(detail["code"]), detail["message"]
    return error_response(exc.status_code, code, str(detail), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", describe(exc))


async def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    # Starlette still re-raises the exception after this response, so the server logs it once.
    return error_response(500, "internal", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)


def use_error_shape_in_openapi(app: FastAPI) -> None:
    """Document FastAPI's automatic 422 responses with the one error shape, not its own."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                                 description=app.description)
            ref = "#/components/schemas/ErrorOut"
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    response = operation.get("responses", {}).get("422")
                    if response is None:
                        continue
                    content = response.setdefault("content", {}).setdefault("application/json", {})
                    content["schema"] = {"$ref": ref}
                    response["description"] = "invalid_request"
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            if "ErrorOut" not in components:
                components["ErrorOut"] = _error_out_schema(components)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_out_schema(components: dict[str, Any]) -> dict[str, Any]:
    schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    return schema
