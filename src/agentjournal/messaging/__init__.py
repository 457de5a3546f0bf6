"""Messaging: side effects exactly once, and coordination between nodes.

The lease registry; the outbox (messages written with the events that cause them), relays
that deliver them at least once, receivers that act on each at most once, process managers
and sagas. Names load on first use (PEP 562), so importing the package costs almost nothing.
"""

from typing import TYPE_CHECKING

from agentjournal._lazy import lazy_exports

if TYPE_CHECKING:
    from agentjournal.messaging.checkpoints import OutboxError as OutboxError
    from agentjournal.messaging.leases import DEFAULT_TTL as DEFAULT_TTL
    from agentjournal.messaging.leases import Lease as Lease
    from agentjournal.messaging.leases import LeaseInfo as LeaseInfo
    from agentjournal.messaging.leases import LeaseKeeper as LeaseKeeper
    from agentjournal.messaging.leases import LeaseLostError as LeaseLostError
    from agentjournal.messaging.leases import LeaseRegistry as LeaseRegistry
    from agentjournal.messaging.leases import default_node as default_node
    from agentjournal.messaging.nats import NatsConsumer as NatsConsumer
    from agentjournal.messaging.nats import NatsTransport as NatsTransport
    from agentjournal.messaging.outbox import Dispatch as Dispatch
    from agentjournal.messaging.outbox import Message as Message
    from agentjournal.messaging.outbox import append_with_outbox as append_with_outbox
    from agentjournal.messaging.outbox import dispatch_id as dispatch_id
    from agentjournal.messaging.process_managers import Decision as Decision
    from agentjournal.messaging.process_managers import ProcessManager as ProcessManager
    from agentjournal.messaging.process_managers import ProcessManagerRunner as ProcessManagerRunner
    from agentjournal.messaging.receivers import DedupeRing as DedupeRing
    from agentjournal.messaging.receivers import DispatchBeyondRingError as DispatchBeyondRingError
    from agentjournal.messaging.receivers import Received as Received
    from agentjournal.messaging.receivers import Receiver as Receiver
    from agentjournal.messaging.receivers import Receiving as Receiving
    from agentjournal.messaging.relays import Backoff as Backoff
    from agentjournal.messaging.relays import Failure as Failure
    from agentjournal.messaging.relays import HandlerTransport as HandlerTransport
    from agentjournal.messaging.relays import Relay as Relay
    from agentjournal.messaging.relays import RelayRunner as RelayRunner
    from agentjournal.messaging.relays import RelayStatus as RelayStatus
    from agentjournal.messaging.relays import Transport as Transport
    from agentjournal.messaging.relays import UndeliverableError as UndeliverableError
    from agentjournal.messaging.relays import failures as failures
    from agentjournal.messaging.relays import outbox_status as outbox_status
    from agentjournal.messaging.relays import retry_dead_letters as retry_dead_letters
    from agentjournal.messaging.sagas import SagaDefinition as SagaDefinition
    from agentjournal.messaging.sagas import SagaDefinitionError as SagaDefinitionError
    from agentjournal.messaging.sagas import SagaError as SagaError
    from agentjournal.messaging.sagas import SagaNotFoundError as SagaNotFoundError
    from agentjournal.messaging.sagas import SagaResult as SagaResult
    from agentjournal.messaging.sagas import SagaRunner as SagaRunner
    from agentjournal.messaging.sagas import SagaState as SagaState
    from agentjournal.messaging.sagas import SagaStateError as SagaStateError
    from agentjournal.messaging.sagas import Step as Step
    from agentjournal.messaging.sagas import StepContext as StepContext
    from agentjournal.messaging.sagas import StepError as StepError
    from agentjournal.messaging.sagas import StepState as StepState
    from agentjournal.messaging.sagas import current_step as current_step
    from agentjournal.messaging.sagas import list_sagas as list_sagas
    from agentjournal.messaging.sagas import load_saga as load_saga
    from agentjournal.messaging.sagas import load_sagas as load_sagas
    from agentjournal.messaging.sagas import register_saga_explainers as register_saga_explainers
    from agentjournal.messaging.sagas import saga_stream as saga_stream

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "agentjournal.messaging.checkpoints": ("OutboxError",),
        "agentjournal.messaging.leases": (
            "DEFAULT_TTL",
            "Lease",
            "LeaseInfo",
            "LeaseKeeper",
            "LeaseLostError",
            "LeaseRegistry",
            "default_node",
        ),
        "agentjournal.messaging.nats": ("NatsConsumer", "NatsTransport"),
        "agentjournal.messaging.outbox": ("Dispatch", "Message", "append_with_outbox", "dispatch_id"),
        "agentjournal.messaging.process_managers": ("Decision", "ProcessManager", "ProcessManagerRunner"),
        "agentjournal.messaging.receivers": (
            "DedupeRing",
            "DispatchBeyondRingError",
            "Received",
            "Receiver",
            "Receiving",
        ),
        "agentjournal.messaging.relays": (
            "Backoff",
            "Failure",
            "HandlerTransport",
            "Relay",
            "RelayRunner",
            "RelayStatus",
            "Transport",
            "UndeliverableError",
            "failures",
            "outbox_status",
            "retry_dead_letters",
        ),
        "agentjournal.messaging.sagas": (
            "SagaDefinition",
            "SagaDefinitionError",
            "SagaError",
            "SagaNotFoundError",
            "SagaResult",
            "SagaRunner",
            "SagaState",
            "SagaStateError",
            "Step",
            "StepContext",
            "StepError",
            "StepState",
            "current_step",
            "list_sagas",
            "load_saga",
            "load_sagas",
            "register_saga_explainers",
            "saga_stream",
        ),
    },
)
