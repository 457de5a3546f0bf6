"""Forensics: explainers, timelines, invariants and bisect, lineage, what-if replay, audit export.

Imported eagerly, unlike the other packages: most of its names are also the names of its modules
(`bisect`, `audit`, `explainers`, ...), which a lazy package would let a submodule import shadow.
"""

from agentjournal.forensics.audit import AuditReport, StreamStatus, audit
from agentjournal.forensics.bisect import BisectResult, Transition, bisect, bisect_journal, bisect_stream
from agentjournal.forensics.explainers import Explainers, Explanation, default_explanation, explainers, humanize
from agentjournal.forensics.invariants import (
    HOLDS,
    Errored,
    Fails,
    FunctionInvariant,
    Holds,
    Invariant,
    InvariantError,
    Invariants,
    invariant,
    invariants,
)
from agentjournal.forensics.lineage import Chain, EffectNode, causes, correlated, effects
from agentjournal.forensics.regrade import RegradeReport, RunGrade, regrade
from agentjournal.forensics.timeline import TimelineEntry, explain_all, render_html, render_markdown, timeline
from agentjournal.forensics.what_if import WhatIfResult, what_if

__all__ = [
    "HOLDS",
    "AuditReport",
    "BisectResult",
    "Chain",
    "EffectNode",
    "Errored",
    "Explainers",
    "Explanation",
    "Fails",
    "FunctionInvariant",
    "Holds",
    "Invariant",
    "InvariantError",
    "Invariants",
    "RegradeReport",
    "RunGrade",
    "StreamStatus",
    "TimelineEntry",
    "Transition",
    "WhatIfResult",
    "audit",
    "bisect",
    "bisect_journal",
    "bisect_stream",
    "causes",
    "correlated",
    "default_explanation",
    "effects",
    "explain_all",
    "explainers",
    "humanize",
    "invariant",
    "invariants",
    "regrade",
    "render_html",
    "render_markdown",
    "timeline",
    "what_if",
]
