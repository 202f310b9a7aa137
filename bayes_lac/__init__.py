"""bayes_lac: Bayesian models of children's social care demand for English local authorities.

Data flows one way, and the sub-packages follow it::

    official files / user CSV -> data (panel) -> model (fit -> run) -> analysis -> studies -> report

The public API is importable from here; each name is loaded on first use, so ``import
bayes_lac`` is quick and does not import PyMC::

    import bayes_lac
    panel = bayes_lac.load_panel()                      # the bundled panel, validated
    run = bayes_lac.fit(panel, "E06000034")             # fit the model (an xarray.DataTree)
    run = bayes_lac.load_run("run.nc")                  # or load a saved run
    bayes_lac.decompose(run, from_year=2010, to_year=2017)
    bayes_lac.forecast(run, horizon=10)
    bayes_lac.costs(...)

See README.md for a quick start.
"""

from importlib import import_module

__version__ = "0.3.0"

#: Public name -> module that defines it (imported lazily, on first attribute access).
_PUBLIC = {
    "load_panel": "bayes_lac.data.panel",
    "LACModel": "bayes_lac.model.fit",
    "fit": "bayes_lac.model.fit",
    "load_run": "bayes_lac.model.results",
    "save_run": "bayes_lac.model.results",
    "decompose": "bayes_lac.analysis.decompose",
    "forecast": "bayes_lac.analysis.forecast",
    "costs": "bayes_lac.analysis.costs",
    "build_report": "bayes_lac.report.board",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bayes_lac' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
