"""CDS Hooks: issued cards, the assessments behind them, feedback, JWT ids seen

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cds_jti",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("cds_jti", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cds_jti_expires"), ["expires"], unique=False)
    op.create_table(
        "cds_assessment",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("iss", sa.String(length=300), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("policy", sa.String(length=200), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cds_assessment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cds_assessment_patient_ref"), ["patient_ref"], unique=False
        )

    op.create_table(
        "cds_card",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("hook", sa.String(length=64), nullable=False),
        sa.Column("hook_instance", sa.String(length=64), nullable=False),
        sa.Column("iss", sa.String(length=300), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.Column("patient_ref", sa.String(length=64), nullable=False),
        sa.Column("indicator", sa.String(length=10), nullable=False),
        sa.Column("summary", sa.String(length=140), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("assessment_id", sa.String(length=36), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["cds_assessment.id"],
        ),
        sa.PrimaryKeyConstraint("uuid"),
    )
    with op.batch_alter_table("cds_card", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cds_card_hook_instance"), ["hook_instance"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cds_card_patient_ref"), ["patient_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_cds_card_service"), ["service"], unique=False)

    op.create_table(
        "cds_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_uuid", sa.String(length=36), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("accepted", sa.JSON(), nullable=False),
        sa.Column("reason", sa.JSON(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("outcome_timestamp", sa.String(length=40), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_uuid"],
            ["cds_card.uuid"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cds_feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cds_feedback_card_uuid"), ["card_uuid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cds_jti", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_jti_expires"))
    op.drop_table("cds_jti")
    with op.batch_alter_table("cds_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_feedback_card_uuid"))

    op.drop_table("cds_feedback")
    with op.batch_alter_table("cds_card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_card_service"))
        batch_op.drop_index(batch_op.f("ix_cds_card_patient_ref"))
        batch_op.drop_index(batch_op.f("ix_cds_card_hook_instance"))

    op.drop_table("cds_card")
    with op.batch_alter_table("cds_assessment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cds_assessment_patient_ref"))

    op.drop_table("cds_assessment")
