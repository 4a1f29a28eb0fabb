"""The engine on a real Redis Cluster: three masters started on loopback ports by the test, tenants
spread over the slots, every script on one slot; the engine's own tests are then run against it.

The engine's tests (every script, the queue and the sweep, recovery from Postgres) are imported
below and collected here a second time, with the engine pointed at the cluster
(``ENGINE_REDIS_CLUSTER``) by an autouse fixture: the same assertions, another Redis topology.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from assignment import engine
from assignment.keys import TenantKeys
from assignment.services.identity import instance_forget_checks
from tests.assignment.test_lua_claim import *  # noqa: F403  (collected again, on the cluster)
from tests.assignment.test_queue import *  # noqa: F403
from tests.assignment.test_recovery import *  # noqa: F403
from tests.conftest import _reset_tenant
from tests.processes import Child, free_port, wait_for

pytestmark = [pytest.mark.fault]


def _answers(cli: str, port: int, command: str, expected: str) -> bool:
    reply = subprocess.run([cli, "-p", str(port), *command.split()], capture_output=True, text=True)
    return expected in reply.stdout


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, so under 55536."""
    for _ in range(200):
        port = free_port()
        if port < 55536 and _free(port + 10000):
            return port
        port = random.randint(20000, 45000)
        if _free(port) and _free(port + 10000):
            return port
    raise AssertionError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert server and cli, "redis-server and redis-cli are needed for the Redis Cluster test"
    directory = tmp_path_factory.mktemp("cluster")
    ports = [_cluster_port() for _ in range(3)]
    nodes = []
    for port in ports:
        node_dir = directory / str(port)
        node_dir.mkdir()
        nodes.append(
            Child(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node_dir / "nodes.conf"), "--cluster-node-timeout", "5000",
                 "--save", "", "--appendonly", "no", "--dir", str(node_dir)],
                env=dict(os.environ),
                log_path=node_dir / "redis.log",
            ).start()
        )  # fmt: skip
    try:
        for port in ports:
            wait_for(partial(_answers, cli, port, "ping", "PONG"), seconds=20, what=f"cluster node {port}")
        created = subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        for port in ports:
            wait_for(partial(_answers, cli, port, "cluster info", "cluster_state:ok"), seconds=30, what="cluster ok")
        yield ports
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(autouse=True)
def _engine_on_cluster(cluster: list[int], _session_tenants: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from django.conf import settings

    monkeypatch.setattr(settings, "ENGINE_REDIS_URL", f"redis://127.0.0.1:{cluster[0]}/0")
    monkeypatch.setattr(settings, "ENGINE_REDIS_CLUSTER", True)
    monkeypatch.setattr(engine, "_client", None)
    monkeypatch.setattr(engine, "_scripts", {})
    instance_forget_checks()
    for tenant in _session_tenants.values():  # each test starts from a fresh tenant, on the cluster
        _reset_tenant(tenant.schema_name)
    yield
    instance_forget_checks()


class RedisClusterTests:
    def test_every_tenant_script_touches_one_slot_and_tenants_spread_over_the_masters(self, cluster) -> None:
        import redis.cluster

        assert isinstance(engine.client(), redis.cluster.RedisCluster)  # what every test here runs on
        client = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster[0], decode_responses=True)
        try:
            owners = set()
            for index in range(12):
                keys = TenantKeys(f"tenant{index}")
                all_keys = keys.fixed() + [keys.idle_of_type(t) for t in (1, 2, 3)]
                slots = {client.keyslot(k) for k in all_keys}
                assert len(slots) == 1, (keys.schema_name, slots)
                owners.add(client.get_node_from_key(all_keys[0]).port)
            assert len(owners) == 3, owners  # twelve tenants land on all three masters
        finally:
            client.close()
