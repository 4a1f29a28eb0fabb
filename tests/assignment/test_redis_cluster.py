"""The engine on a real Redis Cluster: three masters started on loopback ports by the test, tenants
spread over the slots, every script on one slot; the engine's own tests are then run against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import partial

import pytest

from assignment.keys import TenantKeys
from tests.processes import BASE_DIR, Child, free_port, wait_for

pytestmark = [pytest.mark.fault]

# The engine's tests: every script, the queue, recovery from Postgres.
ENGINE_TESTS = [
    "tests/assignment/test_lua_claim.py",
    "tests/assignment/test_queue.py",
    "tests/assignment/test_recovery.py",
]


def _answers(cli: str, port: int, command: str, expected: str) -> bool:
    reply = subprocess.run([cli, "-p", str(port), *command.split()], capture_output=True, text=True)
    return expected in reply.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert server and cli, "redis-server and redis-cli are needed for the Redis Cluster test"
    directory = tmp_path_factory.mktemp("cluster")
    ports = [free_port() for _ in range(3)]
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


class RedisClusterTests:
    def test_every_tenant_script_touches_one_slot_and_tenants_spread_over_the_masters(self, cluster) -> None:
        import redis.cluster

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

    def test_the_engine_s_tests_pass_against_the_cluster(self, cluster) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTEST_VERSION", "PYTEST_CURRENT_TEST", "TEST_DATABASE_NAME")
        }
        env.update(ENGINE_REDIS_URL=f"redis://127.0.0.1:{cluster[0]}/0", ENGINE_REDIS_CLUSTER="true")
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *ENGINE_TESTS, "-q", "-p", "no:cacheprovider", "--no-cov", "-x"],
            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        tail = result.stdout[-3000:] + result.stderr[-2000:]
        assert result.returncode == 0, tail
        assert " passed" in result.stdout and "failed" not in result.stdout, tail
        print(result.stdout.strip().splitlines()[-1])
