"""The default explainer registry: the run contract's explainers, plus whatever a user registers.

It is built here, explicitly, rather than filled as a side effect of importing a layer.
"""

from agentjournal.model.explainers import Explain, Explainers, Explanation, brief, default_explanation, humanize
from agentjournal.runs.explain import register_run_explainers

__all__ = ["Explain", "Explainers", "Explanation", "brief", "default_explanation", "explainers", "humanize"]

explainers = Explainers()
"""The registry `explain`, `timeline`, `audit` and the CLI use unless given another."""
register_run_explainers(explainers)
