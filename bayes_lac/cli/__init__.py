"""The ``bayes-lac`` command line.

Every subcommand's arguments are declared here; the work is done by a ``*_command(args)``
function in the module that owns the idea (imported only when that subcommand runs, so
``bayes-lac --help`` is instant). A user error (``BayesLacError``) prints one clear message
and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bayes_lac import __version__
from bayes_lac.config import CI_PROB, THURROCK_CODE
from bayes_lac.errors import BayesLacError


def _positive_int(text: str) -> int:
    """argparse type: a whole number above 0 (draws, tuning steps, chains)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {value}")
    return value


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a saved run (netCDF) from `bayes-lac fit`")


def _add_ci(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ci-prob",
        type=float,
        default=CI_PROB,
        help=f"probability of the equal-tailed credible interval (default {CI_PROB})",
    )


def _add_fit_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--panel", help="panel CSV (default: the bundled panel)")
    p.add_argument(
        "--neighbours",
        default="2021",
        help="comparison set: 2021 or 2025 (DfE statistical neighbours), 'all', "
        "or a comma-separated list of ONS codes (default 2021)",
    )
    p.add_argument("--until", type=int, help="use only data up to and including this year")
    p.add_argument("--draws", type=_positive_int, help="posterior draws per chain")
    p.add_argument("--tune", type=_positive_int, help="tuning steps per chain")
    p.add_argument("--chains", type=_positive_int, help="number of chains")
    p.add_argument("--sampler", choices=("nutpie", "pymc", "numpyro"), help="NUTS implementation (default nutpie)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument(
        "--priors",
        help="prior file (TOML) or the name of a shipped prior set: default, weak, tight",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-lac",
        description="Bayesian models of looked-after children, children in need and child "
        "protection for English local authorities.",
    )
    parser.add_argument("--version", action="version", version=f"bayes-lac {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # data --------------------------------------------------------------------------------
    data = sub.add_parser("data", help="build or check a panel")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    build = data_sub.add_parser("build", help="derive the model-ready panel from official files")
    build.add_argument("--source", help="folder of official files (default ../shared/data/official-raw)")
    build.add_argument("--out", help="panel CSV to write (default data/panel.csv)")
    build.set_defaults(handler=("bayes_lac.cli.commands", "build_command"))
    check = data_sub.add_parser("check", help="validate a panel CSV and say what it holds")
    check.add_argument("file", help="panel CSV")
    check.set_defaults(handler=("bayes_lac.cli.commands", "check_command"))

    # compare -----------------------------------------------------------------------------
    compare = sub.add_parser(
        "compare", help="chart an authority against its statistical neighbours and England"
    )
    compare.add_argument("--la", default=THURROCK_CODE, help="ONS code of the authority")
    compare.add_argument("--panel", help="panel CSV (default: the bundled panel)")
    compare.add_argument("--neighbours", default="2021", help="2021 or 2025 (default 2021)")
    compare.add_argument("--out", default="reports", help="folder for the chart and table")
    compare.set_defaults(handler=("bayes_lac.cli.commands", "compare_command"))

    # fit ---------------------------------------------------------------------------------
    fit = sub.add_parser("fit", help="fit the hierarchical model and save the run")
    fit.add_argument("--la", default=THURROCK_CODE, help="ONS code of the target authority")
    _add_fit_settings(fit)
    fit.add_argument("--out", required=True, help="run file to write (netCDF, e.g. run.nc)")
    fit.set_defaults(handler=("bayes_lac.cli.commands", "fit_command"))

    # decompose ---------------------------------------------------------------------------
    dec = sub.add_parser("decompose", help="split a change into demand and supply components")
    _add_run(dec)
    dec.add_argument("--la", help="ONS code (default: the run's target authority)")
    dec.add_argument("--from", dest="from_year", type=int, required=True, help="start year")
    dec.add_argument("--to", dest="to_year", type=int, required=True, help="end year")
    _add_ci(dec)
    dec.add_argument("--allow-unconverged", action="store_true", help="use a run that failed its diagnostics")
    dec.add_argument("--out", required=True, help="CSV to write")
    dec.set_defaults(handler=("bayes_lac.cli.commands", "decompose_command"))

    # forecast ----------------------------------------------------------------------------
    fc = sub.add_parser("forecast", help="forecast counts under scenarios")
    _add_run(fc)
    fc.add_argument("--la", help="ONS code (default: the run's target authority)")
    fc.add_argument("--horizon", type=int, default=10, help="years ahead, 1-20 (default 10)")
    fc.add_argument(
        "--scenario",
        default="trend,population-only,converge-england",
        help="comma-separated scenarios: trend, population-only, converge-england, "
        "converge-neighbours, or target:RATE@YEAR (default trend,population-only,converge-england)",
    )
    fc.add_argument("--population", help="CSV of projected population_0_17 by year (optional)")
    fc.add_argument("--uasc-rate", type=float, help="future UASC as a share of the child population, e.g. 0.001")
    _add_ci(fc)
    fc.add_argument("--seed", type=int, default=0, help="random seed for predictive draws")
    fc.add_argument("--allow-unconverged", action="store_true", help="use a run that failed its diagnostics")
    fc.add_argument("--out", required=True, help="CSV to write")
    fc.set_defaults(handler=("bayes_lac.cli.commands", "forecast_command"))

    # costs -------------------------------------------------------------------------------
    co = sub.add_parser("costs", help="annual cost of looked-after children per scenario")
    _add_run(co)
    co.add_argument("--la", help="ONS code (default: the run's target authority)")
    co.add_argument("--horizon", type=int, default=10, help="years ahead (default 10)")
    co.add_argument("--scenario", default="trend,population-only,converge-england")
    co.add_argument("--panel", help="panel CSV holding the unit-cost history (default: the bundled panel)")
    co.add_argument("--inflation", type=float, default=0.02, help="annual inflation of unit costs (default 0.02)")
    co.add_argument(
        "--unit-cost-method",
        choices=("flat", "trend", "resample"),
        default="flat",
        help="how the weekly unit cost moves in real terms: flat (no real growth, default), "
        "trend (the authority's log-linear trend continues) or resample (recent years at random)",
    )
    co.add_argument("--budget", type=float, help="£ per year: report P(cost > budget)")
    _add_ci(co)
    co.add_argument("--seed", type=int, default=0)
    co.add_argument("--allow-unconverged", action="store_true", help="use a run that failed its diagnostics")
    co.add_argument("--out", required=True, help="CSV to write")
    co.set_defaults(handler=("bayes_lac.cli.commands", "costs_command"))

    # intervention ------------------------------------------------------------------------
    iv = sub.add_parser("intervention", help="invest-to-save case for a preventive service")
    iv.add_argument("file", help="intervention file (TOML), e.g. models/interventions/edge_of_care.toml")
    iv.add_argument("--draws", type=int, default=4000, help="Monte Carlo draws (default 4000)")
    iv.add_argument("--no-uncertainty", action="store_true", help="point values only (reproduces the source report)")
    iv.add_argument(
        "--scenario",
        choices=("central", "low", "high"),
        default="central",
        help="which of the file's point cases to use (e.g. Pause has low and high; default central)",
    )
    _add_ci(iv)
    iv.add_argument("--seed", type=int, default=0)
    iv.add_argument("--out", required=True, help="CSV to write")
    iv.set_defaults(handler=("bayes_lac.cli.commands", "intervention_command"))

    # sensitivity -------------------------------------------------------------------------
    se = sub.add_parser("sensitivity", help="prior sensitivity: power-scaling and refits")
    _add_run(se)
    se.add_argument("--prior-sets", default="", help="comma-separated prior sets or files to refit under")
    se.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    se.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    se.add_argument("--out", required=True, help="CSV to write")
    se.set_defaults(handler=("bayes_lac.cli.commands", "sensitivity_command"))

    # backtest ----------------------------------------------------------------------------
    bt = sub.add_parser("backtest", help="forecast from past origins with the model and baselines; score against what happened")
    bt.add_argument("--panel", help="panel CSV (default: the bundled panel)")
    bt.add_argument("--origins", default="2014-2022", help="origin years, e.g. 2014-2022")
    bt.add_argument("--horizons", help="horizons for every measure, e.g. 1-5 (default 1-5, and 8 for looked_after)")
    bt.add_argument("--measures", default="all", help="'all' or comma-separated measures")
    bt.add_argument("--las", default="all", help="'all' or comma-separated ONS codes to score")
    bt.add_argument(
        "--methods",
        default="model,baselines",
        help="comma-separated: model, baselines (all of them) or pooled_growth, ets_damped, rw_drift, "
        "last_value, linear_trend, constant_rate (default model,baselines)",
    )
    bt.add_argument("--quantity", choices=("count", "spend"), default="count", help="what is forecast and scored (default count)")
    bt.add_argument("--draws", type=_positive_int, help="model: posterior draws per chain (default: a report's)")
    bt.add_argument("--tune", type=_positive_int, help="model: tuning steps per chain")
    bt.add_argument("--chains", type=_positive_int, help="model: number of chains")
    bt.add_argument("--sampler", choices=("nutpie", "pymc", "numpyro"), help="model: NUTS implementation")
    bt.add_argument("--allow-unconverged", action="store_true", help="model: score fits that fail their convergence gate")
    bt.add_argument("--seed", type=int, default=0, help="seed of every method's draws (default 0)")
    bt.add_argument("--workers", type=int, default=2, help="origins run in this many processes (default 2)")
    bt.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    bt.add_argument("--rerun", action="store_true", help="rerun origins already scored in the cache beside --out")
    bt.add_argument("--out", required=True, help="per-forecast CSV to write (summaries and a manifest go beside it)")
    bt.set_defaults(handler=("bayes_lac.cli.commands", "backtest_command"))

    # report ------------------------------------------------------------------------------
    rp = sub.add_parser("report", help="board report on one authority (HTML, optional PDF/XLSX)")
    rp.add_argument("--la", default=THURROCK_CODE, help="ONS code of the authority")
    rp.add_argument("--run", help="a saved run; fitted now if not given")
    _add_fit_settings(rp)
    rp.add_argument("--out", default="reports/report.html", help="HTML file to write")
    rp.add_argument("--pdf", action="store_true", help="also write a PDF beside the HTML")
    rp.add_argument("--xlsx", action="store_true", help="also write every table to an XLSX workbook")
    rp.add_argument("--allow-unconverged", action="store_true", help="report on a run that failed its diagnostics, marked on every page")
    rp.add_argument(
        "--sensitivity-refits",
        action="store_true",
        help="also refit under the weak and tight prior sets for the sensitivity appendix (slower)",
    )
    rp.set_defaults(handler=("bayes_lac.cli.commands", "report_command"))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module_name, function_name = args.handler
    # Commands draw charts to files only; never open a window.
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        return int(handler(args) or 0)
    except BayesLacError as err:
        print(f"bayes-lac {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bayes-lac: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
