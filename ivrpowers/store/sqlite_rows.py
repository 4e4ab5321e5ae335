"""The CDR writer's batch statements on SQLite, as driver SQL over ready-made tuples.

Through SQLAlchemy Core, every value of a batch went through its type's bind processor (datetime
formatting, JSON) and every statement through an execution context: together more CPU than SQLite's
own work, all of it holding the GIL in the writer's thread while the event loop waited for it (a
profile of `make bench-calls` at 200 calls). Here a batch is a few `executemany` calls whose values
are converted once, the way SQLAlchemy itself stores them on SQLite, so the ORM reads the rows back
unchanged (`tests/unit/test_cdr_sqlite_rows.py`). PostgreSQL keeps the Core statements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Boolean, Column, Connection, Table

from ivrpowers.store.models import CallRecord, UTCDateTime

_CALLS = cast(Table, CallRecord.__table__)
_EVENT_FIELDS = ("uid", "call_id", "at", "type", "node", "detail")  # the order of `insert_events`' tuples


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime: ivrpowers stores UTC-aware timestamps only")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # SQLAlchemy's SQLite DATETIME format, in UTC (UTCDateTime): "YYYY-MM-DD HH:MM:SS.ffffff", the
    # first 26 characters of the aware value's "...ffffff+00:00".
    return value.isoformat(" ", "microseconds")[:26]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _flag(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def _same(value: Any) -> Any:
    return value


def _converter(column: Column[Any]) -> Callable[[Any], Any]:
    if isinstance(column.type, UTCDateTime):
        return _timestamp
    if isinstance(column.type, JSON):
        return _json
    if isinstance(column.type, Boolean):
        return _flag
    return _same


def _default(column: Column[Any]) -> Callable[[], Any]:
    """The column's Python-side default (what Core would fill in for a missing key)."""
    default = column.default
    if default is None:
        return lambda: None
    arg = getattr(default, "arg", None)
    if callable(arg):  # SQLAlchemy wraps a callable default to take an execution context
        return lambda: arg(None)
    return lambda: arg


class _Columns:
    def __init__(self, table: Table, names: Iterable[str]) -> None:
        columns = [table.c[name] for name in names]
        self.names = tuple(c.name for c in columns)
        self.convert = tuple(_converter(c) for c in columns)
        self.defaults = tuple(_default(c) for c in columns)

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            convert(values[name]) if name in values else convert(default())
            for name, convert, default in zip(self.names, self.convert, self.defaults, strict=True)
        )


_CALL_COLUMNS = _Columns(_CALLS, _CALLS.columns.keys())


def _insert(table: str, names: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


_INSERT_CALLS = _insert("calls", _CALL_COLUMNS.names)
# A replayed event (its uid already stored) is skipped by the database itself.
_INSERT_EVENTS = _insert("call_events", _EVENT_FIELDS) + " ON CONFLICT (uid) DO NOTHING"
_UPDATE_CONVERTERS = {c.name: _converter(c) for c in _CALLS.columns}


def _cursor(conn: Connection) -> Any:
    # The connection's own DBAPI cursor: the statements join the transaction SQLAlchemy began.
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def known_calls(conn: Connection, ids: list[str]) -> dict[str, bool]:
    """Which of these calls are stored, and whether each was made up by an adopting controller."""
    found: dict[str, bool] = {}
    cursor = _cursor(conn)
    for start in range(0, len(ids), 500):  # SQLite's limit on host parameters is 999 before 3.32
        chunk = ids[start:start + 500]
        cursor.execute(f"SELECT id, recovered FROM calls WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        found.update((row[0], bool(row[1])) for row in cursor.fetchall())
    return found


def insert_calls(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        _cursor(conn).executemany(_INSERT_CALLS, [_CALL_COLUMNS.row(row) for row in rows])


def update_calls(conn: Connection, changes: Mapping[str, Mapping[str, Any]]) -> None:
    """Each call's changed columns; one `executemany` per set of columns."""
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for call_id, values in changes.items():
        names = tuple(sorted(values))
        groups.setdefault(names, []).append(
            (*(_UPDATE_CONVERTERS[name](values[name]) for name in names), call_id)
        )
    cursor = _cursor(conn)
    for names, params in groups.items():
        cursor.executemany(f"UPDATE calls SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?", params)


def insert_events(conn: Connection, events: list[Mapping[str, Any]]) -> None:
    """The timeline's new events: most of a batch, so each row is built in one expression."""
    if events:
        _cursor(conn).executemany(_INSERT_EVENTS, [
            (e.get("uid"), e["call_id"], _timestamp(e["at"]), e["type"], e.get("node"), _json(e.get("detail") or {}))
            for e in events
        ])
