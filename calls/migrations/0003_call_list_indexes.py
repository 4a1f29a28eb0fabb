# The foreign keys' own indexes (on agent_id, on call_type_id) give way to indexes that also order by
# created_at. Dropped by name: Django's AlterField(db_index=False) drops every single-column index on
# the column it does not know as an index of Meta.indexes, and that includes the partial unique
# index of the call_one_active_per_agent constraint (on agent_id), which must stay.

import django.db.models.deletion
from django.db import migrations, models

import calls.models


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0002_agent_simulated"),
        ("calls", "0002_call_simulated"),
        ("simulation", "0002_clock_kind_overrides"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="call",
                    name="agent",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=calls.models.protect_open_calls,
                        related_name="calls",
                        to="agents.agent",
                    ),
                ),
                migrations.AlterField(
                    model_name="call",
                    name="call_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="calls",
                        to="calls.calltype",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql="DROP INDEX IF EXISTS calls_call_agent_id_bc37e002",
                    reverse_sql="CREATE INDEX calls_call_agent_id_bc37e002 ON calls_call (agent_id)",
                ),
                migrations.RunSQL(
                    sql="DROP INDEX IF EXISTS calls_call_call_type_id_ecd449ca",
                    reverse_sql="CREATE INDEX calls_call_call_type_id_ecd449ca ON calls_call (call_type_id)",
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="call",
            index=models.Index(fields=["agent", "-created_at"], name="call_agent_created_idx"),
        ),
        migrations.AddIndex(
            model_name="call",
            index=models.Index(fields=["call_type", "-created_at"], name="call_type_created_idx"),
        ),
    ]
