"""The queue score: one encoding of (priority, queued_at) and its decoding, both in the engine."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assignment import engine


class QueueScoreTests:
    @given(
        priority=st.integers(min_value=0, max_value=9),
        queued_at_ms=st.integers(min_value=0, max_value=9_000_000_000_000),  # until year 2255
    )
    def test_it_decodes_what_it_encodes(self, priority: int, queued_at_ms: int) -> None:
        score = engine.queue_score(priority=priority, queued_at_ms=queued_at_ms)

        assert engine.queue_score_decode(float(score)) == (priority, queued_at_ms)
