"""send_budget: the send rate limits shared by several processes (SEND_BUDGET=postgres)

One row per limited key (a channel's total, one chat, one group) with its GCRA theoretical
arrival time in seconds on the database server's clock. On PostgreSQL the reservation is one
function call, ``send_budget_reserve``: under a transaction-scoped advisory lock per channel
it reads the keys' times, decides when the message may go and, unless that is further away
than the caller will wait, moves every key on; one round trip, and processes on different
machines agree because the clock is the server's (``clock_timestamp()``). On SQLite the table
exists (the schema is one) but is never used: SQLite means one process.

Revision ID: 0009_send_budget
Revises: 0008_inbound_raw
Create Date: 2026-12-01 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_send_budget"
down_revision: str | Sequence[str] | None = "0008_inbound_raw"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The advisory lock's first key: "Pb" (Prima budget); the second is a hash of the channel.
RESERVE = """
CREATE OR REPLACE FUNCTION send_budget_reserve(
    p_lock integer, p_keys text[], p_intervals double precision[],
    p_tolerances double precision[], p_max_wait double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_now double precision;
    v_at double precision;
    v_tat double precision;
BEGIN
    PERFORM pg_advisory_xact_lock(20578, p_lock);
    v_now := extract(epoch FROM clock_timestamp());
    v_at := v_now;
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        SELECT tat INTO v_tat FROM send_budget WHERE key = p_keys[i];
        IF FOUND THEN
            v_at := greatest(v_at, v_tat - p_tolerances[i]);
        END IF;
    END LOOP;
    IF v_at - v_now > p_max_wait THEN
        RETURN v_at - v_now;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        INSERT INTO send_budget (key, tat) VALUES (p_keys[i], v_at + p_intervals[i])
        ON CONFLICT (key) DO UPDATE SET tat = greatest(send_budget.tat, v_at) + p_intervals[i];
    END LOOP;
    RETURN v_at - v_now;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "send_budget",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_send_budget")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(RESERVE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS send_budget_reserve(integer, text[], double precision[], "
                   "double precision[], double precision)")
    op.drop_table("send_budget")
