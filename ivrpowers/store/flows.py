"""Flow versions: import (a new version each time the source changes), publish, look up."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ivrpowers.store.db import Database
from ivrpowers.store.models import FlowVersion, utcnow


@dataclass(frozen=True)
class FlowSummary:
    name: str
    latest_version: int
    published_version: int | None
    versions: int


class FlowNotFound(LookupError):
    pass


class FlowRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def import_source(self, name: str, source: str, *, publish: bool = False) -> tuple[FlowVersion, bool]:
        """Store `source` as the next version of `name`; an unchanged source reuses the latest one.

        Returns the version and whether it was newly created.
        """
        async with self.db.session() as session, session.begin():
            latest = await session.scalar(
                select(FlowVersion).where(FlowVersion.name == name).order_by(FlowVersion.version.desc()).limit(1)
            )
            created = latest is None or latest.source != source
            if created:
                latest = FlowVersion(name=name, version=(latest.version + 1) if latest else 1, source=source)
                session.add(latest)
                await session.flush()
            assert latest is not None
            if publish:
                await self._publish(session, name, latest.version)
                latest.published, latest.published_at = True, utcnow()
            return latest, created

    async def publish(self, name: str, version: int | None = None) -> FlowVersion:
        async with self.db.session() as session, session.begin():
            target = await self._find(session, name, version)
            await self._publish(session, name, target.version)
            target.published, target.published_at = True, utcnow()
            return target

    @staticmethod
    async def _publish(session: AsyncSession, name: str, version: int) -> None:
        await session.execute(
            update(FlowVersion).where(FlowVersion.name == name, FlowVersion.version != version).values(published=False)
        )

    async def published(self, name: str) -> FlowVersion | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(FlowVersion).where(FlowVersion.name == name, FlowVersion.published.is_(True))
            )

    async def get(self, name: str, version: int | None = None) -> FlowVersion:
        async with self.db.session() as session:
            return await self._find(session, name, version)

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
