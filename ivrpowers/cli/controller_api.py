"""The running controller's REST API, from the CLI: for what only the controller knows (an
agent's state in its ACD), with the token from the installation's secrets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from ivrpowers.cli.errors import CliError, NotFound, Unavailable
from ivrpowers.config import Settings


def call(settings: Settings, method: str, path: str, body: dict[str, Any] | None = None,
         not_found: str | None = None) -> Any:
    """The JSON answer of `method path`; one-line CLI errors for what went wrong (`not_found`: what
    to do about a 404)."""
    url = f"http://{settings.bind_address}:{settings.web_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {settings.secrets()['api_token']}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        if exc.code == 404:
            raise NotFound(str(message), not_found) from None
        raise CliError(str(message)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unavailable(f"the controller does not answer at {url} ({getattr(exc, 'reason', exc)})",
                          "start it: `make run` or `ivrpowers run`") from None
    return json.loads(raw) if raw else None


def reload_quietly(settings: Settings) -> bool:
    """Tell a running controller that queues or agents changed; False when none runs (it reads
    them when it starts)."""
    try:
        call(settings, "POST", "/api/acd/reload")
    except (CliError, OSError, KeyError, ValueError):  # no controller, or no secrets yet
        return False
    return True
