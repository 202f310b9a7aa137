"""bayes_lac: Bayesian models of children's social care demand for English local authorities.

Data flows one way::

    official files / user CSV -> panel -> fit -> results -> analyses -> tables, charts, reports

See README.md for a quick start.
"""

__version__ = "0.2.0"

from bayes_lac.panel import load_panel  # noqa: E402

__all__ = ["__version__", "load_panel"]
