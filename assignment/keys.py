"""Every Redis key of the assignment engine, built here and nowhere else.

A tenant's keys look like ``cc:{<schema>}:<name>``: the braces are a Redis Cluster hash tag, so all of
one tenant's keys live in one slot and a script never crosses tenants.

Two pools per tenant: real traffic (``cc:{<schema>}:idle``, ...) and simulated traffic
(``cc:{<schema>}:sim:idle``, ...). Each pool has its own epoch, idle sets, queue and agent hashes, and
a script only ever receives one pool's keys, so a real call can never be handed to a simulated agent
nor a simulated call to a real one. The rebuild lock and the metrics are per tenant.
"""

from __future__ import annotations

from dataclasses import dataclass

# HASH "worker:<node name>" / "beat:<host name>" -> unix time of the last heartbeat. Not a tenant's key:
# the processes serve every tenant.
HEARTBEATS = "cc:heartbeats"
# STRING: the instance id of the deployment (its Postgres database) this Redis serves. A process
# whose database has another id refuses to sweep or rebuild here (assignment.services.identity).
INSTANCE = "cc:instance"


def tenant_key(schema_name: str, name: str) -> str:
    if not schema_name or "{" in schema_name or "}" in schema_name:
        raise ValueError(f"invalid schema name for a Redis key: {schema_name!r}")
    return f"cc:{{{schema_name}}}:{name}"


POOLS = (False, True)  # real traffic, simulated traffic


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """The fixed keys of one tenant's pool (real or simulated traffic), in the order every script
    expects them (KEYS[1..8])."""

    schema_name: str
    simulated: bool = False

    def _pooled(self, name: str) -> str:
        return tenant_key(self.schema_name, f"sim:{name}" if self.simulated else name)

    @property
    def epoch(self) -> str:
        """STRING: set by a rebuild; its absence means Redis lost the tenant's state."""
        return self._pooled("epoch")

    @property
    def idle(self) -> str:
        """ZSET agent_id -> idle_since (ms since epoch): available agents, longest idle first."""
        return self._pooled("idle")

    @property
    def idle_lex(self) -> str:
        """ZSET agent_id -> 0: available agents in id order (round robin)."""
        return self._pooled("idle_lex")

    @property
    def queue(self) -> str:
        """ZSET call_id -> (9 - priority) * 1e13 + queued_at_ms: waiting calls, next first."""
        return self._pooled("queue")

    @property
    def agent_status(self) -> str:
        """HASH agent_id -> status (AVAILABLE, BUSY, WRAP_UP, BREAK, OFFLINE)."""
        return self._pooled("agent_status")

    @property
    def agent_call(self) -> str:
        """HASH agent_id -> call_id, for agents that hold a call."""
        return self._pooled("agent_call")

    @property
    def agent_type(self) -> str:
        """HASH agent_id -> agent type id."""
        return self._pooled("agent_type")

    @property
    def round_robin(self) -> str:
        """STRING: the agent id last picked by round robin."""
        return self._pooled("rr_last")

    @property
    def rebuild_lock(self) -> str:
        """STRING with a TTL: held while the tenant's state (both pools) is rebuilt from Postgres."""
        return tenant_key(self.schema_name, "rebuild_lock")

    def idle_of_type(self, agent_type_id: int | str) -> str:
        """ZSET agent_id -> idle_since: available agents of one type (best_conversion)."""
        return self._pooled(f"idle_t:{agent_type_id}")

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
