"""LangGraph: a checkpointer backed by the journal, whose graph runs are also runs of the contract.

    saver = JournalSaver(journal)
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"messages": [...]}, {"configurable": {"thread_id": "t-1"}})

See docs/integrations/langgraph.md.
"""

try:
    import langgraph.checkpoint.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the package
    raise ImportError(
        "the LangGraph integration needs the `langgraph` extra: pip install 'agentjournal[langgraph]'"
    ) from exc

from agentjournal.integrations.langgraph.explain import register_langgraph_explainers
from agentjournal.integrations.langgraph.saver import THREAD_PREFIX, JournalSaver, thread_stream

__all__ = ["THREAD_PREFIX", "JournalSaver", "register_langgraph_explainers", "thread_stream"]
