"""The REST API's routes, each with what it takes and returns, so that the app serves its own
OpenAPI document (`/api/openapi.json`) and it can't drift from the handlers: a route is added
here or not at all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]

ERROR: Schema = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_REASONS = {200: "OK", 201: "Created", 204: "No content", 400: "Malformed request", 401: "Missing or wrong token",
            404: "Not found", 409: "Conflict", 413: "Body too large", 422: "Invalid content", 429: "Too many",
            503: "Degraded"}
# What reading any body can answer, whatever the route: not JSON (or not UTF-8), or over the app's limit.
_BODY_ERRORS: dict[int, Schema | None] = {400: ERROR, 413: ERROR}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" or "query"
    schema: Schema
    description: str = ""


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    returns: dict[int, Schema | None]  # status -> body schema (None: no body)
    body: Schema | None = None
    params: list[Param] = field(default_factory=list)
    open: bool = False  # no bearer token needed
    body_required: bool = True
    also: dict[str, Schema] = field(default_factory=dict)  # 200's other media types (text/csv...)


class Api:
    """Routes for `app`, each described; `document()` is the OpenAPI 3.1 description of all of them."""

    def __init__(self, app: web.Application, title: str, version: str) -> None:
        self.app, self.title, self.version = app, title, version
        self.operations: list[Operation] = []
        self.components: dict[str, Schema] = {}

    def add(self, method: str, path: str, handler: Handler, *, summary: str, returns: dict[int, Schema | None],
            body: Schema | None = None, params: list[Param] | None = None, open: bool = False,
            body_required: bool = True, also: dict[str, Schema] | None = None) -> None:
        self.app.router.add_route(method, path, handler)
        if body is not None:
            returns = {**_BODY_ERRORS, **returns}
        self.operations.append(Operation(method.lower(), path, summary, returns, body, params or [], open,
                                         body_required, also or {}))

    def component(self, name: str, schema: Schema) -> Schema:
        """Keep `schema` once under #/components/schemas/NAME (with pydantic's own $defs lifted there)."""
        schema = dict(schema)
        for def_name, definition in schema.pop("$defs", {}).items():
            self.components[def_name] = definition
        self.components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def document(self) -> Schema:
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            responses: dict[str, Any] = {}
            for status, schema in sorted({**op.returns, **({} if op.open else {401: ERROR})}.items()):
                entry: dict[str, Any] = {"description": _REASONS.get(status, "")}
                if schema is not None:
                    entry["content"] = {"application/json": {"schema": schema}}
                    if status == 200:
                        entry["content"].update({kind: {"schema": other} for kind, other in op.also.items()})
                responses[str(status)] = entry
            operation: dict[str, Any] = {"summary": op.summary, "responses": responses,
                                         "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_')}"
                                         .replace("{", "").replace("}", "")}
            if op.params:
                operation["parameters"] = [{"name": p.name, "in": p.where, "required": p.where == "path",
                                            "schema": p.schema, "description": p.description} for p in op.params]
            if op.body is not None:
                operation["requestBody"] = {"required": op.body_required,
                                            "content": {"application/json": {"schema": op.body}}}
            if op.open:
                operation["security"] = []
            paths.setdefault(op.path, {})[op.method] = operation
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": paths,
            "components": {"schemas": _pydantic_refs(self.components),
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        }


def _pydantic_refs(value: Any) -> Any:
    # pydantic points at "#/$defs/X"; lifted into components, they live at "#/components/schemas/X".
    if isinstance(value, dict):
        return {k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" and isinstance(v, str)
                    else _pydantic_refs(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_pydantic_refs(v) for v in value]
    return value
