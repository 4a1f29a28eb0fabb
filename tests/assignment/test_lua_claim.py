"""The Lua scripts on their own, against real Redis (no Postgres): each script's contract."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from assignment import engine
from assignment.keys import TenantKeys, tenant_key

SCHEMA = "lua_contract"
TYPES = (1, 2)


@pytest.fixture
def empty_engine() -> Iterator[None]:
    engine.forget_tenant(schema_name=SCHEMA)
    engine.rebuild(schema_name=SCHEMA, state=engine.RebuildInput([], [], [], []), epoch="e1", type_ids=TYPES)
    yield
    engine.forget_tenant(schema_name=SCHEMA)


def _idle(agent_id: str, type_id: int, ms: int) -> None:
    result = engine.release(
        schema_name=SCHEMA,
        agent_id=agent_id,
        agent_type_id=type_id,
        idle_since_ms=ms,
        expected_call_id=None,
        type_ids=TYPES,
    )
    assert result.outcome == "IDLE", result


def _claim(call_id: str, *, strategy: str = "longest_idle", priority: int = 0, at: int = 1000, max_len: int = 10,
           p_ok: dict[int, float] | None = None, rng: random.Random | None = None) -> engine.ClaimResult:  # fmt: skip
    return engine.claim(
        schema_name=SCHEMA,
        call_id=call_id,
        strategy=strategy,
        priority=priority,
        queued_at_ms=at,
        max_queue_length=max_len,
        type_ids=TYPES,
        p_ok_by_type=p_ok or {1: 0.1, 2: 0.2},
        rng=rng,
    )


class KeyTests:
    def test_it_hash_tags_every_key_with_the_schema(self) -> None:
        keys = TenantKeys("acme")
        for key in [*keys.fixed(), keys.idle_of_type(3), keys.rebuild_lock]:
            assert key.startswith("cc:{acme}:")

    def test_it_refuses_a_schema_that_would_break_the_hash_tag(self) -> None:
        with pytest.raises(ValueError):
            tenant_key("a}b", "idle")


@pytest.mark.usefixtures("empty_engine")
class ClaimScriptTests:
    def test_it_assigns_the_longest_idle_agent(self) -> None:
        _idle("b-agent", 1, 2000)
        _idle("a-agent", 1, 3000)
        _idle("c-agent", 2, 1000)
        result = _claim("call-1")
        assert (result.outcome, result.agent_id, result.candidates, result.idle_since_ms) == (
            "ASSIGNED",
            "c-agent",
            3,
            1000,
        )
        snap = engine.snapshot(schema_name=SCHEMA)
        assert snap.statuses["c-agent"] == "BUSY" and snap.calls["c-agent"] == "call-1"
        assert [agent for agent, _ in snap.idle] == ["b-agent", "a-agent"]

    def test_it_breaks_ties_by_the_lower_agent_id(self) -> None:
        _idle("bbbb", 1, 5000)
        _idle("aaaa", 2, 5000)
        assert _claim("call-1").agent_id == "aaaa"

    def test_it_queues_by_priority_then_age_and_saturates_at_the_limit(self) -> None:
        assert _claim("old-low", priority=0, at=1000, max_len=3).outcome == "QUEUED"
        assert _claim("new-high", priority=5, at=2000, max_len=3).queue_position == 1
        assert _claim("new-low", priority=0, at=3000, max_len=3).queue_position == 3
        saturated = _claim("rejected", at=4000, max_len=3)
        assert (saturated.outcome, saturated.queue_length) == ("SATURATED", 3)
        assert engine.snapshot(schema_name=SCHEMA).queue == ["new-high", "old-low", "new-low"]

    def test_it_rejects_at_once_when_the_queue_length_is_zero(self) -> None:
        assert _claim("c", max_len=0).outcome == "SATURATED"
        assert engine.snapshot(schema_name=SCHEMA).queue == []

    def test_it_refuses_bad_arguments_before_writing(self) -> None:
        _idle("agent", 1, 1000)
        with pytest.raises(redis.exceptions.ResponseError):
            _claim("c", strategy="fastest")
        with pytest.raises(redis.exceptions.ResponseError):
            _claim("c", max_len=-1)
        snap = engine.snapshot(schema_name=SCHEMA)
        assert snap.statuses == {"agent": "AVAILABLE"} and snap.calls == {}

    def test_it_reports_a_duplicate_queued_call(self) -> None:
        assert _claim("same").outcome == "QUEUED"
        assert _claim("same").outcome == "DUPLICATE"
        assert engine.snapshot(schema_name=SCHEMA).queue == ["same"]

    def test_best_conversion_picks_the_best_type_then_the_longest_idle(self) -> None:
        _idle("t1-oldest", 1, 1000)
        _idle("t2-newer", 2, 3000)
        _idle("t2-older", 2, 2000)
        result = _claim("c", strategy="best_conversion", p_ok={1: 0.1, 2: 0.3})
        assert result.agent_id == "t2-older"
        # With equal rates the longest idle of either type wins.
        assert _claim("d", strategy="best_conversion", p_ok={1: 0.2, 2: 0.2}).agent_id == "t1-oldest"

    def test_round_robin_cycles_through_agents_in_id_order(self) -> None:
        for agent in ("a", "b", "c"):
            _idle(agent, 1, 1000)
        picked = []
        for n in range(3):
            result = _claim(f"call-{n}", strategy="round_robin")
            picked.append(result.agent_id)
            engine.release(schema_name=SCHEMA, agent_id=result.agent_id or "", agent_type_id=1, idle_since_ms=9000 + n,
                           expected_call_id=f"call-{n}", type_ids=TYPES)  # fmt: skip
        assert picked == ["a", "b", "c"]
        assert _claim("again", strategy="round_robin").agent_id == "a"

    def test_random_is_reproducible_with_a_seed(self) -> None:
        for agent in "abcdef":
            _idle(agent, 1, 1000)
        first = _claim("x", strategy="random", rng=random.Random(7)).agent_id
        engine.rebuild(schema_name=SCHEMA, state=engine.RebuildInput([(a, 1, 1000) for a in "abcdef"], [], [], []),
                       epoch="e2", type_ids=TYPES)  # fmt: skip
        assert _claim("x", strategy="random", rng=random.Random(7)).agent_id == first

    def test_it_raises_state_lost_without_an_epoch(self) -> None:
        engine.client().delete(TenantKeys(SCHEMA).epoch)
        with pytest.raises(engine.EngineStateLost):
            _claim("c")

    def test_it_asks_for_a_reload_when_an_agent_type_is_unknown(self) -> None:
        engine.rebuild(
            schema_name=SCHEMA, state=engine.RebuildInput([("x", 3, 10)], [], [], []), epoch="e", type_ids=(1, 2, 3)
        )
        with pytest.raises(engine.EngineStaleTypes):
            _claim("c")
        assert engine.snapshot(schema_name=SCHEMA).statuses["x"] == "AVAILABLE"


@pytest.mark.usefixtures("empty_engine")
class ReleaseScriptTests:
    def test_a_freed_agent_takes_the_queue_head_instead_of_idling(self) -> None:
        _claim("low", priority=0, at=1)
        _claim("high", priority=9, at=2)
        result = engine.release(
            schema_name=SCHEMA, agent_id="a", agent_type_id=1, idle_since_ms=5, expected_call_id=None, type_ids=TYPES
        )
        assert (result.outcome, result.call_id) == ("ASSIGNED", "high")
        assert engine.snapshot(schema_name=SCHEMA).idle == []

    def test_it_keeps_the_idle_clock_of_an_agent_already_available(self) -> None:
        _idle("a", 1, 1000)
        again = engine.release(
            schema_name=SCHEMA, agent_id="a", agent_type_id=1, idle_since_ms=9999, expected_call_id=None, type_ids=TYPES
        )
        assert (again.outcome, again.idle_since_ms) == ("ALREADY", 1000)
        assert engine.snapshot(schema_name=SCHEMA).idle == [("a", 1000)]

    def test_it_refuses_to_release_an_agent_holding_another_call(self) -> None:
        _idle("a", 1, 1000)
        _claim("mine")
        wrong = engine.release(
            schema_name=SCHEMA, agent_id="a", agent_type_id=1, idle_since_ms=5, expected_call_id="other", type_ids=TYPES
        )
        assert (wrong.outcome, wrong.call_id) == ("MISMATCH", "mine")
        assert engine.snapshot(schema_name=SCHEMA).calls == {"a": "mine"}


@pytest.mark.usefixtures("empty_engine")
class SetStatusCancelUnclaimTests:
    def test_it_takes_an_agent_out_of_every_idle_set(self) -> None:
        _idle("a", 1, 1000)
        result = engine.set_status(
            schema_name=SCHEMA, agent_id="a", status="BREAK", agent_type_id=1, expected_call_id=None, type_ids=TYPES
        )
        assert (result.outcome, result.previous_status) == ("OK", "AVAILABLE")
        keys = TenantKeys(SCHEMA)
        assert engine.client().zcard(keys.idle) == 0 and engine.client().zcard(keys.idle_of_type(1)) == 0
        assert engine.client().zcard(keys.idle_lex) == 0

    def test_it_refuses_to_take_off_an_agent_on_a_call(self) -> None:
        _idle("a", 1, 1000)
        _claim("c")
        result = engine.set_status(
            schema_name=SCHEMA, agent_id="a", status="OFFLINE", agent_type_id=1, expected_call_id=None, type_ids=TYPES
        )
        assert (result.outcome, result.call_id) == ("BUSY", "c")

    def test_cancel_removes_a_waiting_call_once(self) -> None:
        _claim("c")
        assert engine.cancel(schema_name=SCHEMA, call_id="c", type_ids=TYPES) is True
        assert engine.cancel(schema_name=SCHEMA, call_id="c", type_ids=TYPES) is False

    def test_unclaim_gives_the_agent_back_its_place_in_line(self) -> None:
        _idle("first", 1, 1000)
        _idle("second", 1, 2000)
        claimed = _claim("c")
        assert engine.unclaim(
            schema_name=SCHEMA,
            call_id="c",
            agent_id=claimed.agent_id,
            idle_since_ms=claimed.idle_since_ms,
            type_ids=TYPES,
        )
        assert engine.snapshot(schema_name=SCHEMA).idle == [("first", 1000), ("second", 2000)]
        assert not engine.unclaim(schema_name=SCHEMA, call_id="c", agent_id="first", idle_since_ms=1000, type_ids=TYPES)

    def test_match_pairs_an_idle_agent_with_a_waiting_call(self) -> None:
        _claim("waiting")
        keys = TenantKeys(SCHEMA)
        # Force the broken state an undone claim can leave: an idle agent while a call waits.
        engine.client().zadd(keys.idle, {"a": 100})
        engine.client().hset(keys.agent_type, "a", "1")
        engine.client().hset(keys.agent_status, "a", "AVAILABLE")
        matched = engine.match(schema_name=SCHEMA, type_ids=TYPES)
        assert matched is not None and (matched.call_id, matched.agent_id) == ("waiting", "a")
        assert engine.match(schema_name=SCHEMA, type_ids=TYPES) is None


class RebuildScriptTests:
    def test_it_validates_every_row_before_deleting_anything(self) -> None:
        engine.forget_tenant(schema_name=SCHEMA)
        engine.rebuild(
            schema_name=SCHEMA, state=engine.RebuildInput([("a", 1, 5)], [], [], []), epoch="e", type_ids=TYPES
        )
        with pytest.raises(redis.exceptions.ResponseError):
            engine.rebuild(
                schema_name=SCHEMA, state=engine.RebuildInput([("b", 99, 5)], [], [], []), epoch="f", type_ids=TYPES
            )
        snap = engine.snapshot(schema_name=SCHEMA)
        assert snap.idle == [("a", 5)] and engine.client().get(TenantKeys(SCHEMA).epoch) == "e"
        engine.forget_tenant(schema_name=SCHEMA)


class RebuildLockTests:
    def test_it_releases_only_the_lock_it_holds(self, empty_engine: None) -> None:
        key = TenantKeys(SCHEMA).rebuild_lock
        assert engine.acquire_rebuild_lock(schema_name=SCHEMA, token="first")
        # The first holder's lock expired and a second rebuild took it.
        engine.client().set(key, "second", px=10_000)

        assert engine.release_rebuild_lock(schema_name=SCHEMA, token="first") is False
        assert engine.client().get(key) == "second"
        assert engine.release_rebuild_lock(schema_name=SCHEMA, token="second") is True
        assert engine.client().get(key) is None
        assert engine.acquire_rebuild_lock(schema_name=SCHEMA, token="third")

    def test_it_refuses_an_empty_token(self, empty_engine: None) -> None:
        with pytest.raises(redis.exceptions.ResponseError, match="BADARGS"):
            engine.release_rebuild_lock(schema_name=SCHEMA, token="")
