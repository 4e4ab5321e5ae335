"""SQLAlchemy 2 typed models: flows and their publishes, routes, calls (CDRs) and their event timelines,
ACD queues and agents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: ivrpowers stores UTC-aware timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: JSON(), list[dict[str, Any]]: JSON(),
    }


class FlowVersion(Base):
    """One imported version of a flow's YAML source; at most one version per name is published."""

    __tablename__ = "flows"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_flows_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    # Exactly the text imported (line endings, BOM, comments): `flow export` gives it back byte for byte.
    source: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    # The live version, kept beside the publish log because routing reads it on every new number.
    published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]  # the last time this version went live


class FlowPublish(Base):
    """One change of a flow's live version (publish or rollback): what went live, when, why, what it replaced.

    `rollback_to_id` is the publish that `flow rollback` returns to from this one: a publish points at
    the one it replaced, a rollback inherits the pointer of the publish it restored. So successive
    rollbacks walk further back (v3 -> v2 -> v1) instead of toggling between the last two.
    """

    __tablename__ = "flow_publishes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    previous_version: Mapped[int | None]  # live just before; None when none was
    at: Mapped[datetime] = mapped_column(default=utcnow)
    message: Mapped[str | None] = mapped_column(Text)
    rollback: Mapped[bool] = mapped_column(default=False)
    rollback_to_id: Mapped[int | None] = mapped_column(ForeignKey("flow_publishes.id"))


class Route(Base):
    """A dialed number and the flow that answers it."""

    __tablename__ = "routes"

    number: Mapped[str] = mapped_column(String(64), primary_key=True)
    flow_name: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CallRecord(Base):
    """One CDR per interaction: the caller's channel, and any channel or bridge added to it later.

    Keyed for scale-out: `id` is derived from (asterisk_id, channel_id) of the first channel
    (`ivrpowers.calls.identity.call_id_for`), so a controller that adopts the call computes the same
    id as its dead owner did, and the owner's late writes merge into the same row.
    """

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    asterisk_id: Mapped[str] = mapped_column(String(64), default="")
    channel_id: Mapped[str] = mapped_column(String(128))
    # The controller driving the call; another controller closes it as lost only once this one is dead.
    owner: Mapped[str | None] = mapped_column(String(64))
    # Created by an adopting controller that found no record: the owner's writes never reached the database.
    recovered: Mapped[bool] = mapped_column(default=False)
    role: Mapped[str] = mapped_column(String(32), default="inbound")
    source: Mapped[str | None] = mapped_column(String(32))
    # Every channel of the interaction ([{"id", "role", "joined_at"}...]) and its bridge, if any.
    channels: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    bridge_id: Mapped[str | None] = mapped_column(String(128))
    caller_number: Mapped[str] = mapped_column(String(128), default="")
    caller_name: Mapped[str] = mapped_column(String(256), default="")
    dialed: Mapped[str] = mapped_column(String(128), default="")
    flow_name: Mapped[str | None] = mapped_column(String(100))
    flow_version: Mapped[int | None]
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(32))
    hangup_cause: Mapped[int | None]
    hangup_cause_text: Mapped[str | None] = mapped_column(String(128))

    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call", order_by="(CallEvent.at, CallEvent.id)", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_calls_started_at", "started_at"),
        UniqueConstraint("asterisk_id", "channel_id", name="uq_calls_asterisk_channel"),
        Index("ix_calls_open", "asterisk_id", "ended_at"),
    )


class CallEvent(Base):
    """The call's timeline: node entered, prompt played, DTMF received, hangup..."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Set by the writer: a replayed write (after a crash) is recognised and not stored twice.
    uid: Mapped[str | None] = mapped_column(String(36))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(40))
    node: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    call: Mapped[CallRecord] = relationship(back_populates="events")

    __table_args__ = (
        Index("ix_call_events_call_at", "call_id", "at", "id"),
        UniqueConstraint("uid", name="uq_call_events_uid"),
    )


class ControllerRecord(Base):
    """A controller process, for the others to know whether the owner of a call is alive."""

    __tablename__ = "controllers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    asterisk_id: Mapped[str] = mapped_column(String(64), default="")
    host: Mapped[str] = mapped_column(String(256), default="")
    pid: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    # Set on a clean stop: its calls may be adopted or closed at once, without waiting for staleness.
    stopped_at: Mapped[datetime | None]


class AcdQueue(Base):
    """A queue as defined (`acd.definitions.QueueDef`, without its name, as JSON): definitions
    change with the product, and nothing queries inside them."""

    __tablename__ = "acd_queues"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AcdAgent(Base):
    """An agent as defined (`acd.definitions.AgentDef`, without its id, as JSON), its queues included."""

    __tablename__ = "acd_agents"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AcdState(Base):
    """The ACD router's state (`acd.Snapshot` as JSON), saved after every change it makes: queue
    entries with their places, offers, agents' states, round-robin positions. One row per router
    (`id`); `owner` is the controller running it."""

    __tablename__ = "acd_state"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    snapshot: Mapped[dict[str, Any]]
    owner: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AcdAgentEvent(Base):
    """One change of an agent's state (`logged_out`, `available`, `reserved`, `busy`, `wrap_up`,
    `paused` with its reason), stored once, for reports."""

    __tablename__ = "acd_agent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(String(63), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    old: Mapped[str] = mapped_column(String(16))
    new: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))


class AcdEventRow(Base):
    """One `acd.events.AcdEvent` (a task joined, was offered, answered, ended; an agent's state
    changed), stored once: statistics are rebuilt from the day's after a restart, and reports read them."""

    __tablename__ = "acd_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(20))
    queue: Mapped[str | None] = mapped_column(String(63), index=True)
    task: Mapped[str | None] = mapped_column(String(64), index=True)
    agent: Mapped[str | None] = mapped_column(String(63), index=True)
    channel: Mapped[str | None] = mapped_column(String(8))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    owner: Mapped[str | None] = mapped_column(String(64))  # the controller that saw it
