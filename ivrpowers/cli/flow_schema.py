"""`ivrpowers flow schema`: the JSON Schema of flow files, for editors that check YAML as it is typed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ivrpowers.cli.errors import CliError
from ivrpowers.cli.flows import flow

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the draft pydantic writes


def flow_json_schema() -> dict[str, Any]:
    from ivrpowers.flows.schema import Flow

    generated = Flow.model_json_schema()
    # `$schema` first: editors read it to pick the dialect. The title replaces pydantic's "Flow".
    return {"$schema": JSON_SCHEMA_DIALECT, **generated, "title": "ivrpowers flow file"}


@flow.command()
@click.option("-o", "--output", metavar="FILE", help="The file to write; '-' or none: stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of flow files, for editors (e.g. the YAML language server).

    It checks shapes and types as you type; `ivrpowers flow validate` checks everything else
    (node references, expressions, templates, calendars).
    """
    text = json.dumps(flow_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{output}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"{output}: JSON Schema of flow files written")
