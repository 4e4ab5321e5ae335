"""`ivrpowers flow graph`: draw a flow file or a stored flow (DOT, Mermaid, or SVG/PNG through Graphviz)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ivrpowers.cli.common import settings_from, with_db
from ivrpowers.cli.errors import CliError, Invalid, Unavailable, one_line
from ivrpowers.cli.flows import _read, flow
from ivrpowers.store.db import Database
from ivrpowers.store.flows import FlowRepository

if TYPE_CHECKING:
    from ivrpowers.flows.schema import Flow

FORMATS = ("svg", "png", "dot", "mermaid")
BINARY = ("svg", "png")  # made by Graphviz, written to a file
EXTENSIONS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid"}
DOT_TIMEOUT = 60.0  # seconds; a flow of a few hundred nodes lays out in well under one
INSTALL_GRAPHVIZ = "install Graphviz: apt-get install graphviz, or scripts/install-debian-deps"


def load_flow_ref(ctx: click.Context, flow_ref: str) -> Flow:
    """A flow file, or the stored flow of that name (its published version, else its latest)."""
    from ivrpowers.flows import FlowError, load_flow

    if os.path.exists(flow_ref) or flow_ref.endswith((".yaml", ".yml")):
        source, filename = _read(flow_ref), flow_ref
    else:
        async def stored(db: Database) -> tuple[str, str]:
            repo = FlowRepository(db)
            found = await repo.published(flow_ref) or await repo.get(flow_ref)
            return found.source, f"{found.name} v{found.version}"

        source, filename = with_db(settings_from(ctx), stored)
    try:
        return load_flow(source, filename)
    except FlowError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise CliError(f"{filename}: not a valid flow ({len(exc.problems)} problem(s) above)") from None


def _format(given: str | None, output: str | None) -> str:
    if given is not None:
        return given
    if output is None or output == "-":
        return "dot"
    found = EXTENSIONS.get(Path(output).suffix.lower())
    if found is None:
        raise Invalid(f"cannot tell the format from the extension of {output!r}",
                      f"give --format {'|'.join(FORMATS)}, or name OUT {' '.join(EXTENSIONS)}")
    return found


def render_with_graphviz(dot_text: str, fmt: str) -> bytes:
    """`dot -T<fmt>` on `dot_text`; Unavailable when Graphviz is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise Unavailable(f"cannot make {fmt}: Graphviz's `dot` is not on PATH", INSTALL_GRAPHVIZ)
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise CliError(f"Graphviz's `dot` took more than {DOT_TIMEOUT:g} s to draw the flow") from None
    if done.returncode != 0:
        why = one_line(done.stderr.decode(errors="replace")) or f"exit status {done.returncode}"
        raise CliError(f"Graphviz's `dot` failed: {why}")
    return done.stdout


def _write(output: str, data: bytes) -> None:
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise CliError(f"{output}: cannot write: {exc.strerror or exc}") from None


@flow.command()
@click.argument("flow_ref", metavar="NAME|FILE")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Default: from OUT's extension (.svg .png .dot .gv .mmd), else dot.")
@click.option("-o", "--output", metavar="OUT", help="The file to write; '-' or none: stdout (dot and mermaid only).")
@click.pass_context
def graph(ctx: click.Context, flow_ref: str, fmt: str | None, output: str | None) -> None:
    """Draw a flow: its nodes (id and type), and an edge for every way from one to another, labelled
    with the digit, the case's condition or the outcome (on_timeout, on_error, ...) that takes it.

    NAME|FILE is a flow file, or the name of a stored flow (its published version, else its latest).
    An edge to "end" is a way out left empty: the flow ends there (hangs up; a subflow returns).
    svg and png need Graphviz's `dot`.
    """
    from ivrpowers.flows.graph import build_graph, to_dot, to_mermaid

    fmt = _format(fmt, output)
    if fmt in BINARY and output in (None, "-"):
        raise Invalid(f"--format {fmt} writes a file", "give -o FILE")
    drawn = build_graph(load_flow_ref(ctx, flow_ref))
    text = to_mermaid(drawn) if fmt == "mermaid" else to_dot(drawn)
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    _write(output, render_with_graphviz(text, fmt) if fmt in BINARY else text.encode())
    click.echo(f"{output}: {fmt}, flow {drawn.name}, {len(drawn.nodes)} nodes, {len(drawn.edges)} edges")
