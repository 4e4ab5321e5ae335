"""A tiny CRM for the example flow `examples/flows/crm-lookup.yaml`.

    GET /customers/{number}   with   Authorization: Bearer TOKEN
      200 {"customer": {"tier": "gold", "name": "Ada Lovelace"}}   a known number
      404 {"error": "no such customer"}                             any other number
      401 {"error": "..."}                                          no token, or a wrong one

Run it with the example flow, from the checkout (the controller must see the same token):

    .venv/bin/python examples/crm_server.py --port 8099 --token s3cret    # or CRM_TOKEN=s3cret

    # the token, as a flow secret of the controller: `{{ secrets.crm_token }}` in the flow
    export IVRPOWERS_FLOW_SECRET_CRM_TOKEN=s3cret      # or, in <state>/ivrpowers.toml:
                                                       #   [flow_secrets]
                                                       #   crm_token = "s3cret"
    .venv/bin/ivrpowers flow import examples/flows/crm-lookup.yaml --publish -m "CRM lookup example"
    .venv/bin/ivrpowers route set 200 crm-lookup       # calls to 200 run it
    .venv/bin/ivrpowers run --start-asterisk           # then call 200 (examples/README.md)

5551234 (the SIPp demo caller) and 1001 (the softphone account agent1) are gold customers: the
priority menu; 5550100 is a silver one and any other number unknown (404): the standard menu.
"""

from __future__ import annotations

import argparse
import hmac
import os
import sys
from collections.abc import Mapping
from typing import TypedDict

from aiohttp import web

__all__ = ["CUSTOMERS", "Customer", "app", "main"]


class Customer(TypedDict):
    tier: str
    name: str


CUSTOMERS: Mapping[str, Customer] = {
    "5551234": {"tier": "gold", "name": "Ada Lovelace"},
    "5550100": {"tier": "silver", "name": "Charles Babbage"},
    "1001": {"tier": "gold", "name": "Agent One"},  # the softphone account agent1 that `make run` prints
}

TOKEN = web.AppKey("token", str)
DIRECTORY = web.AppKey("customers", Mapping[str, Customer])


def _authorized(request: web.Request) -> bool:
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {request.app[TOKEN]}"
    return hmac.compare_digest(given.encode(), expected.encode())


async def customer(request: web.Request) -> web.Response:
    if not _authorized(request):
        return web.json_response({"error": "a bearer token is required (Authorization: Bearer TOKEN)"}, status=401)
    found = request.app[DIRECTORY].get(request.match_info["number"])
    if found is None:
        return web.json_response({"error": "no such customer"}, status=404)
    return web.json_response({"customer": found})


def app(token: str, customers: Mapping[str, Customer] = CUSTOMERS) -> web.Application:
    """The CRM's web application: `GET /customers/{number}`, answered to bearer `token` only."""
    if not token:
        raise ValueError("the CRM needs a token")
    application = web.Application()
    application[TOKEN] = token
    application[DIRECTORY] = customers
    application.router.add_get("/customers/{number}", customer)
    return application


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A tiny CRM for examples/flows/crm-lookup.yaml.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8099, help="port to listen on (default: %(default)s)")
    parser.add_argument("--token", default=os.environ.get("CRM_TOKEN"),
                        help="the bearer token callers must send (default: $CRM_TOKEN)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give the token with --token or CRM_TOKEN")
    print(f"CRM on http://{args.host}:{args.port}/customers/NUMBER; known: {', '.join(CUSTOMERS)}", file=sys.stderr)
    web.run_app(app(args.token), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
