"""The routing table: dialed number -> flow name."""

from __future__ import annotations

import re

from sqlalchemy import and_, delete, select

from ivrpowers.store.db import Database
from ivrpowers.store.models import FlowVersion, Route, utcnow

# What a caller can dial: digits, * and #, with an optional leading + (E.164), at most 32 of them.
NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")


class InvalidNumber(ValueError):
    pass


def check_number(number: str) -> str:
    """`number` if a caller can dial it, else InvalidNumber saying what is allowed."""
    if not NUMBER.match(number):
        raise InvalidNumber(f"{number!r} is not a number a caller can dial: use digits, * and #, with an optional "
                            "leading + (at most 32)")
    return number


class RouteRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def set(self, number: str, flow_name: str) -> Route:
        check_number(number)
        async with self.db.session() as session, session.begin():
            route = await session.get(Route, number)
            if route is None:
                route = Route(number=number, flow_name=flow_name)
                session.add(route)
            else:
                route.flow_name, route.updated_at = flow_name, utcnow()
            return route

    async def published_flow(self, number: str) -> tuple[str, int | None] | None:
        """(flow name, its published version or None) routed to `number`; None if unrouted.

        One query on the path of every new call, and without the flow's source: parsed versions
        are cached by the caller, so the text is fetched once per version, not once per call.
        """
        query = (
            select(Route.flow_name, FlowVersion.version)
            .outerjoin(FlowVersion, and_(FlowVersion.name == Route.flow_name, FlowVersion.published.is_(True)))
            .where(Route.number == number)
        )
        row = await self.db.run_sync(lambda conn: conn.execute(query).first())
        return None if row is None else (row[0], row[1])

    async def get(self, number: str) -> Route | None:
        async with self.db.session() as session:
            return await session.get(Route, number)

    async def delete(self, number: str) -> bool:
        async with self.db.session() as session, session.begin():
            deleted = await session.scalar(delete(Route).where(Route.number == number).returning(Route.number))
            return deleted is not None

    async def all(self) -> list[Route]:
        async with self.db.session() as session:
            return list((await session.scalars(select(Route).order_by(Route.number))).all())
