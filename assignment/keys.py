"""Every Redis key of the assignment engine, built here and nowhere else.

A tenant's keys look like ``cc:{<schema>}:<name>``: the braces are a Redis Cluster hash tag, so all of
one tenant's keys live in one slot and a script never crosses tenants.
"""

from __future__ import annotations

from dataclasses import dataclass

# HASH "worker:<node name>" / "beat:<host name>" -> unix time of the last heartbeat. Not a tenant's key:
# the processes serve every tenant.
HEARTBEATS = "cc:heartbeats"


def tenant_key(schema_name: str, name: str) -> str:
    if not schema_name or "{" in schema_name or "}" in schema_name:
        raise ValueError(f"invalid schema name for a Redis key: {schema_name!r}")
    return f"cc:{{{schema_name}}}:{name}"


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """The fixed keys of one tenant, in the order every script expects them (KEYS[1..8])."""

    schema_name: str

    @property
    def epoch(self) -> str:
        """STRING: set by a rebuild; its absence means Redis lost the tenant's state."""
        return tenant_key(self.schema_name, "epoch")

    @property
    def idle(self) -> str:
        """ZSET agent_id -> idle_since (ms since epoch): available agents, longest idle first."""
        return tenant_key(self.schema_name, "idle")

    @property
    def idle_lex(self) -> str:
        """ZSET agent_id -> 0: available agents in id order (round robin)."""
        return tenant_key(self.schema_name, "idle_lex")

    @property
    def queue(self) -> str:
        """ZSET call_id -> (9 - priority) * 1e13 + queued_at_ms: waiting calls, next first."""
        return tenant_key(self.schema_name, "queue")

    @property
    def agent_status(self) -> str:
        """HASH agent_id -> status (AVAILABLE, BUSY, WRAP_UP, BREAK, OFFLINE)."""
        return tenant_key(self.schema_name, "agent_status")

    @property
    def agent_call(self) -> str:
        """HASH agent_id -> call_id, for agents that hold a call."""
        return tenant_key(self.schema_name, "agent_call")

    @property
    def agent_type(self) -> str:
        """HASH agent_id -> agent type id."""
        return tenant_key(self.schema_name, "agent_type")

    @property
    def round_robin(self) -> str:
        """STRING: the agent id last picked by round robin."""
        return tenant_key(self.schema_name, "rr_last")

    @property
    def rebuild_lock(self) -> str:
        """STRING with a TTL: held while the tenant's state is rebuilt from Postgres."""
        return tenant_key(self.schema_name, "rebuild_lock")

    def idle_of_type(self, agent_type_id: int | str) -> str:
        """ZSET agent_id -> idle_since: available agents of one type (best_conversion)."""
        return tenant_key(self.schema_name, f"idle_t:{agent_type_id}")

    def fixed(self) -> list[str]:
        return [
            self.epoch,
            self.idle,
            self.idle_lex,
            self.queue,
            self.agent_status,
            self.agent_call,
            self.agent_type,
            self.round_robin,
        ]

    def metric(self, name: str) -> str:
        """Keys of per-tenant metrics (latency samples, counters)."""
        return tenant_key(self.schema_name, f"m:{name}")
