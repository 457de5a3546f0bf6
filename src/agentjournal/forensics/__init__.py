"""Forensics: explainers, timelines, invariants and bisect, lineage, what-if replay, audit export."""

from agentjournal.forensics.explainers import Explainers, Explanation, default_explanation, explainers, humanize

__all__ = ["Explainers", "Explanation", "default_explanation", "explainers", "humanize"]
