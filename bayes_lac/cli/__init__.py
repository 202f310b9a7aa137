"""The ``bayes-lac`` command line.

Every subcommand's arguments are declared here, and each is checked as it is parsed (a
probability strictly between 0 and 1, a seed of 0 or more, a four-digit year, ...); the work
is done by a ``*_command(args)`` function in `bayes_lac.cli.commands` (imported only when that
subcommand runs, so ``bayes-lac --help`` is instant).

Whatever goes wrong, the user sees one line on stderr, never a traceback:

* a bad argument or a user error (``BayesLacError``): ``bayes-lac CMD: error: ...``, exit 2;
* an interrupt (Ctrl-C): exit 130;
* anything else (a bug, a full disk): ``bayes-lac CMD: unexpected error: ...`` with a hint to
  run again with ``--debug``, which shows the traceback; exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import sys
import traceback

from bayes_lac import __version__
from bayes_lac.config import CI_PROB, THURROCK_CODE
from bayes_lac.errors import BayesLacError

#: Longest forecast horizon accepted by --horizon (``bayes_lac.analysis.forecast.MAX_HORIZON``;
#: not imported from there, which would load the analysis stack to parse arguments).
MAX_HORIZON = 20
#: Most Monte Carlo draws of an invest-to-save evaluation.
MAX_INTERVENTION_DRAWS = 1_000_000
#: Largest random seed (numpy and PyMC accept any 32-bit unsigned integer).
MAX_SEED = 2**32 - 1
#: Years accepted for --until, --from and --to: four digits.
YEAR_PATTERN = re.compile(r"\d{4}")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (no usage block), exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _whole_number(text: str) -> int:
    if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _int_in(low: int, high: int | None = None, what: str = "a whole number"):
    """argparse type: a whole number from `low` to `high` (no upper bound if None)."""

    def parse(text: str) -> int:
        value = _whole_number(text)
        if value < low or (high is not None and value > high):
            bound = f"from {low:,} to {high:,}" if high is not None else f"of {low:,} or more"
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


def _positive_int(text: str) -> int:
    """argparse type: a whole number above 0 (draws, tuning steps, chains)."""
    if not re.fullmatch(r"\s*\+?\d+\s*", text) or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return int(text)


_seed = _int_in(0, MAX_SEED, "a seed (whole number)")
_workers = _int_in(1, None, "a number of worker processes")
_horizon = _int_in(1, MAX_HORIZON, "a horizon in years")
_intervention_draws = _int_in(1, MAX_INTERVENTION_DRAWS, "a number of draws")
_treedepth = _int_in(1, 15, "a tree depth")


def _year(text: str) -> int:
    """argparse type: a four-digit year, e.g. 2017."""
    if not YEAR_PATTERN.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a four-digit year such as 2017, got {text!r}")
    return int(text)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _probability(text: str) -> float:
    """argparse type: a probability strictly between 0 and 1, e.g. 0.9."""
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a probability strictly between 0 and 1, e.g. 0.9; got {text!r}")
    return value


def _share(text: str) -> float:
    """argparse type: a share from 0 (inclusive) to 1 (exclusive), e.g. 0.001."""
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 up to (not including) 1, e.g. 0.001; got {text!r}")
    return value


def _inflation(text: str) -> float:
    """argparse type: an annual rate of change above -1 and below 1, e.g. 0.02 for 2 % a year."""
    value = _finite(text)
    if not -1 < value < 1:
        raise argparse.ArgumentTypeError(f"expected an annual rate between -1 and 1, e.g. 0.02 for 2%; got {text!r}")
    return value


def _money(text: str) -> float:
    """argparse type: an amount of money above 0 (£)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected an amount in £ above 0, got {text!r}")
    return value


def _year_list(text: str) -> str:
    """argparse type: four-digit years such as 2014-2022 or 2014,2016 (kept as text)."""
    for part in text.split(","):
        if not re.fullmatch(r"\s*\d{4}\s*(-\s*\d{4}\s*)?", part):
            raise argparse.ArgumentTypeError(f"expected four-digit years such as 2014-2022 or 2014,2016; got {text!r}")
    return text


def _horizon_list(text: str) -> str:
    """argparse type: horizons such as 1-5 or 1,3,5, each from 1 to MAX_HORIZON (kept as text)."""
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        numbers = [int(g) for g in match.groups() if g is not None] if match else []
        if not numbers or not all(1 <= n <= MAX_HORIZON for n in numbers):
            raise argparse.ArgumentTypeError(
                f"expected horizons from 1 to {MAX_HORIZON} such as 1-5 or 1,3,5; got {text!r}"
            )
    return text


def _add_debug(p: argparse.ArgumentParser, default=argparse.SUPPRESS) -> None:
    p.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="on an unexpected error, show the full traceback",
    )


def _add_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a saved run (netCDF) from `bayes-lac fit`")


def _add_ci(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ci-prob",
        type=_probability,
        default=CI_PROB,
        help=f"probability of the equal-tailed credible interval (default {CI_PROB})",
    )


def _add_neighbours(p: argparse.ArgumentParser, default: str | None = "2021") -> None:
    p.add_argument(
        "--neighbours",
        default=default,
        help="comparison set: 2021 or 2025 (DfE statistical neighbours), 'all', "
        "or a comma-separated list of ONS codes "
        + ("(default 2021)" if default else "(default all; with --model default, 2021)"),
    )


def _add_sampler_settings(p: argparse.ArgumentParser, steps: str = "", chains: str = "") -> None:
    """--draws, --tune, --chains, --sampler and --seed; `steps`/`chains` name defaults, e.g. " (default 4)"."""
    p.add_argument("--draws", type=_positive_int, help=f"posterior draws per chain{steps}")
    p.add_argument("--tune", type=_positive_int, help=f"tuning steps per chain{steps}")
    p.add_argument("--chains", type=_positive_int, help=f"number of chains{chains}")
    p.add_argument("--sampler", choices=("nutpie", "pymc", "numpyro"), help="NUTS implementation (default nutpie)")
    p.add_argument(
        "--max-treedepth",
        type=_treedepth,
        help="deepest NUTS trajectory tree, 1-15 (default 10); lower caps a quick exploratory fit",
    )
    p.add_argument("--seed", type=_seed, help="random seed (0 or more)")


def _add_fit_settings(p: argparse.ArgumentParser, neighbours: str | None = "2021") -> None:
    p.add_argument("--panel", help="panel CSV (default: the bundled panel)")
    _add_neighbours(p, neighbours)
    p.add_argument("--until", type=_year, help="use only data up to and including this year")
    _add_sampler_settings(p)
    p.add_argument(
        "--priors",
        help="prior file (TOML) or the name of a shipped prior set: default, weak, tight",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bayes-lac",
        description="Bayesian models of looked-after children, children in need and child "
        "protection for English local authorities.",
    )
    parser.add_argument("--version", action="version", version=f"bayes-lac {__version__}")
    _add_debug(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # data --------------------------------------------------------------------------------
    data = sub.add_parser("data", help="build or check a panel")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    build = data_sub.add_parser("build", help="derive the model-ready panel from official files")
    build.add_argument(
        "--source", help="folder of official files (default ../shared/data/official-raw beside a checkout)"
    )
    build.add_argument(
        "--out", help="panel CSV to write (default data/panel.csv in a checkout; required when installed from a wheel)"
    )
    build.set_defaults(handler=("bayes_lac.cli.commands", "build_command"))
    check = data_sub.add_parser("check", help="validate a panel CSV and say what it holds")
    check.add_argument("file", help="panel CSV")
    check.set_defaults(handler=("bayes_lac.cli.commands", "check_command"))

    # compare -----------------------------------------------------------------------------
    compare = sub.add_parser("compare", help="chart an authority against its statistical neighbours and England")
    compare.add_argument("--la", default=THURROCK_CODE, help="ONS code of the authority")
    compare.add_argument("--panel", help="panel CSV (default: the bundled panel)")
    compare.add_argument("--neighbours", default="2021", help="2021 or 2025 (default 2021)")
    compare.add_argument("--out", default="reports", help="folder for the chart and table")
    compare.set_defaults(handler=("bayes_lac.cli.commands", "compare_command"))

    # fit ---------------------------------------------------------------------------------
    fit = sub.add_parser("fit", help="fit the hierarchical model and save the run")
    fit.add_argument("--la", default=THURROCK_CODE, help="ONS code of the target authority")
    fit.add_argument(
        "--model",
        choices=("latent", "default"),
        default="latent",
        help="latent (the default: the latent-state model, fitted on every authority unless --neighbours says "
        "otherwise) or default (the 0.2 model, which sensitivity and the other 0.2 analyses read; its "
        "comparison set defaults to the 2021 neighbours)",
    )
    _add_fit_settings(fit, neighbours=None)
    fit.add_argument("--out", required=True, help="run file to write (netCDF, e.g. run.nc)")
    fit.set_defaults(handler=("bayes_lac.cli.commands", "fit_command"))

    # decompose ---------------------------------------------------------------------------
    dec = sub.add_parser("decompose", help="split a change into demand and supply components")
    _add_run(dec)
    dec.add_argument("--la", help="ONS code (default: the run's target authority)")
    dec.add_argument("--from", dest="from_year", type=_year, required=True, help="start year")
    dec.add_argument("--to", dest="to_year", type=_year, required=True, help="end year")
    _add_ci(dec)
    dec.add_argument("--allow-unconverged", action="store_true", help="use a run that failed its diagnostics")
    dec.add_argument(
        "--fit-to-end",
        action="store_true",
        help="latent runs: fit the run's model again on the data up to --to only, and decompose that fit "
        "(about 2 minutes for a national run on 2 cores)",
    )
    dec.add_argument("--out", required=True, help="CSV to write")
    dec.set_defaults(handler=("bayes_lac.cli.commands", "decompose_command"))

    # forecast ----------------------------------------------------------------------------
    fc = sub.add_parser("forecast", help="forecast counts under scenarios")
    _add_run(fc)
    fc.add_argument("--la", help="ONS code (default: the run's target authority)")
    fc.add_argument("--horizon", type=_horizon, default=10, help=f"years ahead, 1-{MAX_HORIZON} (default 10)")
    fc.add_argument(
        "--scenario",
        default="trend,population-only,converge-england",
        help="comma-separated scenarios: trend, population-only, converge-england, "
        "converge-neighbours, uasc-nts (UASC at the National Transfer Scheme threshold, 0.1%% of children), or target:RATE@YEAR (default trend,population-only,converge-england)",
    )
    fc.add_argument("--population", help="CSV of projected population_0_17 by year (optional)")
    fc.add_argument("--uasc-rate", type=_share, help="future UASC as a share of the child population, e.g. 0.001")
    fc.add_argument(
        "--uasc-path",
        choices=("hold", "stochastic"),
        default="hold",
        help="future UASC without uncertainty (hold, default) or a stochastic path around it drawn from past "
        "trajectories of authorities' published UASC counts, centred on it (stochastic)",
    )
    fc.add_argument(
        "--start",
        choices=("published", "state"),
        help="latent runs: start each forecast where the model puts the authority in the last fitted year "
        "(state, the default: the start the backtest checked) or at that year's published count (published: "
        "its intervals measured too narrow, models/README.md)",
    )
    fc.add_argument(
        "--tails",
        choices=("student", "normal"),
        help="latent runs: the yearly shocks of the authority's level and its year-to-year noise with the "
        "model's variances and the tails of its one-step-ahead errors (student, the default: measured better) "
        "or normal, as in the model's likelihood",
    )
    _add_ci(fc)
    fc.add_argument("--seed", type=_seed, default=0, help="random seed for predictive draws (0 or more)")
    fc.add_argument("--allow-unconverged", action="store_true", help="use a run that failed its diagnostics")
    fc.add_argument("--out", required=True, help="CSV to write")
    fc.set_defaults(handler=("bayes_lac.cli.commands", "forecast_command"))

    # costs -------------------------------------------------------------------------------
    co = sub.add_parser("costs", help="annual cost of looked-after children per scenario")
    _add_run(co)
    co.add_argument("--la", help="ONS code (default: the run's target authority)")
    co.add_argument("--horizon", type=_horizon, default=10, help=f"years ahead, 1-{MAX_HORIZON} (default 10)")
    co.add_argument("--scenario", default="trend,population-only,converge-england")
    co.add_argument("--panel", help="panel CSV holding the unit-cost history (default: the bundled panel)")
    co.add_argument(
        "--inflation",
        type=_inflation,
        default=0.02,
        help="annual inflation assumed after the deflator's last year, -1 to 1 (default 0.02)",
    )
    co.add_argument(
        "--unit-cost-method",
        choices=("model", "flat", "trend", "resample"),
        default="model",
        help="how the unit cost moves: model (default: modelled across all authorities, fitted on the fly, "
        "its uncertainty in the interval); scenarios flat (no real growth), trend (the authority's "
        "log-linear real trend continues) or resample (recent years at random)",
    )
    co.add_argument(
        "--prices",
        choices=("cash", "real"),
        default="cash",
        help="price basis of the CSV and the printout: cash (prices of each year, default) or real "
        "(prices of the base year, GDP deflator)",
    )
    co.add_argument(
        "--deflator",
        help="CSV with columns year (calendar year) and gdp_deflator_index (default: the bundled UK GDP deflator)",
    )
    co.add_argument("--budget", type=_money, help="£ per year: report P(cost > budget)")
    _add_ci(co)
    co.add_argument("--seed", type=_seed, default=0, help="random seed (0 or more)")
    co.add_argument(
        "--allow-unconverged", action="store_true", help="use a run or a unit-cost fit that failed its diagnostics"
    )
    co.add_argument("--out", required=True, help="CSV to write")
    co.set_defaults(handler=("bayes_lac.cli.commands", "costs_command"))

    # intervention ------------------------------------------------------------------------
    iv = sub.add_parser("intervention", help="invest-to-save case for a preventive service")
    iv.add_argument("file", help="intervention file (TOML), e.g. models/interventions/edge_of_care.toml")
    iv.add_argument(
        "--draws",
        type=_intervention_draws,
        help=f"Monte Carlo draws, 1-{MAX_INTERVENTION_DRAWS:,} (default 4000; with --flows-run, the run's draws)",
    )
    iv.add_argument("--no-uncertainty", action="store_true", help="point values only (reproduces the source report)")
    iv.add_argument(
        "--scenario",
        choices=("central", "low", "high"),
        default="central",
        help="which of the file's point cases to use (e.g. Pause has low and high; default central)",
    )
    iv.add_argument(
        "--flows-run",
        help="a flows run from `bayes-lac fit-flows`: take the entries prevented off the authority's forecast "
        "entries and price the care averted from its forecast chance of leaving (instead of the file's duration)",
    )
    iv.add_argument(
        "--la",
        help="ONS code: price the case in the authority's latest money and unit cost of care (the file's "
        "figures moved from its price_year with the deflator); with --flows-run, also the authority whose "
        "forecast is used (default: the run's target authority)",
    )
    iv.add_argument(
        "--price-year",
        type=_year,
        help="with --la: financial year (ending 31 March) to price in (default: the latest with the authority's "
        "unit cost in the panel; with --flows-run, up to the run's last year)",
    )
    iv.add_argument("--panel", help="with --la: panel CSV (default: the bundled panel)")
    iv.add_argument(
        "--deflator",
        help="with --la: CSV with columns year (calendar year) and gdp_deflator_index (default: the bundled UK "
        "GDP deflator)",
    )
    iv.add_argument(
        "--horizon",
        type=_horizon,
        help="with --flows-run: years of care averted counted (default 10)",
    )
    iv.add_argument(
        "--allow-unconverged", action="store_true", help="with --flows-run: use a run that failed its checks"
    )
    _add_ci(iv)
    iv.add_argument("--seed", type=_seed, default=0, help="random seed (0 or more)")
    iv.add_argument("--out", required=True, help="CSV to write")
    iv.set_defaults(handler=("bayes_lac.cli.commands", "intervention_command"))

    # sensitivity -------------------------------------------------------------------------
    se = sub.add_parser("sensitivity", help="prior sensitivity: power-scaling and refits")
    _add_run(se)
    se.add_argument(
        "--prior-sets",
        default="",
        help="comma-separated prior sets or files to refit under (a latent run's: national, local, "
        "no-deprivation, vague-deprivation or a TOML file of entries replacing models/latent_priors.toml's)",
    )
    se.add_argument(
        "--refits",
        default="",
        help="a latent run only: comma-separated refits (national-change, local-change, no-deprivation, "
        "vague-deprivation: the shipped prior sets; comparison-all, comparison-2021, comparison-2025, no-trend, "
        "trend-all, national-damped, uasc-stochastic, uasc-nts) or 'all'; a prior file goes to --prior-sets",
    )
    se.add_argument(
        "--panel",
        help="a latent run only: the panel it was fitted on (default the bundled panel), for comparison-set "
        "refits and unit costs",
    )
    se.add_argument("--workers", type=_workers, default=2, help="parallel processes, 1 or more (default 2)")
    se.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    se.add_argument("--out", required=True, help="CSV to write")
    se.set_defaults(handler=("bayes_lac.cli.commands", "sensitivity_command"))

    # backtest ----------------------------------------------------------------------------
    bt = sub.add_parser(
        "backtest", help="forecast from past origins with the model and baselines; score against what happened"
    )
    bt.add_argument("--panel", help="panel CSV (default: the bundled panel)")
    bt.add_argument("--origins", type=_year_list, default="2014-2022", help="origin years, e.g. 2014-2022")
    bt.add_argument(
        "--horizons",
        type=_horizon_list,
        help="horizons for every measure, e.g. 1-5 (default 1-5, and 8 for looked_after)",
    )
    bt.add_argument("--measures", default="all", help="'all' or comma-separated measures")
    bt.add_argument(
        "--la", default=THURROCK_CODE, help="model: ONS code of the authority whose comparison set is fitted"
    )
    bt.add_argument(
        "--model",
        choices=("latent", "default"),
        default="latent",
        help="model: latent (the default, as a report fits it: the latent-state model, one national fit per "
        "origin; run it with --workers 1, its fits reuse one compiled model) or default (the 0.2 model)",
    )
    bt.add_argument(
        "--neighbours",
        help="model: comparison set fitted at each origin, as in a report: 2021 or 2025 (DfE statistical "
        "neighbours), 'all' (every authority, one national fit per origin) or comma-separated ONS codes "
        "(default all; with --model default, 2021)",
    )
    bt.add_argument(
        "--las",
        default="comparison",
        help="authorities to score: 'comparison' (those the model fits: --la and its --neighbours), 'all' "
        "or comma-separated ONS codes (default comparison)",
    )
    bt.add_argument(
        "--methods",
        default="model,baselines",
        help="comma-separated: model, baselines (all of them) or pooled_growth, ets_damped, rw_drift, "
        "last_value, linear_trend, constant_rate (default model,baselines)",
    )
    bt.add_argument(
        "--quantity", choices=("count", "spend"), default="count", help="what is forecast and scored (default count)"
    )
    bt.add_argument("--draws", type=_positive_int, help="model: posterior draws per chain (default: a report's)")
    bt.add_argument("--tune", type=_positive_int, help="model: tuning steps per chain")
    bt.add_argument("--chains", type=_positive_int, help="model: number of chains")
    bt.add_argument("--sampler", choices=("nutpie", "pymc", "numpyro"), help="model: NUTS implementation")
    bt.add_argument("--max-treedepth", type=_treedepth, help="model: deepest NUTS trajectory tree, 1-15 (default 10)")
    bt.add_argument(
        "--allow-unconverged", action="store_true", help="model: score fits that fail their convergence gate"
    )
    bt.add_argument("--seed", type=_seed, default=0, help="seed of every method's draws (default 0)")
    bt.add_argument(
        "--workers",
        type=_workers,
        help="origins run in this many processes, 1 or more (default 1 for the latent model, whose fits reuse one "
        "compiled model in one process; 2 for --model default)",
    )
    bt.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    bt.add_argument("--rerun", action="store_true", help="rerun origins already scored in the cache beside --out")
    bt.add_argument("--out", required=True, help="per-forecast CSV to write (summaries and a manifest go beside it)")
    bt.set_defaults(handler=("bayes_lac.cli.commands", "backtest_command"))

    # report ------------------------------------------------------------------------------
    rp = sub.add_parser("report", help="board report on one authority (HTML, optional PDF/XLSX)")
    rp.add_argument("--la", default=THURROCK_CODE, help="ONS code of the authority")
    rp.add_argument("--run", help="a saved run; fitted now if not given")
    rp.add_argument(
        "--model",
        choices=("default", "latent"),
        help="the model fitted when --run is not given: latent (the default: the latent-state model, fitted on "
        "every authority unless --neighbours says otherwise) or default (the 0.2 model, Thurrock's 2021 "
        "neighbours unless --neighbours says otherwise); a saved run says which it is",
    )
    _add_fit_settings(rp, neighbours=None)
    rp.add_argument(
        "--out",
        help="HTML file to write (default reports/<authority name>.html, e.g. reports/thurrock.html); "
        "when the model is fitted, the run is saved beside it as <name>_run.nc",
    )
    rp.add_argument(
        "--pdf",
        action="store_true",
        help="also write a PDF beside the HTML, printed by Chromium, Chrome or Edge (found at their usual "
        "places, or set BAYES_LAC_CHROMIUM); without one the HTML and workbook are still written",
    )
    rp.add_argument("--xlsx", action="store_true", help="also write every table to an XLSX workbook")
    rp.add_argument(
        "--all",
        action="store_true",
        help="a report for every authority of a national run (--run) plus index.html, written to the "
        "folder --out (default reports/all), in parallel worker processes",
    )
    rp.add_argument(
        "--flows-run",
        help="a flows run from `bayes-lac fit-flows` holding the authority: adds the section "
        "'Entering and leaving care' and the modelled split of the change to page one",
    )
    rp.add_argument(
        "--budget",
        type=_money,
        help="the council's budget for next year's looked-after spend, £ a year in cash prices: "
        "page one gives the chance of exceeding it (default: this year's cost)",
    )
    rp.add_argument(
        "--highlight",
        help="comparison authorities to draw boldly on the comparison charts, comma-separated ONS codes "
        "or names (every one is named at the end of its line anyway)",
    )
    rp.add_argument(
        "--allow-unconverged",
        action="store_true",
        help="report on a run that failed its diagnostics, marked on every page",
    )
    rp.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run file <name>_run.nc if it exists (without this, an existing run is refused)",
    )
    rp.add_argument(
        "--sensitivity-refits",
        action="store_true",
        help="also refit for the sensitivity appendix (slower): the latent model under four other prior sets and "
        "seven other structural choices (about ten fits), the 0.2 model under the weak and tight prior sets",
    )
    rp.set_defaults(handler=("bayes_lac.cli.commands", "report_command"))

    # flows -------------------------------------------------------------------------------
    ff = sub.add_parser("fit-flows", help="fit the flows model (entries, exits, routes) and save the run")
    ff.add_argument("--la", default=THURROCK_CODE, help="ONS code of the target authority")
    ff.add_argument("--panel", help="panel CSV with started and ceased (default: the bundled panel)")
    _add_neighbours(ff)
    _add_sampler_settings(ff, " (default 2000)", " (default 4)")
    ff.add_argument("--out", required=True, help="flows run file to write (netCDF, e.g. flows.nc)")
    ff.set_defaults(handler=("bayes_lac.cli.commands", "fit_flows_command"))

    fl = sub.add_parser("flows", help="split a change in the stock into entries and exits (by route)")
    fl.add_argument("run", help="a saved flows run (netCDF) from `bayes-lac fit-flows`")
    fl.add_argument("--la", help="ONS code (default: the run's target authority)")
    fl.add_argument("--from", dest="from_year", type=_year, required=True, help="start year (31 March)")
    fl.add_argument("--to", dest="to_year", type=_year, required=True, help="end year (31 March)")
    _add_ci(fl)
    fl.add_argument("--allow-unconverged", action="store_true", help="use a run that failed its diagnostics")
    fl.add_argument("--out", required=True, help="CSV to write")
    fl.set_defaults(handler=("bayes_lac.cli.commands", "flows_command"))

    fo = sub.add_parser("flows-forecast", help="forecast the looked-after stock from entries and exits, by scenario")
    fo.add_argument("run", help="a saved flows run (netCDF) from `bayes-lac fit-flows`")
    fo.add_argument("--la", help="ONS code (default: the run's target authority)")
    fo.add_argument(
        "--horizon", type=_horizon, default=10, help=f"years after the run's last year, 1-{MAX_HORIZON} (default 10)"
    )
    fo.add_argument(
        "--scenario",
        default="trend",
        help="comma-separated: trend, entries-N / entries+N (per cent), exits-as-YEAR, returns-home-neighbours "
        "(default trend)",
    )
    _add_ci(fo)
    fo.add_argument("--seed", type=_seed, default=0, help="seed of the forecast's draws (default 0)")
    fo.add_argument("--allow-unconverged", action="store_true", help="use a run that failed its diagnostics")
    fo.add_argument("--out", required=True, help="CSV to write (one row per scenario, quantity and year)")
    fo.set_defaults(handler=("bayes_lac.cli.commands", "flows_forecast_command"))

    fr = sub.add_parser("flows-reconcile", help="stock change against started minus ceased, per authority and year")
    fr.add_argument("--la", default=THURROCK_CODE, help="ONS code of the authority")
    fr.add_argument("--panel", help="panel CSV with started and ceased (default: the bundled panel)")
    fr.add_argument(
        "--neighbours",
        default="2021",
        help="also show these: 2021 or 2025 (DfE statistical neighbours), 'all', or a list of ONS codes",
    )
    fr.add_argument("--out", required=True, help="CSV to write")
    fr.set_defaults(handler=("bayes_lac.cli.commands", "flows_reconcile_command"))
    return parser


def _add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept --debug after any subcommand as well as before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_debug(sub)
                _add_debug_everywhere(sub)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 done, 1 unexpected error, 2 user error)."""
    parser = build_parser()
    _add_debug_everywhere(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse has printed its one line (or --help / --version); return its status
        return stop.code if isinstance(stop.code, int) else 2
    module_name, function_name = args.handler
    command = args.command
    # Commands draw charts to files only; never open a window.
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        return int(handler(args) or 0)
    except BayesLacError as err:
        if args.debug:
            traceback.print_exc()
        print(f"bayes-lac {command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print(f"bayes-lac {command}: interrupted; no partly written file was left in place", file=sys.stderr)
        return 130
    except Exception as err:  # the last resort of the command line: one line, not a traceback
        if args.debug:
            traceback.print_exc()
        print(
            f"bayes-lac {command}: unexpected error: {type(err).__name__}: {_one_line(err) or '(no message)'} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
