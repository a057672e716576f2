"""Web app: where each stored patient version came from and what it read (data used)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patient_version_source",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("data_used", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["patient_version.id"]),
        sa.PrimaryKeyConstraint("version_id"),
    )


def downgrade() -> None:
    op.drop_table("patient_version_source")
