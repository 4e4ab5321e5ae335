"""How every command fails: one line on stderr, and an exit code that says what kind of failure.

    0  done
    1  the command ran and refused or found a problem (a flow with errors, a change it will not make)
    2  usage: a wrong command, option, argument or value
    3  not found: the object named (flow, version, route, call) does not exist
    4  unavailable: no installation here, or a service it needs (database, Asterisk) does not answer

The line is `error: WHAT (FIX)`. A traceback is printed only with `--debug` (or IVRPOWERS_DEBUG=1);
an error nobody foresaw still gets one line, naming its type, and exit code 1.
"""

from __future__ import annotations

import sys
import traceback
from typing import IO, ClassVar

import click

DONE, FAILED, USAGE, NOT_FOUND, UNAVAILABLE = 0, 1, 2, 3, 4


class CliError(click.ClickException):
    """A failure the user can act on: what was wrong and, when there is one, how to fix it."""

    exit_code: ClassVar[int] = FAILED

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix

    def format_message(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Invalid(CliError):
    exit_code = USAGE


class NotFound(CliError):
    exit_code = NOT_FOUND


class Unavailable(CliError):
    exit_code = UNAVAILABLE


def one_line(text: str) -> str:
    """Several lines (a driver's message, say) as one."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def translate(exc: BaseException) -> CliError | None:
    """The user's view of an exception from below the CLI, or None if it is not one we know."""
    # Imported here: `ivrpowers --help` must not pay for SQLAlchemy and the ARI client.
    from sqlalchemy.exc import OperationalError

    from ivrpowers.ami import AmiError
    from ivrpowers.ari import AriConnectionError
    from ivrpowers.asterisk.process import AsteriskError, AsteriskNotRunning
    from ivrpowers.asterisk.rootfs import RootfsError
    from ivrpowers.store.flows import FlowNotFound
    from ivrpowers.store.migrate import SchemaOutdated

    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, SchemaOutdated):
        return Unavailable(exc.problem, exc.FIX)
    if isinstance(exc, FlowNotFound):
        return NotFound(str(exc), "see `ivrpowers flow list`")
    if isinstance(exc, OperationalError):
        reason = one_line(str(exc.orig) if exc.orig is not None else str(exc))
        return Unavailable(f"the database does not answer: {reason}",
                           "check IVRPOWERS_DB_URL, or that the database server runs")
    if isinstance(exc, AriConnectionError):
        return Unavailable(f"Asterisk does not answer: {one_line(str(exc))}", "start it: `ivrpowers asterisk start`")
    if isinstance(exc, AsteriskNotRunning):
        return Unavailable("Asterisk is not running", "start it: `ivrpowers asterisk start`")
    if isinstance(exc, AsteriskError | RootfsError):
        return CliError(one_line(str(exc)))
    if isinstance(exc, AmiError):
        return Unavailable(f"Asterisk's AMI: {one_line(str(exc))}", "is Asterisk running? `ivrpowers asterisk status`")
    if isinstance(exc, OSError | TimeoutError):
        return Unavailable(f"{type(exc).__name__}: {one_line(str(exc))}")
    return None


def report(exc: BaseException, *, debug: bool) -> int:
    """Print `exc` the CLI way and return the exit code."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx is not None else "ivrpowers"
        click.echo(f"error: {one_line(exc.format_message())} (see `{where} --help`)", err=True)
        return USAGE
    known = translate(exc)
    if known is not None:
        known.show()
        return known.exit_code
    if isinstance(exc, click.ClickException):
        click.echo(f"error: {one_line(exc.format_message())}", err=True)
        return exc.exit_code
    hint = "" if debug else " (run with --debug for the traceback)"
    click.echo(f"error: unexpected {type(exc).__name__}: {one_line(str(exc))}{hint}", err=True)
    return FAILED
