"""flow versions carry a message; the flow_publishes log (every change of the live version, for rollback)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_flows = sa.table(
    "flows", sa.column("name", sa.String), sa.column("version", sa.Integer),
    sa.column("published", sa.Boolean), sa.column("published_at", sa.DateTime(timezone=True)),
)
# A Table, not a table(): inserts need the primary key declared to report the ids they made.
_publishes = sa.Table(
    "flow_publishes", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String),
    sa.Column("version", sa.Integer), sa.Column("previous_version", sa.Integer),
    sa.Column("at", sa.DateTime(timezone=True)), sa.Column("rollback", sa.Boolean),
    sa.Column("rollback_to_id", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("flows") as batch_op:
        batch_op.add_column(sa.Column("message", sa.Text(), nullable=True))
    op.create_table(
        "flow_publishes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("rollback", sa.Boolean(), nullable=False),
        sa.Column("rollback_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["rollback_to_id"], ["flow_publishes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flow_publishes") as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_publishes_name"), ["name"], unique=False)
    _log_past_publishes()


def _log_past_publishes() -> None:
    """Rebuild the log from `published_at`, so `flow rollback` works on flows published before it existed.

    Before this revision `published_at` was the last time each version went live, and publishing never
    cleared it: ordered by it (the live version last), those versions are the chain of "live before".
    """
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_flows.c.name, _flows.c.version, _flows.c.published, _flows.c.published_at)
        .where(_flows.c.published_at.is_not(None))
        .order_by(_flows.c.name, _flows.c.published, _flows.c.published_at, _flows.c.version)
    ).all()
    live_names = {row.name for row in rows if row.published}
    previous: dict[str, tuple[int, int]] = {}  # name -> (publish id, version) of the last one logged
    for row in rows:
        if row.name not in live_names:
            continue  # published once but nothing live now: no chain to rebuild
        before = previous.get(row.name)
        inserted = bind.execute(sa.insert(_publishes).values(
            name=row.name, version=row.version, previous_version=before[1] if before else None,
            at=row.published_at, rollback=False, rollback_to_id=before[0] if before else None,
        ))
        key = inserted.inserted_primary_key
        assert key is not None
        previous[row.name] = (key[0], row.version)


def downgrade() -> None:
    with op.batch_alter_table("flow_publishes") as batch_op:
        batch_op.drop_index(batch_op.f("ix_flow_publishes_name"))
    op.drop_table("flow_publishes")
    with op.batch_alter_table("flows") as batch_op:
        batch_op.drop_column("message")
