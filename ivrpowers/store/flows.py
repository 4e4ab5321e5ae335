"""Flow versions: import (a new version each time the source changes), publish, roll back, look up.

Every change of a flow's live version is logged in `flow_publishes` (see `FlowPublish`): the history
shows it, and `rollback` follows it to the version that was live before.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from ivrpowers.store.db import Database
from ivrpowers.store.models import FlowPublish, FlowVersion, utcnow


@dataclass(frozen=True)
class FlowSummary:
    name: str
    latest_version: int
    published_version: int | None
    versions: int


@dataclass(frozen=True)
class LiveChange:
    """After a publish or a rollback: `version` is live; `previous` was live before (None: none was)."""

    version: FlowVersion
    previous: int | None


@dataclass(frozen=True)
class FlowHistory:
    name: str
    versions: list[FlowVersion]  # newest first
    publishes: list[FlowPublish]  # newest first

    @property
    def live_version(self) -> int | None:
        return next((v.version for v in self.versions if v.published), None)


class FlowNotFound(LookupError):
    pass


class FlowChanged(RuntimeError):
    """The latest version is not the one a change was based on: another was stored meanwhile."""


class NothingToRollBack(RuntimeError):
    pass


class FlowRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def import_source(
        self, name: str, source: str, *, publish: bool = False, message: str | None = None,
        base_version: int | None = None,
    ) -> tuple[FlowVersion, bool]:
        """Store `source` as the next version of `name`; an unchanged source reuses the latest one.

        `base_version`: the version the source was edited from; if a newer one was stored since, raise
        FlowChanged rather than quietly replace it. Returns the version and whether it was newly created.
        """
        async with self.db.session() as session, session.begin():
            await self._lock(session, name)
            latest = await session.scalar(
                select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version.desc()).limit(1)
            )
            if base_version is not None and (latest is None or latest.version != base_version):
                now = f"v{latest.version}" if latest else "none"
                raise FlowChanged(f"{name} changed while it was edited: the latest version is {now}, "
                                  f"the edit started from v{base_version}")
            created = latest is None or latest.source != source
            if created:
                version = (latest.version + 1) if latest else 1
                latest = FlowVersion(name=name, version=version, source=source, message=message)
                session.add(latest)
                await session.flush()
            assert latest is not None
            if publish:
                await self._go_live(session, latest, message=message)
            return latest, created

    async def publish(self, name: str, version: int | None = None, *, message: str | None = None) -> LiveChange:
        """Make `version` (default: the latest) live; publishing the live version again changes and logs nothing."""
        async with self.db.session() as session, session.begin():
            await self._lock(session, name)
            target = await self._find(session, name, version)
            return await self._go_live(session, target, message=message)

    async def rollback(self, name: str, *, message: str | None = None) -> LiveChange:
        """Make live again the version that was live before the current one (see `FlowPublish`)."""
        async with self.db.session() as session, session.begin():
            await self._lock(session, name)
            current = await self._live_publish(session, name)
            if current is None:
                await self._find(session, name, None)  # FlowNotFound for a flow that does not exist
                raise NothingToRollBack(f"{name} has no live version to roll back")
            if current.rollback_to_id is None:
                raise NothingToRollBack(f"{name} v{current.version} is live and no version was live before it")
            back_to = await session.get_one(FlowPublish, current.rollback_to_id)
            target = await self._find(session, name, back_to.version)
            return await self._go_live(session, target, message=message, rollback_of=back_to)

    @staticmethod
    async def _lock(session: AsyncSession, name: str) -> None:
        # PostgreSQL: one change of a flow's versions at a time (SQLite already has a single writer).
        await session.execute(select(FlowVersion.id).where(FlowVersion.name == name).with_for_update())

    @staticmethod
    async def _live_publish(session: AsyncSession, name: str) -> FlowPublish | None:
        return await session.scalar(
            select(FlowPublish).where(FlowPublish.name == name).order_by(FlowPublish.id.desc()).limit(1)
        )

    async def _go_live(
        self, session: AsyncSession, target: FlowVersion, *, message: str | None, rollback_of: FlowPublish | None = None
    ) -> LiveChange:
        """Make `target` the live version and log it; `rollback_of` is the past publish being restored."""
        current = await self._live_publish(session, target.name)
        previous = current.version if current else None
        if previous == target.version:
            return LiveChange(target, previous)
        await session.execute(
            update(FlowVersion).where(FlowVersion.name == target.name, FlowVersion.version != target.version)
            .values(published=False)
        )
        now = utcnow()
        target.published, target.published_at = True, now
        session.add(FlowPublish(
            name=target.name, version=target.version, previous_version=previous, at=now, message=message,
            rollback=rollback_of is not None,
            rollback_to_id=rollback_of.rollback_to_id if rollback_of is not None else current.id if current else None,
        ))
        return LiveChange(target, previous)

    async def published(self, name: str) -> FlowVersion | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(FlowVersion).where(FlowVersion.name == name, FlowVersion.published.is_(True))
            )

    async def get(self, name: str, version: int | None = None) -> FlowVersion:
        async with self.db.session() as session:
            return await self._find(session, name, version)

    async def history(self, name: str) -> FlowHistory:
        async with self.db.session() as session:
            versions = list(await session.scalars(
                select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version.desc())
                .options(defer(FlowVersion.source, raiseload=True))  # every version's YAML is not history
            ))
            if not versions:
                raise FlowNotFound(f"no flow {name!r}")
            publishes = list(await session.scalars(
                select(FlowPublish).where(FlowPublish.name == name).order_by(FlowPublish.id.desc())
            ))
        return FlowHistory(name, versions, publishes)

    @staticmethod
    async def _find(session: AsyncSession, name: str, version: int | None) -> FlowVersion:
        """`version` of `name`, or its latest version when None."""
        query = select(FlowVersion).where(FlowVersion.name == name)
        if version:
            query = query.where(FlowVersion.version == version)
        else:
            query = query.order_by(FlowVersion.version.desc()).limit(1)
        found = await session.scalar(query)
        if found is None:
            raise FlowNotFound(f"no flow {name!r}" + (f" version {version}" if version else ""))
        return found

    async def summaries(self) -> list[FlowSummary]:
        async with self.db.session() as session:
            rows = await session.execute(
                select(FlowVersion.name, func.max(FlowVersion.version), func.count()).group_by(FlowVersion.name)
            )
            live = await session.execute(
                select(FlowVersion.name, FlowVersion.version).where(FlowVersion.published.is_(True))
            )
            published = {name: version for name, version in live.all()}
        return [
            FlowSummary(name=name, latest_version=latest, published_version=published.get(name), versions=count)
            for name, latest, count in sorted(rows.all())
        ]
