"""Backtests: forecast from past origins with every method, and score against what happened.

For each origin year ``T`` every forecaster (the model and the baselines of
`bayes_lac.studies.baselines`, behind one interface described there) gets the panel cut at
``T`` and forecasts ``h`` years ahead; the forecasts are scored (`bayes_lac.studies.scoring`)
against the figures DfE later published for ``T + h``, on exactly the same cells for every
method.

What is scored
--------------
* Origins 2014-2022 by default. A measure is scored from the first origin with
  `MIN_HISTORY_YEARS` years of its data (children in need and child protection start in 2013,
  so from 2016); horizons 1-5, plus 8 for looked-after children (`DEFAULT_HORIZONS`).
  Forecasts of years after the last published one can never be scored: they are left out,
  with a note.
* Cells: the authorities the model fits (its comparison set; every local authority in the
  panel when it is fitted nationally or without the model), or those asked for, that exist at the origin
  (has a row for that year) x measure x horizon. A cell a method cannot forecast (too short a
  history, a count suppressed at the origin) or whose outcome is not published (an authority
  abolished before ``T + h``) is kept with empty scores and counted as missing.
* A forecaster whose fit fails its convergence gate (`UnconvergedFitError`) has that origin
  reported as failed in the origins table and none of its cells scored.
* Each row also carries the figure DfE first published for ``T + h`` where the panel keeps it
  (looked-after children, 2010-2017) and the scores against it: a sensitivity row for the
  revisions (see `vintage_table`).
* Each row carries two strata for split tables: ``size_quartile`` (quartile of the authority's
  child population at the origin among all authorities that year) and ``uasc_change`` (did the
  UASC share of the authority's looked-after children rise, fall or stay within
  `UASC_FLAT_BAND` between ``T`` and ``T + h``).

Operations
----------
Origins run in parallel through `bayes_lac.studies.parallel.run_tasks` (local processes or a
Dask cluster), with a progress bar over origins. With a ``cache_dir`` each origin's scored
rows and status are written there as soon as the origin is done, and an origin already there
is read back instead of being run again (unless ``rerun=True``); the cache records a
fingerprint of the settings, panel and forecasters, and a mismatch is an error rather than a
silent mix. A Dask cluster's workers must see the cache folder. Each origin records the time
spent fitting, forecasting and scoring per method.

Shipped results
---------------
`save_backtest` writes the per-forecast table and its summaries beside a JSON manifest with
the package version and the hash of the model's configuration (`current_model_signature`);
`stale_reasons` says why a saved backtest no longer describes the package's model (a test
runs it on ``models/backtest``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_lac import __version__
from bayes_lac.config import BACKTEST_DIR, MEASURES, THURROCK_CODE
from bayes_lac.errors import (
    BayesLacError,
    PanelError,
    UnconvergedFitError,
    UnknownAuthorityError,
    UsageError,
)
from bayes_lac.files import write_csv, write_text
from bayes_lac.studies.baselines import (
    BASELINES,
    FIRST_RELEASE_COLUMNS,
    MODEL_METHOD,
    check_draws,
    default_baselines,
    empty_draws,
    local_authorities,
    method_name,
    outcome_column,
    wide,
)
from bayes_lac.studies.scoring import (
    LEVELS,
    SCORE_COLUMNS,
    coverage_table,
    crps_ratios,
    level_name,
    measure_rank,
    pit_histogram_table,
    pit_histograms,
    pooled_coverage,
    score_samples,
    span,
    summarise_backtest,
)
from bayes_lac.summaries import Finding

__all__ = [
    "BASELINES",
    "DEFAULT_HORIZONS",
    "DEFAULT_ORIGINS",
    "FORECAST_COLUMNS",
    "LEVELS",
    "MODEL_METHOD",
    "Backtest",
    "LatentModelForecaster",
    "ModelForecaster",
    "backtest",
    "check_shipped_backtest",
    "checked_horizons",
    "coverage_table",
    "crps_ratios",
    "current_model_signature",
    "local_authorities",
    "parse_years",
    "pit_histogram_table",
    "pit_histograms",
    "plot_calibration",
    "pooled_coverage",
    "save_backtest",
    "stale_reasons",
    "summarise_backtest",
    "target_finding",
    "vintage_table",
]

#: Origins of the full backtest (31 March years).
DEFAULT_ORIGINS: tuple[int, ...] = tuple(range(2014, 2023))
#: Horizons scored per measure (years ahead); 8 years only where outcomes exist (origins to 2017).
DEFAULT_HORIZONS: dict[str, tuple[int, ...]] = {
    "looked_after": (1, 2, 3, 4, 5, 8),
    "children_in_need": (1, 2, 3, 4, 5),
    "child_protection": (1, 2, 3, 4, 5),
}
#: A measure is scored from the first origin with this many years of its data.
MIN_HISTORY_YEARS: int = 4
#: Labels of the size strata: quartiles of the child population (0-17) at the origin.
SIZE_QUARTILES: tuple[str, ...] = ("Q1 smallest", "Q2", "Q3", "Q4 largest")
#: Change of the UASC share of looked-after children (share points) within which it is "flat".
UASC_FLAT_BAND: float = 0.01
#: Targets set in advance (issue 12), not tuned to: 90 % coverage in this range at every
#: horizon and measure; PIT mean in this range; CRPS at most this multiple of the pooled
#: baseline's at these horizons for looked-after children.
COVERAGE_90_TARGET: tuple[float, float] = (0.87, 0.93)
PIT_MEAN_TARGET: tuple[float, float] = (0.45, 0.55)
CRPS_TARGET_RATIO: float = 0.90
CRPS_TARGET_BASELINE: str = "pooled_growth"
CRPS_TARGET_HORIZONS: tuple[int, ...] = (2, 3, 4, 5)

#: Columns of the per-forecast table, in order. Units: children (quantity "count") or £ per
#: year, cash (quantity "spend"); pit in [0, 1].
FORECAST_COLUMNS: tuple[str, ...] = (
    "method",
    "quantity",
    "measure",
    "la_code",
    "origin",
    "horizon",
    "year",
    "value_at_origin",
    "size_quartile",
    "uasc_change",
    "observed",
    *SCORE_COLUMNS,
    "observed_first_release",
    "pit_first_release",
    "crps_first_release",
)
#: Columns of the origins table (one row per origin and method).
ORIGIN_COLUMNS: tuple[str, ...] = (
    "origin",
    "method",
    "status",
    "message",
    "fit_seconds",
    "forecast_seconds",
    "scoring_seconds",
    "from_cache",
)


# --------------------------------------------------------------------------------------
# The model as a forecaster


class _FittedForecaster:
    """What the model forecasters share: their configuration's hash and signature, the target
    authority, the measures fitted at an origin and the authorities a fit models. A subclass
    has ``name``, ``target``, ``neighbours``, ``fit_measures`` and ``config()``."""

    def config_hash(self) -> str:
        """`config_hash` of `config`."""
        return config_hash(self.config())

    def signature(self) -> str:
        return f"{self.name}:{__version__}:{self.config_hash()}"

    def target_in(self, panel: pd.DataFrame) -> str:
        """The target authority fitted on `panel` (see `target`)."""
        if self.target is not None:
            return self.target
        fitted_las = local_authorities(panel)
        return THURROCK_CODE if THURROCK_CODE in fitted_las else fitted_las[0]

    def measures_at(self, panel: pd.DataFrame, origin: int) -> tuple[str, ...]:
        """The measures of `fit_measures` fitted at `origin`: those with at least
        `MIN_HISTORY_YEARS` years of data up to it (see `fit_measures`)."""
        cut = panel[panel["year"].astype(int) <= int(origin)]

        def scored_from(measure: str) -> float:
            try:
                return first_origin(cut, measure)  # the plan's rule, so fitted = scored
            except PanelError:  # no data up to the origin
                return np.inf

        chosen = tuple(m for m in self.fit_measures if scored_from(m) <= int(origin))
        if not chosen:
            raise PanelError(
                f"backtest origin {origin}: no measure of {', '.join(self.fit_measures)} has {MIN_HISTORY_YEARS} "
                "years of data up to it"
            )
        return chosen

    def fitted_for(self, panel: pd.DataFrame, origin: int, measures) -> tuple[str, ...]:
        """`measures_at` `origin`, refusing `measures` asked for that are not fitted there."""
        fit_measures = self.measures_at(panel, origin)
        short = [m for m in measures if m not in fit_measures]
        if short:
            raise BayesLacError(
                f"backtest origin {origin}: {', '.join(short)} have fewer than {MIN_HISTORY_YEARS} years of data "
                "up to it; they are neither fitted nor scored there"
            )
        return fit_measures

    def comparison_las(self, panel: pd.DataFrame) -> tuple[str, ...]:
        """The authorities each fit models (and so forecasts): the target and its comparison set."""
        from bayes_lac.model.data import comparison_set

        codes, _, _ = comparison_set(panel, self.target_in(panel), self.neighbours)
        return tuple(codes)


@dataclass(frozen=True)
class ModelForecaster(_FittedForecaster):
    """The package's model (`bayes_lac.model.fit.LACModel`) as a backtest forecaster.

    At each origin the model is fitted once on the panel cut at the origin: `target` with the
    comparison set `neighbours` (by default what ``bayes-lac report`` fits: Thurrock and its
    2021 DfE statistical neighbours; ``"all"``: the national model, every authority) and all
    of `fit_measures` jointly, as a report fits them, whichever measures are scored at that
    origin; each authority's predictive counts under `scenario` are read off that one fit
    (`comparison_las` lists the authorities it can forecast). A fit that fails its
    convergence diagnostics raises `UnconvergedFitError` (the backtest reports the origin as
    failed and scores none of its cells) unless `allow_unconverged`.

    Parameters
    ----------
    target
        ONS code of the authority whose comparison set is fitted (a report's ``--la``); None
        takes Thurrock, or the panel's first authority when Thurrock is not in it (a simulated
        panel).
    neighbours
        Comparison set (a report's ``--neighbours``): ``"2021"``, ``"2025"``, ``"all"`` or ONS
        codes; see `bayes_lac.model.data.comparison_set`.
    priors
        Prior set name or TOML file.
    draws, tune, chains, sampler, target_accept, max_treedepth
        Sampler settings; None takes the package's defaults (`bayes_lac.model.fit`), which
        are those of a report's fit.
    scenario
        Forecast scenario (`bayes_lac.analysis.forecast`), ``"trend"`` as in a report.
    fit_measures
        Measures fitted jointly (default all three, as a report fits them). At an origin where
        one of them is not yet scored (`first_origin`: fewer than `MIN_HISTORY_YEARS` years
        since its first data; children in need and child protection, published from 2013, at
        origins 2014-2015) it is left out of that fit, as it is left out of the scoring: two or
        three years cannot separate the spread of authorities' trends from noise, and a 2014
        fit of Thurrock's set with them failed its gate (bulk ESS 313 on the spread of
        children-in-need trends, tail ESS 175; see ``models/README.md``). This is the one way
        a backtest fit differs from a report's.
    allow_unconverged
        Score a fit that fails its convergence diagnostics (recorded in the origins table).
    cores
        Processes for the chains (1 when origins already run in parallel processes).
    """

    name: str = MODEL_METHOD
    target: str | None = None
    neighbours: str = "2021"
    priors: str = "default"
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None
    sampler: str | None = None
    target_accept: float | None = None
    max_treedepth: int | None = None
    scenario: str = "trend"
    fit_measures: tuple[str, ...] = MEASURES
    allow_unconverged: bool = False
    cores: int | None = None

    def config(self) -> dict:
        """The settings that define the forecasts (priors in full; not the seed or cores)."""
        from bayes_lac.model import fit as model_fit
        from bayes_lac.model.graph import DEFAULT_PARAMETERISATION
        from bayes_lac.model.priors import load_priors

        return {
            "model": "LACModel",
            "target": self.target or THURROCK_CODE,
            "neighbours": self.neighbours,
            "priors": load_priors(self.priors),
            "parameterisation": DEFAULT_PARAMETERISATION,
            "draws": self.draws or model_fit.DEFAULT_DRAWS,
            "tune": self.tune or model_fit.DEFAULT_TUNE,
            "chains": self.chains or model_fit.DEFAULT_CHAINS,
            "sampler": self.sampler or model_fit.DEFAULT_SAMPLER,
            "target_accept": self.target_accept or model_fit.DEFAULT_TARGET_ACCEPT,
            "max_treedepth": self.max_treedepth or model_fit.DEFAULT_MAX_TREEDEPTH,
            "scenario": self.scenario,
            "fit_measures": list(self.fit_measures),
            "fit_measures_from_years": MIN_HISTORY_YEARS,
            "allow_unconverged": bool(self.allow_unconverged),
        }

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        if quantity != "count":
            raise BayesLacError(
                f"the model forecaster forecasts counts only, not {quantity!r}; a spend forecaster "
                "(counts x unit costs) plugs into the same backtest with quantity='spend'"
            )
        from bayes_lac.analysis.forecast import forecast
        from bayes_lac.model.diagnostics import require_converged
        from bayes_lac.model.fit import LACModel
        from bayes_lac.model.results import run_info

        config = self.config()
        origin = int(origin)
        not_fitted = [m for m in measures if m not in self.fit_measures]
        if not_fitted:
            raise BayesLacError(
                f"the model forecaster fits {', '.join(self.fit_measures)}; asked for {', '.join(not_fitted)}"
            )
        target = self.target_in(panel)
        fit_measures = self.fitted_for(panel, origin, measures)
        start = time.perf_counter()
        model = LACModel(target, neighbours=self.neighbours, until=origin, priors=self.priors, measures=fit_measures)
        # log_likelihood and log_prior are not needed to forecast; leaving them out saves two compilations
        run = model.fit(
            panel,
            draws=config["draws"],
            tune=config["tune"],
            chains=config["chains"],
            seed=int(seed) + origin,
            progressbar=False,
            sampler=config["sampler"],
            cores=self.cores,
            target_accept=config["target_accept"],
            max_treedepth=config["max_treedepth"],
            log_density=False,
        )
        fit_seconds = time.perf_counter() - start
        info = run_info(run)
        last = info.last_year
        if last != origin:
            raise PanelError(
                f"backtest origin {origin}: the panel's latest year up to {origin} is {last}; expected data for {origin}"
            )
        converged = info.converged
        if not self.allow_unconverged:
            require_converged(run)
        in_run = {str(c) for c in run["constant_data"]["la"].values}
        years = [origin + int(h) for h in horizons]
        n_draws = config["chains"] * config["draws"]
        out = empty_draws(measures, las, horizons, n_draws)
        for j, la in enumerate(las):
            if la not in in_run:
                continue  # created after the origin: no forecast, counted as missing
            fc = forecast(
                run, la=la, horizon=max(int(h) for h in horizons), scenarios=(self.scenario,), seed=int(seed) + origin
            )
            predicted = fc.data["predicted"].sel(scenario=self.scenario, year=years)
            for i, measure in enumerate(measures):
                out.values[i, j] = predicted.sel(measure=measure).transpose("year", "draw").values
        out.attrs.update(fit_seconds=fit_seconds, converged=converged)
        return out


@dataclass
class LatentModelForecaster(_FittedForecaster):
    """The latent-state model (`bayes_lac.model.latent_fit`) as a backtest forecaster.

    At each origin the model is fitted once on every authority (``neighbours="all"``, as
    ``bayes-lac report`` fits it by default) with the data up to the origin, on the grid of years
    up to `grid_end` so that one compiled model serves every origin with the same authorities;
    every authority's predictive counts (the trend scenario: states, national path and child
    population carried forward, future UASC held at the origin's count) are read off that fit by
    `bayes_lac.model.latent_fit.latent_forecast`. That is the report's forecast
    (`bayes_lac.analysis.forecast.forecast` of a latent run) for every authority at once: every
    posterior draw, each authority's states drawn as the report draws them
    (`bayes_lac.model.latent_fit.authority_states`), the same equations carrying them forward
    (`n_draws` takes a random subset of draws instead, for quicker checks). As in `ModelForecaster`, measures with fewer
    than `MIN_HISTORY_YEARS` years of data up to an origin are neither fitted nor scored there,
    and a fit that fails its convergence gate raises `UnconvergedFitError` unless
    `allow_unconverged`.
    """

    name: str = MODEL_METHOD
    target: str | None = None
    neighbours: str = "all"
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None
    n_draws: int | None = None
    sampler: str = "nutpie"
    uasc: str = "hold"
    fit_measures: tuple[str, ...] = MEASURES
    allow_unconverged: bool = False
    cores: int | None = None
    #: How much of a Poisson count's variance is noise (`bayes_lac.model.latent.build_latent_model`)
    count_noise: str = "poisson"
    #: Where forecasts start (`bayes_lac.model.latent.start_offsets`); None: the report's default,
    #: `bayes_lac.model.latent.DEFAULT_FORECAST_START`
    start: str | None = None
    #: The tails of forecasts' shocks (`bayes_lac.model.latent.TAILS`); None: the report's
    #: default, `bayes_lac.model.latent.DEFAULT_TAILS`
    tails: str | None = None
    #: Last year of the grid every origin's data are laid on (the forecaster sees the panel cut
    #: at the origin, so the grid cannot come from it): one compiled model for every origin
    #: with the same authorities. An origin after it extends the grid to the origin.
    grid_end: int = 2025
    #: Seconds per origin (compile, sample, forecast) and the gate's figures per origin.
    timings: dict = field(default_factory=dict, repr=False, compare=False)
    _fitter: object = field(default=None, repr=False, compare=False)

    def config(self) -> dict:
        """The settings that define the forecasts (priors and design in full, as the fitter
        uses them; not the seed)."""
        from bayes_lac.model import latent as L
        from bayes_lac.model import latent_fit as LF

        fitter = self._fitter or LF.LatentFitter(sampler=self.sampler, count_noise=self.count_noise)
        return {
            "model": "LatentModel",
            "target": self.target or THURROCK_CODE,
            "neighbours": self.neighbours,
            "priors": json.loads(json.dumps(fitter.priors_used())),
            "trend_measures": list(fitter.trend_measures),
            "national": fitter.national,
            "variance": fitter.variance,
            "national_steps": fitter.national_steps,
            # a design added after the shipped backtest was made enters only when it is not the
            # earlier one, so that backtest keeps its signature
            **({"count_noise": fitter.count_noise} if fitter.count_noise != "poisson" else {}),
            # the defaults by panel size, as values: a change to any of them changes the hash
            "draws": self.draws
            or {"national": LF.DEFAULT_DRAWS, "small_panel": LF.SMALL_PANEL_DRAWS, "below": LF.SMALL_PANEL},
            "tune": self.tune or LF.DEFAULT_TUNE,
            "chains": self.chains or LF.DEFAULT_CHAINS,
            "sampler": self.sampler,
            "target_accept": LF.DEFAULT_TARGET_ACCEPT,
            "adaptation": LF.DEFAULT_ADAPTATION if self.sampler == "nutpie" else None,
            "forecast_draws": "all" if self.n_draws is None else self.n_draws,
            "uasc": self.uasc,
            # as the count-noise design: the earlier start enters only when it is not the one used
            **({"start": self.start_used()} if self.start_used() != "state" else {}),
            **(
                {
                    "tails": self.tails_used(),
                    "tail_df_grid": [str(d) for d in L.TAIL_DF_GRID],
                    "tail_draws": LF.TAIL_DRAWS,
                }
                if self.tails_used() != "normal"
                else {}
            ),
            "scenario": "trend",
            "fit_measures": list(self.fit_measures),
            "fit_measures_from_years": MIN_HISTORY_YEARS,
            "allow_unconverged": bool(self.allow_unconverged),
        }

    def __post_init__(self):
        from bayes_lac.model.latent import FORECAST_STARTS, TAILS

        # checked before any fit: a bad value would otherwise surface after the first origin's fit
        if self.start is not None and self.start not in FORECAST_STARTS:
            raise BayesLacError(f"start must be one of {', '.join(FORECAST_STARTS)}, got {self.start!r}")
        if self.tails is not None and self.tails not in TAILS:
            raise BayesLacError(f"tails must be one of {', '.join(TAILS)}, got {self.tails!r}")

    def start_used(self) -> str:
        from bayes_lac.model.latent import DEFAULT_FORECAST_START

        return DEFAULT_FORECAST_START if self.start is None else self.start

    def tails_used(self) -> str:
        from bayes_lac.model.latent import DEFAULT_TAILS

        return DEFAULT_TAILS if self.tails is None else self.tails

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        if quantity != "count":
            raise BayesLacError(f"the model forecaster forecasts counts only, not {quantity!r}")
        from bayes_lac.model import latent_fit as LF
        from bayes_lac.model.data import prepare_data
        from bayes_lac.model.diagnostics import require_converged
        from bayes_lac.model.results import run_info

        origin = int(origin)
        fit_measures = self.fitted_for(panel, origin, measures)
        start = time.perf_counter()
        if self._fitter is None:
            self._fitter = LF.LatentFitter(sampler=self.sampler, count_noise=self.count_noise)
        grid_end = max(int(self.grid_end), origin)
        data = prepare_data(
            panel, self.target_in(panel), neighbours=self.neighbours, until=origin, measures=fit_measures
        )
        if int(data.year[-1]) != origin:
            raise PanelError(
                f"backtest origin {origin}: the panel's latest year up to {origin} is {int(data.year[-1])}; "
                f"expected data for {origin}"
            )
        run = self._fitter.fit(
            LF.on_grid(data, grid_end),
            until=origin,
            draws=self.draws,
            tune=self.tune or LF.DEFAULT_TUNE,
            chains=self.chains or LF.DEFAULT_CHAINS,
            seed=int(seed) + origin,
            cores=self.cores,
        )
        fit_seconds = time.perf_counter() - start
        info = run_info(run, allow_latent=True)
        self.timings[origin] = {k: info.sampler.get(k) for k in ("compile_seconds", "sample_seconds")}
        if not self.allow_unconverged:
            require_converged(run, allow_latent=True)
        start = time.perf_counter()
        predicted = LF.latent_forecast(
            run,
            int(max(horizons)),
            self.n_draws,
            seed=int(seed),
            uasc=self.uasc,
            start=self.start_used(),
            tails=self.tails_used(),
        )
        out = empty_draws(measures, las, horizons, predicted.sizes["draw"])
        in_run = {str(c) for c in predicted["la"].values}
        for j, la in enumerate(las):
            if la not in in_run:
                continue  # created after the origin: no forecast, counted as missing
            for i, measure in enumerate(measures):
                out.values[i, j] = predicted.sel(measure=measure, la=la, horizon=[int(h) for h in horizons]).values
        self.timings[origin]["forecast_seconds"] = time.perf_counter() - start
        out.attrs.update(fit_seconds=fit_seconds, converged=info.converged)
        return out


#: Name of the flow-based forecaster in backtest tables.
FLOWS_METHOD = "flows"


@dataclass(frozen=True)
class FlowsForecaster:
    """The flows model (`bayes_lac.model.flows`) as a backtest forecaster of looked-after children.

    At each origin the flows model is fitted on the panel cut at the origin (entries, exits and
    routes of the target and its comparison set `neighbours`), and each authority's stock is
    forecast from its entries and exits (`bayes_lac.analysis.flows_forecast.flows_forecast`,
    scenario ``trend``, with the measured reconciliation gap). It forecasts looked-after
    children only. The target is Thurrock when the panel has it, else its first authority;
    authorities outside the fitted set are left unscored (counted as missing). A fit failing
    the flows gate raises `UnconvergedFitError` unless `allow_unconverged`.
    """

    name: str = FLOWS_METHOD
    neighbours: str = "2021"
    draws: int | None = None
    tune: int | None = None
    chains: int | None = None
    sampler: str | None = None
    target_accept: float | None = None
    allow_unconverged: bool = False
    cores: int | None = None

    def config(self) -> dict:
        from bayes_lac.model import flows

        config = {
            "model": "FlowsModel",
            "priors": flows.FLOWS_PRIORS,
            "neighbours": self.neighbours,
            "draws": self.draws or flows.DEFAULT_DRAWS,
            "tune": self.tune or flows.DEFAULT_TUNE,
            "chains": self.chains or flows.DEFAULT_CHAINS,
            "sampler": self.sampler or flows.DEFAULT_SAMPLER,
            "target_accept": self.target_accept or flows.DEFAULT_TARGET_ACCEPT,
            "scenario": "trend",
            "allow_unconverged": bool(self.allow_unconverged),
        }
        return config

    def signature(self) -> str:
        return f"{self.name}:{__version__}:{config_hash(self.config())}"

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        from bayes_lac.analysis.flows_forecast import flows_forecast
        from bayes_lac.model.flows import FlowsModel, flows_run_info

        if quantity != "count" or list(measures) != ["looked_after"]:
            raise BayesLacError(
                f"the flows forecaster forecasts looked-after counts only; asked for {quantity} of {', '.join(measures)}"
            )
        config = self.config()
        origin = int(origin)
        fitted_las = local_authorities(panel)
        target = THURROCK_CODE if THURROCK_CODE in fitted_las else fitted_las[0]
        start = time.perf_counter()
        run = FlowsModel(target, neighbours=self.neighbours, last_year=origin).fit(
            panel,
            draws=config["draws"],
            tune=config["tune"],
            chains=config["chains"],
            seed=int(seed) + origin,
            sampler=config["sampler"],
            target_accept=config["target_accept"],
            cores=self.cores,
        )
        fit_seconds = time.perf_counter() - start
        info = flows_run_info(run)
        if not info.converged and not self.allow_unconverged:
            raise UnconvergedFitError(f"flows fit at origin {origin}: {info.problem}")
        out = empty_draws(measures, las, horizons, config["chains"] * config["draws"])
        for j, la in enumerate(las):
            if la not in info.authorities:
                continue
            try:
                fc = flows_forecast(run, la=la, horizon=max(int(h) for h in horizons), seed=int(seed) + origin)
            except UsageError:
                continue  # no published stock or child population at the origin: counted as missing
            stock = fc.data["stock"].sel(scenario="trend")
            out.values[0, j] = stock.sel(year=[origin + int(h) for h in horizons]).transpose("year", "draw").values
        out.attrs.update(fit_seconds=fit_seconds, converged=info.converged)
        return out


def config_hash(config: dict) -> str:
    """SHA-256 (first 16 hex digits) of a configuration as sorted JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def default_model_forecaster() -> LatentModelForecaster:
    """The model as ``bayes-lac report`` fits it by default: the latent-state model, one national
    fit per origin (`LatentModelForecaster`)."""
    return LatentModelForecaster()


def current_model_signature() -> dict:
    """What the shipped backtest must have been made with: the package version and the hash of
    the default model forecaster's configuration (`default_model_forecaster`)."""
    forecaster = default_model_forecaster()
    return {"package_version": __version__, "model_config_hash": forecaster.config_hash()}


def forecaster_signature(forecaster) -> str:
    """A text that changes whenever a forecaster's settings do (for cache fingerprints)."""
    if hasattr(forecaster, "signature"):
        return str(forecaster.signature())
    if is_dataclass(forecaster):
        return repr(forecaster)
    return f"{getattr(forecaster, '__module__', '')}.{getattr(forecaster, '__qualname__', repr(forecaster))}"


# --------------------------------------------------------------------------------------
# What each origin scores


def first_origin(panel: pd.DataFrame, measure: str, quantity: str = "count") -> int:
    """The first origin with `MIN_HISTORY_YEARS` years of the measure's data (any authority)."""
    column = outcome_column(measure, quantity)
    las = set(local_authorities(panel))
    years = panel.loc[panel["la_code"].astype(str).isin(las) & panel[column].notna(), "year"]
    if years.empty:
        raise PanelError(f"the panel has no published {column} for any local authority")
    return int(years.min()) + MIN_HISTORY_YEARS - 1


def last_published(panel: pd.DataFrame, measure: str, quantity: str = "count") -> int:
    """The last year with the measure's data for any local authority."""
    column = outcome_column(measure, quantity)
    las = set(local_authorities(panel))
    return int(panel.loc[panel["la_code"].astype(str).isin(las) & panel[column].notna(), "year"].max())


def plan_backtest(
    panel: pd.DataFrame,
    origins: Sequence[int],
    horizons: dict[str, Sequence[int]],
    quantity: str = "count",
) -> tuple[dict[int, tuple[tuple[str, tuple[int, ...]], ...]], list[str]]:
    """Which (measure, horizons) each origin scores, and notes on what is left out and why.

    Returns
    -------
    (plan, notes): plan maps origin -> ((measure, horizons), ...), measures in `horizons`
    order; origins with nothing to score are absent.
    """
    notes = []
    plan: dict[int, list] = {int(o): [] for o in origins}
    for measure, hs in horizons.items():
        start, last = first_origin(panel, measure, quantity), last_published(panel, measure, quantity)
        early = [o for o in plan if o < start]
        if early:
            notes.append(
                f"{measure}: origin(s) {span(early)} have fewer than {MIN_HISTORY_YEARS} years of data "
                f"(the series starts in {start - MIN_HISTORY_YEARS + 1}); not scored."
            )
        beyond = [(o, h) for o in plan for h in hs if o >= start and o + h > last]
        if beyond:
            notes.append(
                f"{measure}: {len(beyond)} origin-horizon pairs forecast years after {last}, the last published year, "
                f"and are left out (origins {span([o for o, _ in beyond])}, horizons {span([h for _, h in beyond])})."
            )
        for origin, scored in plan.items():
            keep = tuple(int(h) for h in hs if origin >= start and origin + h <= last)
            if keep:
                scored.append((measure, keep))
    return {o: tuple(p) for o, p in plan.items() if p}, notes


def cell_table(
    panel: pd.DataFrame, origin: int, measure: str, horizons: Sequence[int], las: Sequence[str], quantity: str = "count"
) -> pd.DataFrame:
    """The cells of one origin and measure: outcome, first release, value at the origin, strata.

    Returns
    -------
    DataFrame with ``la_code, horizon, year, value_at_origin, size_quartile, uasc_change,
    observed, observed_first_release`` in (authority, horizon) order.
    """
    values = wide(panel, outcome_column(measure, quantity))
    first_column = FIRST_RELEASE_COLUMNS.get((quantity, measure))
    first = wide(panel, first_column) if first_column and first_column in panel.columns else None
    keys = pd.MultiIndex.from_product([list(las), [int(h) for h in horizons]], names=["la_code", "horizon"])
    cells = keys.to_frame(index=False)
    cells["year"] = origin + cells["horizon"]

    def lookup(table, years):
        if table is None or table.empty:
            return np.full(len(cells), np.nan)
        return np.array(
            [
                table.at[la, y] if la in table.index and y in table.columns else np.nan
                for la, y in zip(cells["la_code"], years)
            ],
            float,
        )

    cells["value_at_origin"] = lookup(values, np.full(len(cells), origin))
    cells["size_quartile"] = cells["la_code"].map(size_quartiles(panel, origin)).fillna("unknown")
    shares = uasc_shares(panel)
    cells["uasc_change"] = [
        uasc_change(before, after)
        for before, after in zip(lookup(shares, np.full(len(cells), origin)), lookup(shares, cells["year"]))
    ]
    cells["observed"] = lookup(values, cells["year"])
    cells["observed_first_release"] = lookup(first, cells["year"])
    return cells


def size_quartiles(panel: pd.DataFrame, origin: int) -> pd.Series:
    """Quartile label (`SIZE_QUARTILES`) of each local authority's child population at the
    origin, among all authorities with a population that year; authorities without one are
    absent (their cells are labelled "unknown")."""
    las = local_authorities(panel)
    rows = panel[(panel["year"].astype(int) == origin) & panel["la_code"].astype(str).isin(las)]
    pop = (
        pd.to_numeric(rows.set_index(rows["la_code"].astype(str))["population_0_17"], errors="raise")
        .astype(float)
        .dropna()
    )
    if len(pop) < len(SIZE_QUARTILES):
        return pd.Series(dtype=str)
    return pd.qcut(pop, len(SIZE_QUARTILES), labels=list(SIZE_QUARTILES)).astype(str)


def uasc_shares(panel: pd.DataFrame) -> pd.DataFrame:
    """UASC as a share of looked-after children, authority x year; NaN where either count is
    suppressed or missing, or no child is looked after."""
    if "uasc" not in panel.columns:
        return pd.DataFrame()
    lac = wide(panel, "looked_after")
    return wide(panel, "uasc") / lac.where(lac > 0)


def uasc_change(before: float, after: float) -> str:
    """ "rose", "fell" or "flat" (within `UASC_FLAT_BAND` share points) from share `before` to
    share `after`; "unknown" where either is NaN (a suppressed or unpublished UASC count)."""
    if np.isnan(before) or np.isnan(after):
        return "unknown"
    change = after - before
    if change > UASC_FLAT_BAND:
        return "rose"
    if change < -UASC_FLAT_BAND:
        return "fell"
    return "flat"


# --------------------------------------------------------------------------------------
# One origin (a worker task)


@dataclass(frozen=True)
class OriginTask:
    """Everything one origin needs: plain, picklable values (sent to a worker process)."""

    panel: pd.DataFrame = field(repr=False)
    origin: int
    plan: tuple[tuple[str, tuple[int, ...]], ...]
    las: tuple[str, ...]
    forecasters: tuple
    quantity: str
    seed: int
    fingerprint: str
    cache_dir: str | None = None


@dataclass(frozen=True)
class OriginResult:
    """Scored rows (`FORECAST_COLUMNS`) and the status of every method at one origin (`ORIGIN_COLUMNS`)."""

    origin: int
    table: pd.DataFrame = field(repr=False)
    status: pd.DataFrame = field(repr=False)


def _empty(columns) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in columns})


def score_origin(
    draws, cells: dict[str, pd.DataFrame], plan, origin: int, method: str, quantity: str, seed: int
) -> pd.DataFrame:
    """Rows of `FORECAST_COLUMNS` for one method at one origin, from its checked draws."""
    frames = []
    for k, (measure, horizons) in enumerate(plan):
        sub = draws.sel(measure=measure, horizon=list(horizons)).transpose("la", "horizon", "draw")
        samples = sub.values.reshape(-1, sub.sizes["draw"])
        table = cells[measure].copy()
        scores = score_samples(samples, table["observed"].to_numpy(float), seed=seed + origin + 101 * k)
        table = pd.concat([table.reset_index(drop=True), scores], axis=1)
        first = table["observed_first_release"].to_numpy(float)
        table["pit_first_release"] = np.nan
        table["crps_first_release"] = np.nan
        has_first = ~np.isnan(first)
        if has_first.any():
            again = score_samples(samples[has_first], first[has_first], seed=seed + origin + 101 * k + 7)
            table.loc[has_first, "pit_first_release"] = again["pit"].to_numpy()
            table.loc[has_first, "crps_first_release"] = again["crps"].to_numpy()
        table["method"] = method
        table["quantity"] = quantity
        table["measure"] = measure
        table["origin"] = origin
        frames.append(table[list(FORECAST_COLUMNS)])
    return pd.concat(frames, ignore_index=True) if frames else _empty(FORECAST_COLUMNS)


def run_origin(task: OriginTask) -> OriginResult:
    """Forecast from one origin with every forecaster, score, and cache the result if asked.

    The forecasters see only the panel's rows up to the origin; the outcomes come from the
    whole panel. A forecaster raising `UnconvergedFitError` is recorded as failed at this
    origin (no rows); any other error propagates (and nothing is cached for the origin).
    """
    origin = int(task.origin)
    cut = task.panel[task.panel["year"].astype(int) <= origin]
    measures = [m for m, _ in task.plan]
    horizons = sorted({h for _, hs in task.plan for h in hs})
    cells = {m: cell_table(task.panel, origin, m, hs, task.las, task.quantity) for m, hs in task.plan}
    tables, status = [], []
    for forecaster in task.forecasters:
        method = method_name(forecaster)
        start = time.perf_counter()
        try:
            draws = forecaster(
                cut, origin, horizons, measures, las=list(task.las), quantity=task.quantity, seed=task.seed
            )
        except UnconvergedFitError as err:
            status.append(
                {
                    "origin": origin,
                    "method": method,
                    "status": "failed",
                    "message": str(err),
                    "fit_seconds": time.perf_counter() - start,
                    "forecast_seconds": 0.0,
                    "scoring_seconds": 0.0,
                }
            )
            continue
        elapsed = time.perf_counter() - start
        fit_seconds = float(draws.attrs.get("fit_seconds", 0.0)) if hasattr(draws, "attrs") else 0.0
        draws = check_draws(draws, method, measures, task.las, horizons)
        start = time.perf_counter()
        tables.append(score_origin(draws, cells, task.plan, origin, method, task.quantity, task.seed))
        converged = bool(draws.attrs.get("converged", True))
        status.append(
            {
                "origin": origin,
                "method": method,
                "status": "scored" if converged else "scored (unconverged fit allowed)",
                "message": ""
                if converged
                else "the fit failed its convergence diagnostics; scored because allow_unconverged was set",
                "fit_seconds": fit_seconds,
                "forecast_seconds": elapsed - fit_seconds,
                "scoring_seconds": time.perf_counter() - start,
            }
        )
    table = pd.concat(tables, ignore_index=True) if tables else _empty(FORECAST_COLUMNS)
    status_table = pd.DataFrame(status).assign(from_cache=False).reindex(columns=list(ORIGIN_COLUMNS))
    result = OriginResult(origin, table, status_table)
    if task.cache_dir is not None:
        _write_cached(Path(task.cache_dir), result, task.fingerprint)
    return result


# --------------------------------------------------------------------------------------
# The cache of scored origins


def _cache_files(cache_dir: Path, origin: int) -> tuple[Path, Path]:
    return cache_dir / f"origin_{origin}.csv.gz", cache_dir / f"origin_{origin}.json"


def _write_cached(cache_dir: Path, result: OriginResult, fingerprint: str) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    rows, meta = _cache_files(cache_dir, result.origin)
    write_csv(result.table, rows)
    # The JSON is written last (atomically): an origin counts as done only once it exists.
    write_text(
        meta,
        json.dumps(
            {"origin": result.origin, "fingerprint": fingerprint, "status": result.status.to_dict("records")}, indent=1
        ),
    )


_TEXT_COLUMNS = {
    "method": str,
    "quantity": str,
    "measure": str,
    "la_code": str,
    "size_quartile": str,
    "uasc_change": str,
}


def read_cached(cache_dir: Path, origin: int, fingerprint: str) -> OriginResult | None:
    """The cached result of `origin`, or None if it has not been scored there.

    Raises
    ------
    BayesLacError
        if the origin was scored with other settings, forecasters or panel (a different
        fingerprint), or its rows file is missing.
    """
    rows, meta = _cache_files(Path(cache_dir), origin)
    if not meta.is_file():
        return None
    stored = json.loads(meta.read_text())
    if stored.get("fingerprint") != fingerprint:
        raise BayesLacError(
            f"{meta} holds origin {origin} scored with other settings, forecasters or panel than this run "
            f"(fingerprint {stored.get('fingerprint')!r}, this run {fingerprint!r}); pass --rerun (rerun=True) "
            "to replace the cached origins, or write to another --out"
        )
    if not rows.is_file():
        raise BayesLacError(f"{meta} marks origin {origin} as scored but its rows file {rows} is missing; pass --rerun")
    table = pd.read_csv(rows, dtype=_TEXT_COLUMNS, keep_default_na=False, na_values=[""])
    status = pd.DataFrame(stored["status"]).assign(from_cache=True).reindex(columns=list(ORIGIN_COLUMNS))
    return OriginResult(origin, table.reindex(columns=list(FORECAST_COLUMNS)), status)


def panel_hash(panel: pd.DataFrame) -> str:
    """SHA-256 (16 hex digits) of the panel's values, column names and order."""
    digest = hashlib.sha256(",".join(map(str, panel.columns)).encode())
    digest.update(pd.util.hash_pandas_object(panel, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _fingerprint(panel_digest, origin, plan, las, forecasters, quantity, seed) -> str:
    content = {
        "package_version": __version__,
        "panel": panel_digest,
        "origin": int(origin),
        "plan": [[m, list(hs)] for m, hs in plan],
        "las": list(las),
        "forecasters": [forecaster_signature(f) for f in forecasters],
        "quantity": quantity,
        "seed": int(seed),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------
# The backtest


@dataclass(frozen=True)
class Backtest:
    """A backtest: every scored forecast and how the run went.

    Attributes
    ----------
    table
        One row per forecast cell and method (`FORECAST_COLUMNS`).
    origins
        One row per origin and method (`ORIGIN_COLUMNS`): status (``scored``, ``failed``),
        the failure message, seconds spent fitting, forecasting and scoring, and whether the
        result came from the cache.
    plan
        Origin -> ((measure, horizons), ...) scored.
    methods, quantity
        Method labels (table order) and what was forecast.
    notes
        What a reader must know (what was left out and why, failed fits, cached origins).
    wall_seconds
        Wall time of the whole backtest (seconds).
    workers
        Local processes used (or the Dask scheduler address).
    """

    table: pd.DataFrame = field(repr=False)
    origins: pd.DataFrame = field(repr=False)
    plan: dict
    methods: tuple[str, ...]
    quantity: str = "count"
    notes: tuple[str, ...] = ()
    wall_seconds: float = 0.0
    workers: str = ""
    panel_hash: str = ""
    seed: int = 0
    model_config: dict | None = None

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for p in self.plan.values() for m, _ in p))


def _horizons_by_measure(horizons, measures) -> dict[str, tuple[int, ...]]:
    if horizons is None:
        return {m: DEFAULT_HORIZONS[m] for m in measures}
    if isinstance(horizons, dict):
        unknown = [m for m in horizons if m not in measures]
        if unknown:
            raise BayesLacError(f"horizons given for measure(s) not backtested: {', '.join(unknown)}")
        return {m: tuple(sorted(int(h) for h in horizons.get(m, DEFAULT_HORIZONS[m]))) for m in measures}
    return {m: tuple(sorted(int(h) for h in horizons)) for m in measures}


def backtest(
    panel: pd.DataFrame,
    forecasters: Sequence | None = None,
    origins: Sequence[int] = DEFAULT_ORIGINS,
    horizons: Sequence[int] | dict[str, Sequence[int]] | None = None,
    measures: Sequence[str] = MEASURES,
    las: Sequence[str] | str = "comparison",
    quantity: str = "count",
    seed: int = 0,
    workers: int = 1,
    scheduler=None,
    cache_dir: str | Path | None = None,
    rerun: bool = False,
    progress: bool = True,
) -> Backtest:
    """Forecast from each origin with every forecaster; score against the published figures.

    Parameters
    ----------
    panel
        The panel (all years: later years are the outcomes the forecasts are scored on).
    forecasters
        Forecasters (see `bayes_lac.studies.baselines`); default the model as a report fits it (`default_model_forecaster`)
        and every baseline. Names must be distinct.
    origins
        Last year of data of each forecast (31 March years).
    horizons
        Years ahead: one list for every measure, a dict measure -> list, or None for
        `DEFAULT_HORIZONS`.
    measures
        Measures to score.
    las
        ``"comparison"`` (the authorities the model forecaster fits: its target and comparison
        set, `ModelForecaster.comparison_las`; every local authority when no forecaster is the
        model), ``"all"`` (every local authority in the panel) or ONS codes to score.
    quantity
        ``"count"`` or ``"spend"`` (see the forecaster interface).
    seed
        Seed of every forecaster's draws and of the randomised PIT.
    workers, scheduler
        Origins run in parallel (`bayes_lac.studies.parallel.run_tasks`): local processes, or a
        Dask scheduler address / cluster.
    cache_dir
        Folder of per-origin results: origins found there are read back, not run again.
    rerun
        Run every origin even if it is in `cache_dir` (its files are replaced).
    progress
        Show a progress bar over origins.

    Returns
    -------
    `Backtest`
    """
    from bayes_lac.studies.parallel import run_tasks

    start = time.perf_counter()
    forecasters = tuple(forecasters) if forecasters is not None else (default_model_forecaster(), *default_baselines())
    methods = tuple(method_name(f) for f in forecasters)
    if not forecasters:
        raise BayesLacError("give at least one forecaster")
    if len(set(methods)) != len(methods):
        raise BayesLacError(f"forecaster names must be distinct; got {', '.join(methods)}")
    measures = tuple(measures)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise BayesLacError(f"unknown measure(s) {', '.join(unknown)}; expected some of {', '.join(MEASURES)}")
    for m in measures:
        outcome_column(m, quantity)
    origins = sorted({int(o) for o in origins})
    horizon_map = _horizons_by_measure(horizons, measures)
    if not origins or not any(horizon_map.values()):
        raise BayesLacError("give at least one origin and one horizon")
    bad = sorted({h for hs in horizon_map.values() for h in hs if h < 1})
    if bad:
        raise BayesLacError(f"horizons are years ahead, 1 or more; got {bad}")
    all_las = local_authorities(panel)
    model = next((f for f in forecasters if isinstance(f, _FittedForecaster)), None)
    if isinstance(las, str) and las == "comparison" and model is not None:
        chosen = model.comparison_las(panel)
    elif isinstance(las, str) and las in ("all", "comparison"):
        chosen = tuple(all_las)
    else:
        chosen = tuple(str(c).strip() for c in (las.split(",") if isinstance(las, str) else las) if str(c).strip())
        missing = [c for c in chosen if c not in all_las]
        if missing:
            raise UnknownAuthorityError(f"authorities not in the panel as local authorities: {', '.join(missing)}")
    years = set(panel["year"].astype(int))
    early = [o for o in origins if o not in years]
    if early:
        raise PanelError(
            f"origin year(s) {', '.join(map(str, early))} not in the panel (years {min(years)}-{max(years)})"
        )
    plan, notes = plan_backtest(panel, origins, horizon_map, quantity)
    digest = panel_hash(panel)
    cache = Path(cache_dir) if cache_dir is not None else None
    done: dict[int, OriginResult] = {}
    tasks = []
    years_of = panel.groupby(panel["la_code"].astype(str))["year"].agg(lambda y: set(y.astype(int)))
    for origin, origin_plan in plan.items():
        # an authority is forecast from the origins at which it exists (has a row in the panel)
        existing = tuple(la for la in chosen if origin in years_of.get(la, ()))
        fingerprint = _fingerprint(digest, origin, origin_plan, existing, forecasters, quantity, seed)
        cached = None if (cache is None or rerun) else read_cached(cache, origin, fingerprint)
        if cached is not None:
            done[origin] = cached
            continue
        tasks.append(
            OriginTask(
                panel,
                origin,
                origin_plan,
                existing,
                forecasters,
                quantity,
                int(seed),
                fingerprint,
                str(cache) if cache is not None else None,
            )
        )
    if done:
        notes.append(
            f"origin(s) {span(done)} read from {cache} (already scored with the same settings; rerun to replace)."
        )
    outputs = run_tasks(
        run_origin, tasks, workers=workers, scheduler=scheduler, progress=progress, description="backtest origins"
    )
    done.update({r.origin: r for r in outputs})
    results = [done[o] for o in sorted(done)]
    tables = [r.table for r in results if len(r.table)]
    table = pd.concat(tables, ignore_index=True) if tables else _empty(FORECAST_COLUMNS)
    origins_table = pd.concat([r.status for r in results], ignore_index=True) if results else _empty(ORIGIN_COLUMNS)
    for row in origins_table[origins_table["status"] == "failed"].itertuples():
        notes.append(f"origin {row.origin}, {row.method}: not scored, {row.message}")
    model_config = model.config() if model is not None else None
    return Backtest(
        table=table,
        origins=origins_table,
        plan=plan,
        methods=methods,
        quantity=quantity,
        notes=tuple(notes),
        wall_seconds=time.perf_counter() - start,
        workers=str(getattr(scheduler, "scheduler_address", scheduler))
        if scheduler is not None
        else f"{workers} local process(es)",
        panel_hash=digest,
        seed=int(seed),
        model_config=model_config,
    )


def time_table(result: Backtest) -> pd.DataFrame:
    """Where the time went: seconds fitting, forecasting and scoring, by origin (all methods)
    and in total by method; origins read from the cache show the times of the run that made them."""
    o = result.origins
    if o.empty:
        return _empty(["origin", "method", "fit_seconds", "forecast_seconds", "scoring_seconds", "from_cache"])
    seconds = ["fit_seconds", "forecast_seconds", "scoring_seconds"]
    by_origin = o.groupby("origin", as_index=False).agg(
        **{c: (c, "sum") for c in seconds}, from_cache=("from_cache", "all")
    )
    by_origin.insert(1, "method", "all")
    by_method = o.groupby("method", as_index=False, sort=False)[seconds].sum()
    by_method.insert(0, "origin", "all")
    by_method["from_cache"] = ""
    return pd.concat([by_origin, by_method], ignore_index=True)


# --------------------------------------------------------------------------------------
# Vintages: which inputs come from publications later than the origin


#: Sources of the bundled panel's inputs, by year range, and the year each was published
#: (see data/README.md). An origin T stands for forecasts made when year T's figures came out
#: (autumn of T), so a source published in year T or earlier was available then.
VINTAGES: tuple[dict, ...] = (
    {
        "input": "looked_after",
        "first": 2010,
        "last": 2014,
        "published": None,
        "source": "DfE SFRs 2010-2014 (first release, each published in the autumn of its year)",
    },
    {
        "input": "looked_after",
        "first": 2015,
        "last": 2015,
        "published": 2025,
        "source": "LAIT version of 2025-05-28 (revised figures)",
    },
    {
        "input": "looked_after",
        "first": 2016,
        "last": 2025,
        "published": 2026,
        "source": "LAIT version of 2026-04-08 (revised figures)",
    },
    {"input": "uasc", "first": 2011, "last": 2014, "published": None, "source": "DfE SFRs 2011-2014 (first release)"},
    {
        "input": "uasc",
        "first": 2015,
        "last": 2025,
        "published": 2026,
        "source": "LAIT versions of 2025-05-28 (2015) and 2026-04-08 (revised figures)",
    },
    {
        "input": "population_0_17",
        "first": 2010,
        "last": 2010,
        "published": None,
        "source": "mid-2009 ONS estimate as printed in SFR 27/2010, rounded to 100",
    },
    {
        "input": "population_0_17",
        "first": 2011,
        "last": 2012,
        "published": 2023,
        "source": "interpolated between mid-2009 and the Census-2021-rebased mid-2012 estimate",
    },
    {
        "input": "population_0_17",
        "first": 2013,
        "last": 2025,
        "published": 2023,
        "source": "ONS mid-year estimates rebased to Census 2021 (Nov 2023), as republished by DfE in 2025",
    },
    {
        "input": "children_in_need",
        "first": 2013,
        "last": 2025,
        "published": 2025,
        "source": "DfE Characteristics of children in need 2025, table B1 (time series as last published)",
    },
    {
        "input": "child_protection",
        "first": 2013,
        "last": 2025,
        "published": 2025,
        "source": "DfE Characteristics of children in need 2025, table D5 (time series as last published)",
    },
    {
        "input": "deprivation",
        "first": 2015,
        "last": 2024,
        "published": 2026,
        "source": "DWP children in low-income families, pre-revision series, LAIT version of 2026-03-20",
    },
)


def vintage_table(origins: Sequence[int] = DEFAULT_ORIGINS) -> pd.DataFrame:
    """Which inputs each origin's forecasts used, and whether they were published after the origin.

    The bundled panel holds one vintage of each series, mostly later than the backtest's
    origins: a forecaster at origin T in the backtest sees revised looked-after counts (DfE
    revises them after first release; the panel has first-release figures only for
    2010-2014) and the child population rebased to Census 2021 in November 2023, neither of
    which an analyst had at the time. Scores against first-release outcomes (where the panel
    keeps them, 2010-2017) are the sensitivity row for the outcome side.

    Returns
    -------
    DataFrame with ``origin, input, years`` (the years up to the origin from this source),
    ``source``, ``published`` (year; blank if each year's figure was published in that year)
    and ``later_than_origin``.
    """
    rows = []
    for origin in origins:
        for v in VINTAGES:
            if v["first"] > origin:
                continue
            published = v["published"]
            rows.append(
                {
                    "origin": int(origin),
                    "input": v["input"],
                    "years": span(range(v["first"], min(v["last"], origin) + 1)),
                    "source": v["source"],
                    "published": published,
                    "later_than_origin": published is not None and published > origin,
                }
            )
    return pd.DataFrame(rows, columns=["origin", "input", "years", "source", "published", "later_than_origin"])


# --------------------------------------------------------------------------------------
# Saving, the manifest and the staleness check


MANIFEST_SUFFIX = "_manifest.json"


def output_paths(out: str | Path) -> dict[str, Path]:
    """Files a backtest writes beside `out` (the per-forecast table, CSV, optionally .gz)."""
    out = Path(out)
    stem = out.name.removesuffix(".gz").removesuffix(".csv")
    return {
        "forecasts": out,
        "summary": out.with_name(stem + "_summary.csv"),
        "ratios": out.with_name(stem + "_ratios.csv"),
        "pit": out.with_name(stem + "_pit.csv"),
        "origins": out.with_name(stem + "_origins.csv"),
        "vintages": out.with_name(stem + "_vintages.csv"),
        "manifest": out.with_name(stem + MANIFEST_SUFFIX),
        "cache": out.with_name(stem + "_cache"),
    }


def reference_method(methods: Sequence[str]) -> str:
    """The method CRPS ratios are taken of: the model if it ran, else the pooled baseline."""
    return MODEL_METHOD if MODEL_METHOD in methods else "pooled_growth"


def summary_tables(result: Backtest, n_boot: int = 2000) -> dict[str, pd.DataFrame]:
    """The tables a backtest is read from.

    Returns
    -------
    dict with ``summary`` (`summarise_backtest` by method, measure and horizon, for the latest
    figures and, as ``outcome == "first_release"`` rows, DfE's first release), ``ratios``
    (`crps_ratios` of `reference_method` to every other method: all cells, then split by size
    quartile and by UASC change; column ``split`` names the stratum column, ``group`` its
    value), ``pit`` (`pit_histograms`) and ``vintages`` (`vintage_table`).
    """
    table = result.table
    summary = pd.concat(
        [summarise_backtest(table).assign(outcome="latest")]
        + (
            [summarise_backtest(table, outcome="first_release").assign(outcome="first_release")]
            if table["observed_first_release"].notna().any()
            else []
        ),
        ignore_index=True,
    )
    reference = reference_method(result.methods)
    ratios = [crps_ratios(table, reference=reference, n_boot=n_boot).assign(split="all", group="all")]
    for split in ("size_quartile", "uasc_change"):
        r = crps_ratios(table, reference=reference, by=("measure", "horizon", split), n_boot=n_boot)
        ratios.append(r.rename(columns={split: "group"}).assign(split=split))
    ratios = pd.concat(ratios, ignore_index=True)
    ratios.insert(0, "reference", reference)
    lead = ["reference", "measure", "baseline", "split", "group", "horizon"]
    ratios = ratios[lead + [c for c in ratios.columns if c not in lead]]
    return {
        "summary": summary,
        "ratios": ratios,
        "pit": pit_histograms(table),
        "vintages": vintage_table(sorted(result.plan)),
    }


def save_backtest(result: Backtest, out: str | Path, tables: dict | None = None) -> dict[str, Path]:
    """Write the per-forecast table, the summary tables and the manifest (see `output_paths`).

    The manifest (JSON) records the package version, the model's configuration and its hash
    (null when the model was not among the methods), the methods, plan, seed, panel hash,
    origins' status, wall time and workers: what `stale_reasons` checks.
    """
    paths = output_paths(out)
    paths["forecasts"].parent.mkdir(parents=True, exist_ok=True)
    tables = tables if tables is not None else summary_tables(result)
    write_csv(result.table, paths["forecasts"])
    for name in ("summary", "ratios", "pit", "vintages"):
        write_csv(tables[name], paths[name])
    write_csv(result.origins, paths["origins"])
    config = result.model_config
    manifest = {
        "package_version": __version__,
        "model_config_hash": config_hash(config) if config else None,
        "model_config": config,
        "methods": list(result.methods),
        "quantity": result.quantity,
        "plan": {str(o): {m: span(hs) for m, hs in p} for o, p in result.plan.items()},
        "seed": result.seed,
        "panel_sha256_16": result.panel_hash,
        "origins_failed": result.origins.loc[result.origins["status"] == "failed", ["origin", "method"]].to_dict(
            "records"
        ),
        "wall_seconds": round(result.wall_seconds, 1),
        "workers": result.workers,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {k: p.name for k, p in paths.items() if k not in ("manifest", "cache")},
    }
    write_text(paths["manifest"], json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    return paths


def stale_reasons(manifest: dict, current: dict | None = None) -> list[str]:
    """Why a saved backtest does not describe the package's current model (empty if it does).

    Parameters
    ----------
    manifest
        The saved backtest's manifest (see `save_backtest`).
    current
        `current_model_signature()` (computed if not given).
    """
    current = current if current is not None else current_model_signature()
    reasons = []
    if manifest.get("model_config_hash") is None:
        reasons.append("it holds no model forecasts (the model was not among its methods)")
    elif manifest["model_config_hash"] != current["model_config_hash"]:
        reasons.append(
            f"it was made with model configuration {manifest['model_config_hash']}, the package's is "
            f"{current['model_config_hash']} (priors, comparison set, sampler settings or scenario changed)"
        )
    if manifest.get("package_version") != current["package_version"]:
        reasons.append(
            f"it was made by bayes_lac {manifest.get('package_version')}, this is {current['package_version']}"
        )
    return reasons


def checked_horizons(table: pd.DataFrame, method: str = MODEL_METHOD) -> dict[str, int]:
    """How far ahead `method`'s forecasts of each measure were checked in a backtest: per
    measure, the largest horizon h such that at every horizon 1 to h at least one forecast was
    scored against an outcome (a per-forecast table, as `backtest` writes or the shipped one).
    Measures it did not score are absent."""
    rows = table[(table["method"] == method) & table["observed"].notna()]
    out = {}
    for measure, group in rows.groupby("measure", sort=False):
        scored = set(group["horizon"].astype(int))
        h = 0
        while h + 1 in scored:
            h += 1
        if h:
            out[str(measure)] = h
    return out


def check_shipped_backtest(folder: str | Path = BACKTEST_DIR, stem: str = "backtest_full") -> list[str]:
    """`stale_reasons` of the backtest shipped in `folder` (a missing manifest is a reason)."""
    manifest = Path(folder) / f"{stem}{MANIFEST_SUFFIX}"
    if not manifest.is_file():
        return [f"{manifest} is missing: the shipped backtest has no record of the model it scored"]
    reasons = stale_reasons(json.loads(manifest.read_text()))
    if reasons:
        command = f"bayes-lac backtest --out {Path(folder) / (stem + '.csv.gz')}"
        reasons.append(f"regenerate it: {command} (see models/backtest/README.md)")
    return reasons


# --------------------------------------------------------------------------------------
# Targets


#: Fewest origins for a bootstrap-over-origins interval to be shown (`against_pooled`): with
#: two, resampling gives only the two origins' own ratios and their pooled one.
MIN_ORIGINS_FOR_INTERVAL = 3


def target_finding(table: pd.DataFrame, measure: str = "looked_after", method: str = MODEL_METHOD) -> Finding:
    """Plain sentences: does `method` meet the backtest targets for `measure`, and where does it miss?

    Targets (set in advance, not tuned to): 90 % coverage within `COVERAGE_90_TARGET` and PIT
    mean within `PIT_MEAN_TARGET` at every horizon; for looked-after children, a CRPS at most
    `CRPS_TARGET_RATIO` times the pooled baseline's at horizons `CRPS_TARGET_HORIZONS`.
    """
    from bayes_lac.summaries import format_percent

    summary = summarise_backtest(select_measure(table, measure))
    rows = summary[summary["method"] == method]
    if rows.empty:
        return Finding(title="Backtest targets", sentence=f"{method} has no scored forecasts of {measure}.", table=rows)
    parts = []
    low, high = COVERAGE_90_TARGET
    misses = rows[(rows["coverage_90"] < low) | (rows["coverage_90"] > high)]
    if misses.empty:
        parts.append(
            f"The 90% intervals held the published figure in {format_percent(rows['coverage_90'].min())} to "
            f"{format_percent(rows['coverage_90'].max())} of forecasts at every horizon (target {format_percent(low)}-{format_percent(high)})."
        )
    else:
        parts.append(
            f"The 90% intervals miss the coverage target ({format_percent(low)}-{format_percent(high)}) at horizon(s) "
            + ", ".join(f"{int(r.horizon)} ({100 * r.coverage_90:.1f}%)" for r in misses.itertuples())
            + "."
        )
    low, high = PIT_MEAN_TARGET
    off = rows[(rows["pit_mean"] < low) | (rows["pit_mean"] > high)]
    if off.empty:
        parts.append(f"The PIT mean is within {low:.2f}-{high:.2f} at every horizon.")
    else:
        parts.append(
            f"The PIT mean is outside {low:.2f}-{high:.2f} at horizon(s) "
            + ", ".join(
                f"{int(r.horizon)} ({r.pit_mean:.3f}, forecasts too {'low' if r.pit_mean > high else 'high'})"
                for r in off.itertuples()
            )
            + "."
        )
    if measure == "looked_after" and method != CRPS_TARGET_BASELINE:
        ratios = crps_ratios(select_measure(table, measure), reference=method)
        ratios = ratios[(ratios["baseline"] == CRPS_TARGET_BASELINE) & ratios["horizon"].isin(CRPS_TARGET_HORIZONS)]
        if ratios.empty:
            parts.append(f"The {CRPS_TARGET_BASELINE} baseline was not scored, so the CRPS target cannot be checked.")
        else:
            worse = ratios[ratios["ratio"] > CRPS_TARGET_RATIO]
            listed = ", ".join(f"{int(r.horizon)}: {r.ratio:.2f}" for r in ratios.itertuples())
            verdict = "meets" if worse.empty else "misses"
            parts.append(
                f"Its CRPS relative to the {CRPS_TARGET_BASELINE} baseline {verdict} the target of at most "
                f"{CRPS_TARGET_RATIO:.2f} at horizons {span(CRPS_TARGET_HORIZONS)} (by horizon, {listed})."
            )
    return Finding(title=f"Backtest targets: {measure}", sentence=" ".join(parts), table=rows.reset_index(drop=True))


def against_pooled(table: pd.DataFrame, method: str = MODEL_METHOD, n_boot: int = 1000) -> pd.DataFrame:
    """`method` beside the pooled baseline on the same forecasts, per measure and horizon: what a
    model card quotes.

    Only cells (authority, measure, origin, horizon) both scored enter, so an origin whose model
    fit failed leaves pooled growth's figures too. Returns a DataFrame with ``measure, horizon,
    n_scored`` (the cells both scored), ``n_origins``, ``coverage_90`` and ``pit_mean`` of
    `method`, the same of the baseline (``..._pooled``), and ``crps_ratio``, ``lower``,
    ``upper``: `method`'s summed CRPS over the baseline's with its bootstrap-over-origins
    interval (`crps_ratios`; below 1 `method` is better; rows in `MEASURES` order; with fewer than
    `MIN_ORIGINS_FOR_INTERVAL` origins the interval is left empty: resampling two origins gives
    only their own ratios). Empty if `method` scored nothing.
    """
    columns = [
        "measure", "horizon", "n_scored", "n_origins", "coverage_90", "pit_mean",
        "coverage_90_pooled", "pit_mean_pooled", "crps_ratio", "lower", "upper",
    ]  # fmt: skip
    keys = ["la_code", "measure", "origin", "horizon"]
    scored = table[table["crps"].notna()]
    both = scored[scored["method"] == method][keys].merge(
        scored[scored["method"] == CRPS_TARGET_BASELINE][keys], on=keys
    )
    if both.empty:
        return pd.DataFrame(columns=columns)
    paired = table.merge(both, on=keys)
    paired = paired[paired["method"].isin([method, CRPS_TARGET_BASELINE])]
    summary = summarise_backtest(paired).set_index(["method", "measure", "horizon"])
    ratios = crps_ratios(paired, reference=method, n_boot=n_boot)
    ratios = ratios[ratios["baseline"] == CRPS_TARGET_BASELINE].set_index(["measure", "horizon"])
    rows = []
    for (measure, horizon), r in sorted(ratios.iterrows(), key=lambda item: (measure_rank(item[0][0]), item[0][1])):
        mine, theirs = summary.loc[(method, measure, horizon)], summary.loc[(CRPS_TARGET_BASELINE, measure, horizon)]
        few = int(r["n_origins"]) < MIN_ORIGINS_FOR_INTERVAL
        rows.append(
            {
                "measure": measure,
                "horizon": int(horizon),
                "n_scored": int(r["n_pairs"]),
                "n_origins": int(r["n_origins"]),
                "coverage_90": mine["coverage_90"],
                "pit_mean": mine["pit_mean"],
                "coverage_90_pooled": theirs["coverage_90"],
                "pit_mean_pooled": theirs["pit_mean"],
                "crps_ratio": r["ratio"],
                "lower": np.nan if few else r["lower"],
                "upper": np.nan if few else r["upper"],
            }
        )
    return pd.DataFrame(rows, columns=columns)


def select_measure(table: pd.DataFrame, measure: str) -> pd.DataFrame:
    return table[table["measure"] == measure]


# --------------------------------------------------------------------------------------
# Charts


def plot_coverage(
    table: pd.DataFrame, *, method: str = MODEL_METHOD, la: str | None = None, measure: str | None = None, ax=None
):
    """Empirical coverage by horizon against the nominal level (dotted). Table twin: `coverage_table`."""
    from bayes_lac.style import get_axes, series_style

    fig, ax = get_axes(ax)
    cov = coverage_table(table, method=method, la=la)
    if measure is not None:
        cov = cov[cov["measure"] == measure]
    for i, ((m, level), g) in enumerate(cov.groupby(["measure", "nominal"])):
        style = series_style(i)
        label = f"{level_name(level)}% interval" + (f" ({m})" if cov["measure"].nunique() > 1 else "")
        ax.plot(g["horizon"], g["coverage"], label=label, **style)
        ax.axhline(level, color=style["color"], linestyle=":", linewidth=1)
    ax.set_xlabel("Years ahead (horizon)")
    ax.set_ylabel("Share of published counts inside the interval")
    ax.set_ylim(0, 1)
    ax.set_xticks(sorted(cov["horizon"].unique()))
    ax.set_title(f"Coverage of predictive intervals, {method} (dotted: nominal)")
    ax.legend(frameon=False)
    return fig


def plot_pit(
    table: pd.DataFrame,
    *,
    method: str = MODEL_METHOD,
    la: str | None = None,
    measure: str | None = None,
    bins: int = 10,
    ax=None,
):
    """Histogram of PIT values with the uniform line a calibrated forecast gives. Table twin: `pit_histogram_table`."""
    from bayes_lac.style import PALETTE, get_axes

    fig, ax = get_axes(ax)
    hist = pit_histogram_table(table, method=method, la=la, measure=measure, bins=bins)
    ax.bar(
        hist["bin_lower"],
        hist["share"],
        width=hist["bin_upper"] - hist["bin_lower"],
        align="edge",
        color=PALETTE[2],
        edgecolor=PALETTE[0],
        label="backtest forecasts",
    )
    ax.axhline(1.0 / bins, color=PALETTE[0], linestyle="--", label="calibrated")
    ax.set_xlabel("PIT (where the published count fell in the predictive distribution)")
    ax.set_ylabel("Share of forecasts")
    ax.set_xlim(0, 1)
    ax.set_title(f"PIT histogram, {method}")
    ax.legend(frameon=False)
    return fig


def plot_calibration(
    table: pd.DataFrame, *, method: str = MODEL_METHOD, la: str | None = None, measure: str | None = None, ax=None
):
    """Coverage by horizon (left) and PIT histogram (right).

    `ax` may be a pair of axes; table twins: `coverage_table` and `pit_histogram_table`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    else:
        fig = ax[0].figure
    plot_coverage(table, method=method, la=la, measure=measure, ax=ax[0])
    plot_pit(table, method=method, la=la, measure=measure, ax=ax[1])
    return fig


# --------------------------------------------------------------------------------------
# Command-line helpers


def parse_years(text: str, what: str) -> list[int]:
    """'2014-2022' or '2014,2016,2018' (or a mix) as a sorted list of integers."""
    years: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            a, b = int(match[1]), int(match[2])
            if b < a:
                raise BayesLacError(f"--{what}: range {part!r} runs backwards; write it as {b}-{a}")
            years.update(range(a, b + 1))
        elif re.fullmatch(r"\d+", part):
            years.add(int(part))
        else:
            raise BayesLacError(f"--{what}: expected e.g. 2014-2022 or 2014,2016; got {text!r}")
    return sorted(years)


def parse_methods(text: str, model=None, n_draws: int | None = None) -> tuple:
    """Forecasters from ``--methods``: comma-separated names of `BASELINES`, ``model``, or
    ``baselines`` (all of them)."""
    from bayes_lac.studies.baselines import BASELINE_DRAWS

    baselines = {f.name: f for f in default_baselines(n_draws or BASELINE_DRAWS)}
    chosen = []
    for name in [p.strip() for p in str(text).split(",") if p.strip()]:
        if name == "baselines":
            chosen.extend(baselines.values())
        elif name == MODEL_METHOD:
            chosen.append(model if model is not None else default_model_forecaster())
        elif name in baselines:
            chosen.append(baselines[name])
        else:
            raise BayesLacError(
                f"--methods: unknown method {name!r}; expected model, baselines or some of {', '.join(BASELINES)}"
            )
    unique = {method_name(f): f for f in chosen}
    if not unique:
        raise BayesLacError("--methods: give at least one method")
    return tuple(unique.values())
