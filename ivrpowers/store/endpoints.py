"""SIP phones and browser users created at run time (`ivrpowers endpoint create`).

The database is their record: Asterisk keeps them in memory only (sorcery.conf), and the controller
pushes them all again whenever it connects (`ivrpowers.endpoints.sync`). A row holds the digest of
the password, never the password.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ivrpowers.store.db import Database
from ivrpowers.store.models import Base, utcnow


class EndpointRecord(Base):
    __tablename__ = "endpoints"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # SIP user name and PJSIP object id
    kind: Mapped[str] = mapped_column(String(16))  # phone, webrtc
    realm: Mapped[str] = mapped_column(String(64))  # the digest was made with it
    password_digest: Mapped[str] = mapped_column(String(160))  # "MD5:<hex of user:realm:password>"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EndpointExists(Exception):
    """An endpoint of that name is already in the database."""


class EndpointRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, name: str, kind: str, realm: str, password_digest: str) -> EndpointRecord:
        record = EndpointRecord(name=name, kind=kind, realm=realm, password_digest=password_digest,
                                created_at=utcnow())
        try:
            async with self.db.session() as session, session.begin():
                session.add(record)
        except IntegrityError as exc:  # the primary key: checked by the database, so two CLIs cannot both win
            raise EndpointExists(name) from exc
        return record

    async def get(self, name: str) -> EndpointRecord | None:
        async with self.db.session() as session:
            return await session.get(EndpointRecord, name)

    async def delete(self, name: str) -> bool:
        async with self.db.session() as session, session.begin():
            deleted = await session.scalar(
                delete(EndpointRecord).where(EndpointRecord.name == name).returning(EndpointRecord.name))
            return deleted is not None

    async def all(self) -> list[EndpointRecord]:
        async with self.db.session() as session:
            return list((await session.scalars(select(EndpointRecord).order_by(EndpointRecord.name))).all())
