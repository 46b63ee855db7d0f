"""Turn trial records into the experiment's result: table, summary, effect plot, files.

Input is the list of trial records the driver journals (docs/architecture.md, "Trial record").
Everything here is plain data in, plain data out, so the same code serves the end of a run
(``lagom``), ``python -m maggy report`` on a finished or half-finished run, and notebooks.

Sign convention: ``delta > 0`` always means "the trial did worse than the base trial", i.e. the
component it removed helped — ``metric - base`` for ``direction="min"``, ``base - metric`` for
``"max"``.
"""

from maggy.results.files import load_records, load_result, save_result, write_tensorboard
from maggy.results.interactions import add_analysis
from maggy.results.plot import load_matplotlib, plot_effects, show_plot
from maggy.results.plot_interactions import plot_interactions
from maggy.results.summary import format_summary
from maggy.results.table import COMPONENT_COLUMNS, TRIAL_COLUMNS, build_result, components_table

__all__ = [
    "TRIAL_COLUMNS",
    "COMPONENT_COLUMNS",
    "build_result",
    "components_table",
    "format_summary",
    "plot_effects",
    "plot_interactions",
    "add_analysis",
    "load_matplotlib",
    "show_plot",
    "write_tensorboard",
    "save_result",
    "load_result",
    "load_records",
]
