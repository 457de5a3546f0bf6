"""Context stamping (correlation, causation, actor, tenant, traceparent) and schema evolution."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from agentjournal import EventRegistry, InvalidEventError, Journal, NewEvent
from agentjournal.journal import SchemaRegistryError

from .base import ConformanceBase, new_events


class ToolCalled(BaseModel):
    """Schema version 3 of ToolCalled. v1 was {"name", "args": str}; v2 renamed and nested them."""

    tool: str
    arguments: dict[str, Any]
    timeout_s: float


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"tool": data["name"], "arguments": {"raw": data["args"]}}


def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "timeout_s": 30.0}


class StampingConformance(ConformanceBase):
    @pytest.fixture
    def tracer_provider(self) -> Iterator[TracerProvider]:
        """The OpenTelemetry SDK's provider, used directly (the global one is set once per process)."""
        provider = TracerProvider(shutdown_on_exit=False)
        yield provider
        provider.shutdown()

    # ----- context ---------------------------------------------------------------------------

    def test_context_stamps_every_append_inside_it(self, journal: Journal) -> None:
        with journal.context(correlation_id="corr-1", causation_id="cmd-7", actor="agent:7", tenant_id="acme"):
            journal.append("s", new_events(2))
            journal.append("t", new_events(1))
        journal.append("s", new_events(1))
        stamped = journal.read_all(limit=3)
        for event in stamped:
            assert (event.correlation_id, event.causation_id, event.actor, event.tenant_id) == (
                "corr-1",
                "cmd-7",
                "agent:7",
                "acme",
            )
        after = journal.read_stream("s")[-1]
        assert (after.causation_id, after.actor, after.tenant_id) == (None, None, None)
        assert after.correlation_id == after.event_id  # outside any context: a root event

    def test_nested_contexts_override_only_what_they_name(self, journal: Journal) -> None:
        with journal.context(actor="alice", tenant_id="acme", correlation_id="outer"):
            journal.append("s", NewEvent("Outer"))
            with journal.context(actor="bob"):
                journal.append("s", NewEvent("Inner"))
                with journal.context(tenant_id="globex", correlation_id="innermost"):
                    journal.append("s", NewEvent("Innermost"))
            journal.append("s", NewEvent("OuterAgain"))
        stamps = [
            (event.type, event.actor, event.tenant_id, event.correlation_id) for event in journal.read_stream("s")
        ]
        assert stamps == [
            ("Outer", "alice", "acme", "outer"),
            ("Inner", "bob", "acme", "outer"),
            ("Innermost", "bob", "globex", "innermost"),
            ("OuterAgain", "alice", "acme", "outer"),
        ]

    def test_explicit_event_fields_win_over_the_context(self, journal: Journal) -> None:
        explicit = NewEvent(
            "Noted",
            actor="explicit-actor",
            tenant_id="explicit-tenant",
            correlation_id="explicit-corr",
            causation_id="explicit-cause",
            traceparent="00-11111111111111111111111111111111-2222222222222222-01",
        )
        with journal.context(
            actor="ctx",
            tenant_id="ctx",
            correlation_id="ctx",
            causation_id="ctx",
            traceparent="00-33333333333333333333333333333333-4444444444444444-01",
        ):
            journal.append("s", [explicit, NewEvent("FromContext")])
        first, second = journal.read_stream("s")
        assert (first.actor, first.tenant_id, first.correlation_id, first.causation_id) == (
            "explicit-actor",
            "explicit-tenant",
            "explicit-corr",
            "explicit-cause",
        )
        assert first.traceparent == explicit.traceparent
        assert (second.actor, second.correlation_id, second.traceparent) == (
            "ctx",
            "ctx",
            "00-33333333333333333333333333333333-4444444444444444-01",
        )

    def test_caused_by_continues_the_causal_chain(self, journal: Journal) -> None:
        root = journal.append("run-1", NewEvent("RunStarted")).events[0]
        with journal.context(caused_by=root):
            child = journal.append("run-1", NewEvent("ToolProposed")).events[0]
        with journal.context(caused_by=child):
            grandchild = journal.append("tools", NewEvent("ToolExecuted")).events[0]
        assert (child.correlation_id, child.causation_id) == (root.event_id, root.event_id)
        assert (grandchild.correlation_id, grandchild.causation_id) == (root.event_id, child.event_id)
        assert journal.read_all(correlation_id=root.event_id) == [root, child, grandchild]
        assert journal.read_all(causation_id=child.event_id) == [grandchild]

    def test_the_active_opentelemetry_span_is_stamped(self, journal: Journal, tracer_provider: TracerProvider) -> None:
        tracer = tracer_provider.get_tracer("agentjournal-conformance")
        with tracer.start_as_current_span("agent-step") as span:
            journal.append("s", NewEvent("InSpan"))
            with tracer.start_as_current_span("tool-call") as child_span:
                journal.append("s", NewEvent("InChildSpan"))
        journal.append("s", NewEvent("NoSpan"))
        in_span, in_child, no_span = journal.read_stream("s")
        context, child_context = span.get_span_context(), child_span.get_span_context()
        flags = f"{int(context.trace_flags):02x}"  # sampled, and (OTel >= 1.3x) a random trace id
        assert int(flags, 16) & 1
        assert in_span.traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"
        assert in_child.traceparent == f"00-{context.trace_id:032x}-{child_context.span_id:016x}-{flags}"
        assert no_span.traceparent is None

    # ----- schema evolution ------------------------------------------------------------------

    def test_old_events_are_upcast_on_read(self, journal: Journal, journal_url: str) -> None:
        old = journal.append("run-1", NewEvent("ToolCalled", {"name": "search", "args": "q=refund"})).events[0]
        assert old.schema_version == 1
        journal.registry.add_upcaster("ToolCalled", 1, v1_to_v2)
        journal.registry.add_upcaster("ToolCalled", 2, v2_to_v3)
        journal.registry.register(ToolCalled, schema_version=3)
        new = journal.append("run-1", NewEvent("ToolCalled", ToolCalled(tool="refund", arguments={}, timeout_s=5)))
        assert new.events[0].schema_version == 3
        current = {"tool": "search", "arguments": {"raw": "q=refund"}, "timeout_s": 30.0}
        for read in (journal.read_stream("run-1")[0], journal.read_all()[0], journal.get_event(old.event_id)):
            assert read.schema_version == 3
            assert read.data == current
            assert journal.registry.decode(read) == ToolCalled(**current)
            # It still hashes, exports and compares as the stored event.
            assert read.compute_hash() == read.hash == old.hash
            assert read.to_dict() == old.to_dict()
            assert read == old
        assert journal.read_stream("run-1")[1].data == {"tool": "refund", "arguments": {}, "timeout_s": 5.0}
        # Upcasting happens on read only: the stored event, and its hash, are the original.
        assert journal.verify().ok
        if self.persistent:  # a journal without the upcasters reads what is stored
            with self.open_journal(journal_url) as plain:
                raw = plain.get_event(old.event_id)
                assert (raw.schema_version, raw.data) == (1, {"name": "search", "args": "q=refund"})

    def test_registered_models_are_checked_on_append(self, journal: Journal) -> None:
        class Other(BaseModel):
            value: int

        journal.registry.register(ToolCalled, schema_version=3)
        with pytest.raises(InvalidEventError, match="is a ToolCalled model, not Refunded"):
            journal.append("s", NewEvent("Refunded", ToolCalled(tool="x", arguments={}, timeout_s=1)))
        with pytest.raises(SchemaRegistryError, match="Other is not a registered event type"):
            journal.append("s", NewEvent("Other", Other(value=1)))
        assert journal.head_position() == 0

    def test_a_registry_can_be_given_when_opening(self, journal_url: str) -> None:
        registry = EventRegistry()
        registry.add_upcaster("ToolCalled", 1, v1_to_v2)
        registry.add_upcaster("ToolCalled", 2, v2_to_v3)
        registry.register(ToolCalled, schema_version=3)
        with self.open_journal(journal_url, create=True, registry=registry) as journal:
            assert journal.registry is registry
            journal.append("s", NewEvent("ToolCalled", {"name": "a", "args": "b"}, schema_version=1))
            assert journal.read_stream("s")[0].data["timeout_s"] == 30.0

    def test_upcaster_chains_with_a_gap_or_a_cycle_are_refused(self) -> None:
        gap = EventRegistry()
        gap.add_upcaster("ToolCalled", 1, v1_to_v2)
        with pytest.raises(SchemaRegistryError, match=r"stop at version 2 .* the current schema version is 3"):
            gap.register(ToolCalled, schema_version=3)
        cycle = EventRegistry()
        cycle.add_upcaster("ToolCalled", 1, v1_to_v2)
        with pytest.raises(SchemaRegistryError, match="cycle"):
            cycle.add_upcaster("ToolCalled", 2, v2_to_v3, to_version=1)
        skipping = EventRegistry()
        skipping.register(ToolCalled, schema_version=3)
        skipping.add_upcaster("ToolCalled", 1, lambda data: v2_to_v3(v1_to_v2(data)), to_version=3)
        with pytest.raises(SchemaRegistryError, match="already registered"):
            skipping.add_upcaster("ToolCalled", 1, v1_to_v2)
        with pytest.raises(SchemaRegistryError, match="schema_version must be 1 or more"):
            EventRegistry().register(ToolCalled, schema_version=0)
