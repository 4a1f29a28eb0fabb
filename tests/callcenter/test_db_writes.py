"""The hot path's precompiled writes (``callcenter.db.writes``, ``callcenter.db.joined_lock``) do
what the ORM would: same rows, same conversions, and no model signal is skipped (none exists)."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, transaction
from django.db.models.signals import post_save, pre_save

from agents.models import Agent
from assignment.models import Assignment
from audit.models import AuditEntry
from callcenter.db.joined_lock import lock_joined
from callcenter.db.writes import insert, update_fields
from calls.models import Call
from tests.factories import make_agent, make_call


@pytest.mark.parametrize("model", [Call, Agent, Assignment, AuditEntry])
def test_no_model_written_by_the_precompiled_writes_has_a_save_signal_receiver(model):
    # insert() and update_fields() send no pre_save/post_save: a receiver added later must not be skipped silently.
    assert not pre_save.has_listeners(model) and not post_save.has_listeners(model)


def test_insert_and_update_fields_write_what_save_would(in_alpha):
    entry = AuditEntry(actor="test", action="x.y", object_type="call", object_id="1", before=None, after={"a": 1})
    insert(entry)
    assert entry.pk is not None and entry.created_at is not None  # generated key, auto_now_add
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.after, stored.created_at) == ({"a": 1}, entry.created_at)

    agent = make_agent(name="Ana", status="AVAILABLE")
    before = Agent.objects.get(pk=agent.pk).updated_at
    agent.calls_handled = 7
    update_fields(agent, ["calls_handled", "updated_at"])
    stored_agent = Agent.objects.get(pk=agent.pk)
    assert stored_agent.calls_handled == 7 and stored_agent.updated_at > before

    ghost = Agent(id=uuid.uuid4(), name="nobody")
    with pytest.raises(DatabaseError):
        update_fields(ghost, ["name"])


def test_lock_joined_reads_the_call_its_agent_and_types_with_decrypted_fields(in_alpha):
    agent = make_agent(name="Bea", status="AVAILABLE")
    call = make_call(phone_number="+34600111222")  # the only agent is free: it takes the call
    assert call.status == "ASSIGNED" and call.agent_id == agent.id
    with transaction.atomic():
        locked = lock_joined(Call, pk=call.id, related=("agent", "call_type", "agent__agent_type"), lock=("", "agent"))
        assert locked is not None
        assert locked.phone_number == "+34600111222"  # decrypted, as the ORM gives it
        assert locked.agent is not None and locked.agent.pk == agent.pk
        assert locked.agent.agent_type.slug == agent.agent_type.slug
        assert locked.call_type.slug == call.call_type.slug
        assert lock_joined(Call, pk=uuid.uuid4(), related=("agent",)) is None
