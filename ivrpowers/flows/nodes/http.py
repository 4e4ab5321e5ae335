"""`http`: a web-service request whose JSON answer fills variables; no problem of it hangs a call.

The request's url, headers and body are templates that may use the operator's `secrets.*`; the
timeline shows the url as written in the flow (a secret in it stays out of CDRs), the status, the
time taken and what went wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..interpreter import Run, handles
from ..schema import HttpNode
from ..services import HttpError
from ..templates import template_names

_MISSING = object()


@handles(HttpNode)
async def _http(run: Run, node_id: str, node: HttpNode) -> str | None:
    run.state.vars.pop("http_status", None)  # a status is this node's, never an earlier request's
    if missing := _missing_secrets(run, node):
        await run.record("http_failed", node_id, {"url": node.url, "attempt": 0, "problem":
                         f"no flow secret named {', '.join(missing)} in the settings"})
        return node.on_error
    url = run.text(node.url, secrets=True)
    headers = {name: run.text(value, secrets=True) for name, value in node.headers.items()}
    body = _render_json(run, node.body) if node.body is not None else None
    for attempt in range(1, node.retries + 2):
        started = time.monotonic()
        retry = False
        try:
            response = await run.http.request(node.method, url, headers=headers, json=body, timeout=node.timeout)
        except HttpError as exc:
            problem, retry = str(exc).replace(url, node.url), True
        else:
            run.state.vars["http_status"] = response.status
            if not response.ok:
                problem, retry = f"HTTP {response.status}", response.status >= 500
            elif isinstance(response.body, str) or response.body is None:
                problem = "the answer is not JSON"
            else:
                for var, path in node.save.items():
                    run.state.vars[var] = _dig(response.body, path)
                await run.record("http_done", node_id, {"url": node.url, "status": response.status,
                                                        "ms": _ms(started), "saved": list(node.save)})
                return node.next
        await run.record("http_failed", node_id, {"url": node.url, "attempt": attempt, "problem": problem,
                                                  "ms": _ms(started)})
        if not retry:
            break
    return node.on_error


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _missing_secrets(run: Run, node: HttpNode) -> list[str]:
    wanted = {name.removeprefix("secrets.") for _, text in node.secret_templates() for name in template_names(text)
              if name.startswith("secrets.")}
    return sorted(wanted - set(run.services.secrets))


def _render_json(run: Run, value: Any) -> Any:
    if isinstance(value, str):
        return run.text(value, secrets=True)
    if isinstance(value, Mapping):
        return {key: _render_json(run, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_json(run, item) for item in value]
    return value


def _dig(value: Any, path: str) -> Any:
    """`customer.tier` or `items.0.id` in a JSON answer; null where the path leads nowhere."""
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            value = _MISSING
        if value is _MISSING:
            return None
    return value

