"""Agents and span helpers shared by the tracing tests and their child processes (not collected)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from agentjournal.agents import Agent, Policy, ScriptedModel, call, tool
from agentjournal.agents.policy import seed_policy_path

SENT: list[str] = []


@tool
def lookup(key: str) -> dict[str, Any]:
    """Looks a key up."""
    return {"key": key, "value": f"value of {key}"}


@tool
def query_sql(sql: str) -> dict[str, Any]:
    """Runs a query."""
    return {"rows": []}


@tool(side_effecting=True)
def send_email(recipient: str, subject: str, body: str, idempotency_key: str = "") -> dict[str, Any]:
    """Sends an email (once per idempotency key)."""
    if idempotency_key not in SENT:
        SENT.append(idempotency_key)
    return {"sent": True}


@tool
def explodes(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot: {reason}")


EXTERNAL = call("send_email", recipient="partner@example.org", subject="stuck orders", body="please check")
LOOKUP = call("lookup", key="ORD-1")
DROP = call("query_sql", sql="DROP TABLE orders")


def traced_agent(*script: Any) -> Agent:
    """An agent under seed 001's policy: external email waits for a human, destructive SQL is denied."""
    return Agent(
        "tester",
        "You test tracing.",
        ScriptedModel(list(script)),
        tools=[lookup, query_sql, send_email, explodes],
        policy=Policy.load(seed_policy_path()),
    )


def waiting_agent() -> Agent:
    """Looks up, asks to email a partner (held for a human), then answers: the same in every process."""
    return traced_agent(LOOKUP, EXTERNAL, "the partner is informed")


@contextmanager
def global_provider(provider: trace.TracerProvider | None) -> Iterator[None]:
    """OpenTelemetry's global tracer provider for one test; None: none configured (the default proxy).

    The global can be set once per process, so, as OpenTelemetry's own test utilities do, the
    set-once guard is reset here, and the previous provider put back afterwards.
    """
    saved = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE)
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    if provider is not None:
        trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


@contextmanager
def in_memory_spans() -> Iterator[InMemorySpanExporter]:
    """An SDK TracerProvider exporting to memory, as the global provider."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with global_provider(provider):
        yield exporter
    provider.shutdown()


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as plain data (what a child process prints)."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": event.name, "attributes": dict(event.attributes or {})} for event in span.events],
        "links": [f"{link.context.trace_id:032x}-{link.context.span_id:016x}" for link in span.links],
        "status": span.status.status_code.name,
        "start": span.start_time,
        "end": span.end_time,
    }
