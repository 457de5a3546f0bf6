"""A metric over time as a PNG or SVG chart, for people who would rather look than read.

matplotlib is an optional extra (`pip install 'agentjournal[plot]'`): it is heavy, and only
this one command needs it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from agentjournal.projections.base import ProjectionError

FORMATS = (".png", ".svg")


def plot_series(series: dict[str, list[tuple[datetime, float | None]]], *, metric: str, by: str, path: Path) -> Path:
    """Draw one line per group; gaps where a bucket had no runs. Returns the written path."""
    if path.suffix.lower() not in FORMATS:
        raise ProjectionError(f"cannot write a plot to {path}: the file name must end in .png or .svg")
    if not path.parent.is_dir():
        raise ProjectionError(f"cannot write a plot to {path}: folder {path.parent} does not exist")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        raise ProjectionError("plots need matplotlib, an optional extra: pip install 'agentjournal[plot]'") from None
    figure, axes = pyplot.subplots(figsize=(9, 4.5), layout="constrained")
    try:
        for group, points in series.items():
            moments: Any = [moment for moment, _ in points]  # matplotlib plots datetimes; its stubs say floats
            axes.plot(
                moments,
                [float("nan") if value is None else value for _, value in points],
                marker="o",
                markersize=3,
                label=group,
            )
        axes.set_title(f"{metric.replace('_', ' ')} by {by}")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        if series:
            axes.legend(fontsize="small")
        figure.autofmt_xdate()
        figure.savefig(path, format=path.suffix.lower().lstrip("."))
    finally:
        pyplot.close(figure)
    return path
