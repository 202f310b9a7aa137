"""Fitting the latent-state model (`bayes_lac.model.latent`) into a run, and forecasting from it.

The latent-state model is the package's default (models/README.md records what it has been
measured to do and what it still lacks). The decomposition, forecasts, costs, the board
report and power-scaling read its runs (through `latent_terms`, `authority_states`, each
authority's states drawn per posterior draw and seeded by its code, and
`latent_log_densities`), and so do refits under other beliefs (`refit`,
`bayes_lac.studies.latent_sensitivity`); the 0.2 model's other analyses (its own prior-set
refits, predictive checks, trends) read that model's runs only, and
`bayes_lac.model.results.run_info` refuses a latent run unless an analysis ported to it asks
otherwise. The backtest (`bayes_lac.studies.backtest.LatentModelForecaster`) and the
leave-future-out check (``bench/bench_latent_lfo.py``) fit with it.

A latent run is an ``xarray.DataTree`` like the default's, with its own contract:

``posterior``
    the hyper-parameters (`bayes_lac.model.latent.HYPER`; with the default ``variance="split"``
    ``level_sd`` and ``noise`` are computed from the sampled ``series_sd`` and ``level_share``,
    and measures without a local trend keep their prior-only ``trend_sd_raw`` and
    ``trend_start_sd_raw``), ``national_z`` (``national_step`` when the steps are centred) and the
    ``national`` path (measure, year); the authorities' states are not stored (they are drawn
    from their exact conditional distribution when needed, `bayes_lac.model.latent.draw_states`,
    which keeps the file small).
``sample_stats``, ``constant_data``, ``observed_data``, ``reference``
    as in a default run (`bayes_lac.model.results`), on the years up to the fit's last year.
root attrs
    ``model = "latent"``, ``run_format`` (`LATENT_RUN_FORMAT`), the data's attrs
    (`bayes_lac.model.data.ModelData.attrs`), ``priors`` (JSON of the latent priors used),
    ``trend_measures`` (JSON list), ``sampler`` (JSON), ``diagnostics`` and ``converged`` (the
    same gate as the default model's, `bayes_lac.model.diagnostics.check_convergence`).

`LatentFitter` keeps one compiled model per grid of authorities, measures and years: a refit
on data up to an earlier year (a backtest origin) masks the later years and reuses it, so a
backtest compiles once (the grid changes only when the set of authorities does).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac import __version__
from bayes_lac.model import latent as L
from bayes_lac.model.data import ModelData
from bayes_lac.model.nuts import default_cores

#: How future UASC enter a looked-after forecast (`bayes_lac.model.uasc`): held at the count of
#: the fit's last year, a stochastic path around it, or grown by pooled changes (measured worse:
#: models/README.md, "What the looked-after forecasts lost on").
from bayes_lac.model.uasc import UASC_PATHS

#: Format of a latent run; a run of another format is refused where latent runs are read.
LATENT_RUN_FORMAT = "4"
#: Value of the root attr ``model`` of a latent run.
LATENT_MODEL = "latent"
#: Default sampler settings of a latent fit.
DEFAULT_DRAWS = 1000
#: Draws per chain of a fit of fewer than `SMALL_PANEL` authorities (a comparison set): measured
#: on Thurrock's 2021 set (models/README.md), 1,000 left the national path's sd of children in
#: need at a tail ESS of 341 on one seed of five; 2,000 passed five of five with tail ESS >= 1,083
#: in 18-19 s of sampling.
SMALL_PANEL_DRAWS = 2000
SMALL_PANEL = 50


def default_draws(n_authorities: int) -> int:
    """Draws per chain by default: `SMALL_PANEL_DRAWS` below `SMALL_PANEL` authorities, else
    `DEFAULT_DRAWS` (the national fit)."""
    return SMALL_PANEL_DRAWS if int(n_authorities) < SMALL_PANEL else DEFAULT_DRAWS


DEFAULT_TUNE = 1000
DEFAULT_CHAINS = 4
#: Target acceptance of NUTS's step-size adaptation (as the default model's fits use). Measured
#: lower: 0.85 and 0.9 failed seeds of the national fit to 2025 (0.8 was tried on one seed
#: only), and nutpie's low-rank mass matrix at 0.9 passed 5 of 5 seeds but failed 4 of 9
#: backtest origins (models/README.md, "Sampler settings").
DEFAULT_TARGET_ACCEPT = 0.95
#: nutpie's mass-matrix adaptation (its own default); ``"low_rank"`` is an option of `LatentFitter.fit`.
DEFAULT_ADAPTATION = "diag"


#: Measures whose authorities have a local (damped) trend by default; in the others each
#: authority's level is a random walk around the national path. Measured (models/README.md,
#: "A local trend for looked-after children only"): children in need's and child protection's
#: local trends are not identified (their trend sds' posteriors reach down to 0, where the
#: damping is free), the national fit to 2025 failed its gate on them, and their forecasts
#: were no better with them (CRPS 0.2-1.3 % worse than without).
DEFAULT_TREND_MEASURES: tuple[str, ...] = ("looked_after",)
#: `LatentFitter`'s default for `trend_measures`: `DEFAULT_TREND_MEASURES` among the data's measures.
_DEFAULT = object()

_DATA_FIELDS_BY_YEAR = ("population_0_17", "uasc", "uasc_imputed", "deprivation", "deprivation_imputed")


def on_grid(data: ModelData, last_year: int) -> ModelData:
    """`data` extended with empty years up to `last_year` (nothing observed in them)."""
    years = np.arange(int(data.year[0]), int(last_year) + 1)
    extra = len(years) - len(data.year)
    if extra <= 0:
        return data

    def pad(a):
        widths = [(0, 0)] * (a.ndim - 1) + [(0, extra)]
        if a.dtype == bool:
            return np.pad(a, widths, constant_values=False)
        return np.pad(a.astype(float), widths, constant_values=np.nan)

    fields = {name: pad(getattr(data, name)) for name in _DATA_FIELDS_BY_YEAR}
    return replace(
        data,
        year=years,
        modelled_count=pad(data.modelled_count),
        reported_count=pad(data.reported_count),
        **fields,
    )


def up_to(data: ModelData, until: int) -> ModelData:
    """`data` cut after year `until` (the grid a fit on data up to `until` describes)."""
    keep = data.year <= int(until)
    if not keep.any():
        raise ValueError(f"no year up to {until} in the data ({int(data.year[0])}-{int(data.year[-1])})")
    fields = {name: getattr(data, name)[:, keep] for name in _DATA_FIELDS_BY_YEAR}
    return replace(
        data,
        year=data.year[keep],
        modelled_count=data.modelled_count[..., keep],
        reported_count=data.reported_count[..., keep],
        until_year=int(min(int(until), data.until_year)),
        # the default model's centring year, which a run's years must hold (the latent model
        # does not use it): the last year kept
        reference_year=int(min(int(data.reference_year), int(data.year[keep][-1]))),
        **fields,
    )


class LatentFitter:
    """Fits the latent-state model, reusing one compiled model per grid.

    Parameters
    ----------
    priors
        Overrides of `bayes_lac.model.latent.LATENT_PRIORS`.
    trend_measures
        Measures whose authorities have a local trend (default: `DEFAULT_TREND_MEASURES`
        among the fitted data's measures; None: every measure).
    national
        Design of the national path, ``"drift"`` or ``"damped"`` (`bayes_lac.model.latent.build_latent_model`).
    sampler
        ``"nutpie"`` (default; the compiled model is reused across refits) or any NUTS
        sampler ``pm.sample`` takes (``"pymc"``, ``"numpyro"``).
    variance, national_steps, count_noise
        Designs of the model (`bayes_lac.model.latent.build_latent_model`): ``"split"`` or
        ``"separate"``, ``"noncentred"`` or ``"centred"``, ``"share"`` or ``"poisson"``;
        recorded in the run's ``sampler`` attr.
    """

    def __init__(
        self,
        priors: dict | None = None,
        trend_measures: Sequence[str] | None = _DEFAULT,  # type: ignore[assignment]
        national: str = "drift",
        sampler: str = "nutpie",
        variance: str = "split",
        national_steps: str = "noncentred",
        count_noise: str = "poisson",
    ):
        if count_noise not in L.COUNT_NOISE_DESIGNS:
            raise ValueError(f"count_noise must be one of {', '.join(L.COUNT_NOISE_DESIGNS)}; got {count_noise!r}")
        self.count_noise = count_noise
        if national not in L.NATIONAL_PATHS:
            raise ValueError(f"national must be one of {', '.join(L.NATIONAL_PATHS)}; got {national!r}")
        if variance not in L.VARIANCE_DESIGNS:
            raise ValueError(f"variance must be one of {', '.join(L.VARIANCE_DESIGNS)}; got {variance!r}")
        if national_steps not in L.NATIONAL_STEPS:
            raise ValueError(f"national_steps must be one of {', '.join(L.NATIONAL_STEPS)}; got {national_steps!r}")
        self.variance = variance
        self.national_steps = national_steps
        self.priors = dict(priors or {})
        self._default_trend = trend_measures is _DEFAULT
        if self._default_trend:
            trend_measures = DEFAULT_TREND_MEASURES
        self.trend_measures = tuple(trend_measures) if trend_measures is not None else None
        self.national = national
        self.sampler = sampler
        self._models: dict = {}

    def _key(self, data: ModelData) -> tuple:
        return (tuple(data.la), tuple(data.measures), tuple(int(y) for y in data.year))

    def _model(self, data: ModelData):
        key = self._key(data)
        if key not in self._models:
            model = L.build_latent_model(
                data,
                priors=self.priors,
                trend_measures=self.trend_measures_for(data),
                national=self.national,
                variance=self.variance,
                national_steps=self.national_steps,
                count_noise=self.count_noise,
            )
            compiled = None
            if self.sampler == "nutpie":
                import nutpie

                # at numba's own optimisation level: compiled at level 0 the model sampled 10 to 50
                # times slower (models/README.md, "Compiling at a lower level, withdrawn")
                compiled = nutpie.compile_pymc_model(model)
            self._models[key] = (model, compiled)
        return self._models[key]

    def fit(
        self,
        data: ModelData,
        until: int | None = None,
        *,
        draws: int | None = None,
        tune: int = DEFAULT_TUNE,
        chains: int = DEFAULT_CHAINS,
        seed: int = 0,
        target_accept: float = DEFAULT_TARGET_ACCEPT,
        adaptation: str | None = None,
        cores: int | None = None,
        progressbar: bool = False,
    ) -> xr.DataTree:
        """Fit on `data`'s years up to `until` (all if None) and return the run.

        `data` is the grid the compiled model is kept for: pass the same (e.g. every year of
        the panel) at every origin of a backtest and only the mask changes. `draws` per chain
        default to `default_draws` of its authorities; `adaptation`, nutpie's mass-matrix
        adaptation, to `DEFAULT_ADAPTATION` (nutpie's only).
        """
        import pymc as pm

        until = int(data.year[-1]) if until is None else int(until)
        draws = default_draws(len(data.la)) if draws is None else int(draws)
        target_accept = float(target_accept)
        if adaptation is not None and self.sampler != "nutpie":
            raise ValueError(f"adaptation is nutpie's setting; this fitter samples with {self.sampler}")
        if self.sampler == "nutpie":
            adaptation = DEFAULT_ADAPTATION if adaptation is None else str(adaptation)
        arrays = L.series_arrays(data, until=until)
        values = {
            "y": arrays["y"],
            "count_var": arrays["count_var"],
            "observed": arrays["observed"].astype(float),
            "dep_between": arrays["dep_between"],
            "dep_within": arrays["dep_within"],
        }
        start = time.perf_counter()
        model, compiled = self._model(data)
        compile_seconds = time.perf_counter() - start
        start = time.perf_counter()
        if compiled is not None:
            import nutpie

            trace = nutpie.sample(
                compiled.with_data(**values),
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores or default_cores(chains),
                seed=int(seed),
                target_accept=target_accept,
                adaptation=adaptation,
                progress_bar=progressbar,
            )
        else:
            with model:
                pm.set_data(values)
                trace = pm.sample(
                    draws,
                    tune=tune,
                    chains=chains,
                    cores=cores or 1,
                    random_seed=int(seed),
                    target_accept=target_accept,
                    progressbar=progressbar,
                    nuts_sampler=self.sampler,
                    compute_convergence_checks=False,
                )
        sample_seconds = time.perf_counter() - start
        sampler_info = {
            "sampler": self.sampler,
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "seed": int(seed),
            "target_accept": target_accept,
            **({"adaptation": adaptation} if adaptation is not None else {}),
            "national": self.national,
            "variance": self.variance,
            "national_steps": self.national_steps,
            "count_noise": self.count_noise,
            "compile_seconds": round(compile_seconds, 1),
            "sample_seconds": round(sample_seconds, 1),
        }
        return assemble_latent_run(
            trace,
            up_to(data, until),
            priors=self.priors_used(),
            sampler_info=sampler_info,
            trend_measures=self.trend_measures_for(data),
        )

    def trend_measures_for(self, data: ModelData) -> tuple[str, ...] | None:
        """The measures of `data` given a local trend (None: every measure)."""
        if self.trend_measures is None:
            return None
        if self._default_trend:
            return tuple(m for m in self.trend_measures if m in data.measures)
        return self.trend_measures

    def priors_used(self) -> dict:
        """The latent priors in full (the defaults with this fitter's overrides), without
        ``count_share`` unless the design samples it (``count_noise="share"``)."""
        used = {**L.LATENT_PRIORS, **self.priors}
        if self.count_noise != "share":
            used.pop("count_share", None)
        return used


def assemble_latent_run(
    trace, data: ModelData, *, priors: dict, sampler_info: dict, trend_measures: Sequence[str] | None
) -> xr.DataTree:
    """A latent run (module docstring) from the sampler's output and the data it was fitted to."""
    from bayes_lac.model.diagnostics import attach_diagnostics

    post = trace["posterior"]
    post = post.to_dataset() if isinstance(post, xr.DataTree) else post
    # every sampled and derived variable of the model: none is large (the states are not sampled)
    posterior = post.sel(year=data.year)
    stats = trace["sample_stats"]
    stats = stats.to_dataset() if isinstance(stats, xr.DataTree) else stats
    run = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": stats[[v for v in ("diverging", "energy", "tree_depth") if v in stats]],
            "constant_data": data.constant_data(),
            "observed_data": data.observed_data(),
            "reference": data.reference,
        }
    )
    measures = list(data.measures)
    run.attrs.update(
        {
            "bayes_lac_version": __version__,
            "model": LATENT_MODEL,
            "run_format": LATENT_RUN_FORMAT,
            **data.attrs(),
            "priors": json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in priors.items()}),
            "trend_measures": json.dumps(list(trend_measures) if trend_measures is not None else measures),
            "sampler": json.dumps(sampler_info),
            "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    attach_diagnostics(run)
    return run


def trend_measures_of(run: xr.DataTree) -> list[str]:
    """The measures of a latent run whose authorities have a local trend (its ``trend_measures``
    attr; every measure if it has none), in the run's order."""
    measures = json.loads(run.attrs["measures"])
    trend = json.loads(run.attrs.get("trend_measures", "null") or "null")
    return list(measures) if trend is None else [m for m in measures if m in trend]


def is_latent_run(run: xr.DataTree) -> bool:
    """Whether `run` is a latent-state model's run (attr ``model`` is ``"latent"``)."""
    return str(run.attrs.get("model", "")) == LATENT_MODEL


def data_of(run: xr.DataTree) -> ModelData:
    """The `ModelData` a latent run was fitted to (from its groups and attrs)."""
    from bayes_lac.errors import RunFileError

    if not is_latent_run(run):
        raise RunFileError("not a latent-state model's run (its attr 'model' is not 'latent')")
    if str(run.attrs.get("run_format")) != LATENT_RUN_FORMAT:
        raise RunFileError(
            f"latent run of format {run.attrs.get('run_format')!r}; this bayes_lac reads format "
            f"{LATENT_RUN_FORMAT}: refit it"
        )
    attrs = run.attrs
    return ModelData.from_groups(
        run,
        tuple(json.loads(attrs["measures"])),
        reference_year=int(attrs["reference_year"]),
        deprivation_centre=float(attrs["deprivation_centre"]),
        target_la=str(attrs["target_la"]),
        comparison=str(attrs["comparison"]),
        neighbours=json.loads(attrs["neighbours"]),
        until_year=int(attrs["until_year"]),
        imputations=json.loads(attrs.get("imputations", "[]")),
        panel_sha256=str(attrs.get("panel_sha256", "")),
        data_vintage=str(attrs.get("data_vintage", "unknown")),
        panel_name=str(attrs.get("panel_name", "")),
    )


def latent_forecast(
    run: xr.DataTree,
    horizon: int = 5,
    n_draws: int | None = 1000,
    seed: int = 0,
    uasc: str = "hold",
    uasc_history: pd.DataFrame | None = None,
    start: str | Sequence[str] = L.DEFAULT_FORECAST_START,
    tails: str | None = None,
) -> xr.DataArray:
    """Predictive counts of each measure 1..`horizon` years after the run's last year.

    Draws `n_draws` posterior draws (None: every draw, with each authority's states drawn as
    every analysis of the run draws them, `authority_states`), each authority's states given
    them, and carries states,
    national path and child population forward (`bayes_lac.model.latent.forecast_log_rates`;
    the population by `bayes_lac.data.population.project_population`). Counts are the
    likelihood's observation model around the forecast rate. Looked-after children add UASC:
    ``"hold"`` keeps each authority's count at the run's last year; ``"pooled"`` grows it by
    h-year changes resampled from `uasc_history` (authority x year UASC counts up to that
    year), the design the leave-future-out check measured worse; ``"stochastic"`` draws a path
    around the held count from past trajectories of the run's authorities' published UASC
    counts (`bayes_lac.model.uasc`). `start` (`bayes_lac.model.latent.start_offsets`):
    ``"state"`` carries each authority on from where the model puts it in the last year,
    ``"published"`` from the published count there (or name the measures so started).
    `tails` (`bayes_lac.model.latent.TAILS`; None: ``DEFAULT_TAILS``): ``"normal"`` draws the
    level's and the observation noise's shocks as the likelihood has them; ``"student"`` keeps
    their variances and gives them, per measure, the tails of the fit's one-step errors
    (`tail_errors`).
    Authorities with no count of a measure have NaN.

    Returns a DataArray (measure, la, horizon, draw) of the published measures' counts.
    """
    from bayes_lac.data.panel import log_changes
    from bayes_lac.data.population import project_population

    if uasc not in UASC_PATHS:
        raise ValueError(f"uasc must be one of {', '.join(UASC_PATHS)}; got {uasc!r}")
    if uasc == "pooled" and uasc_history is None:
        raise ValueError("uasc='pooled' needs uasc_history (authority x year UASC counts)")
    df = forecast_tails(run, tails)
    data = data_of(run)
    rng = np.random.default_rng([int(seed), int(data.year[-1]), 7])
    if n_draws is None:
        # every draw, and each authority's states as every analysis of the run draws them
        # (`authority_states`: seeded by its code); only the last year's are needed
        draws, states, _ = authority_states(run, list(data.la), data, years=[int(data.year[-1])])
    else:
        draws = L.posterior_draws(run["posterior"].to_dataset(), n_draws, rng)
        states = L.draw_states(data, draws, rng)
    n = draws["intercept"].shape[0]
    log_rate = L.forecast_log_rates(data, draws, states, horizon, rng, tails=df)  # (draw, measure, la, h)
    log_rate += L.start_offsets(
        states["mean"][..., -1] + states["level"][..., -1],
        data.modelled_count[..., -1],
        data.population_0_17[:, -1],
        data.measures,
        start,
    )[..., None]
    pop = np.full((n, len(data.la), horizon), np.nan)
    for j in range(len(data.la)):
        history = pd.Series(data.population_0_17[j], index=data.year).dropna()
        if len(history) >= 2:
            pop[:, j, :], _ = project_population(history, horizon, n, rng)
    share = draws["count_share"][:, :, None, None] if "count_share" in draws else None
    counts = L.predictive_counts(
        log_rate,
        pop[:, None],
        draws["noise"][:, :, None, None],
        rng,
        share,
        tails=df[:, None, None],
    )
    last = data.year[-1]
    if "looked_after" in data.measures:
        k = data.measures.index("looked_after")
        held = np.nan_to_num(data.uasc[:, -1])
        if uasc == "hold":
            counts[:, k] += held[None, :, None]
        elif uasc == "stochastic":
            from bayes_lac.model import uasc as U

            ratios = U.donor_ratios(data.uasc, data.uasc_imputed, horizon)
            counts[:, k] += U.around(held[None, :, None], U.stochastic_factors(ratios, (n, len(data.la)), rng))
        else:
            wide = uasc_history.reindex(columns=range(int(uasc_history.columns.min()), int(last) + 1))
            for h in range(1, horizon + 1):
                pool = log_changes(wide, int(last), h)
                if len(pool) < 30:
                    counts[:, k, :, h - 1] = np.nan
                    continue
                grown = (held[None, :] + 1) * np.exp(rng.choice(pool, size=(n, len(data.la)))) - 1
                counts[:, k, :, h - 1] += np.round(np.clip(grown, 0, None))
    has = np.isfinite(data.modelled_count).any(axis=2)  # (measure, la)
    counts = np.where(has[None, :, :, None], counts, np.nan)
    return xr.DataArray(
        np.moveaxis(counts, 0, -1),
        dims=("measure", "la", "horizon", "draw"),
        coords={
            "measure": list(data.measures),
            "la": list(data.la),
            "horizon": np.arange(1, horizon + 1),
            "draw": np.arange(n),
            "year": ("horizon", int(last) + np.arange(1, horizon + 1)),
        },
        name="predicted",
    )


#: Seed of the state draws an analysis of a latent run reads (`latent_terms`): each
#: authority's states are drawn from this and its code, so every analysis of a run, and every
#: selection of authorities, sees the same paths.
STATE_SEED = 2017


#: Authorities whose states are drawn in one batch (`authority_states`): large enough to spread
#: numpy's per-call cost, small enough to keep the filter's arrays near 150 MB at 4,000 draws.
STATE_BATCH = 16


#: Posterior draws whose one-step errors `tail_errors` pools (a fixed, seeded subset).
TAIL_DRAWS = 200


def tail_errors(run: xr.DataTree) -> np.ndarray:
    """Per measure of the run, the degrees of freedom of the tails of its one-step errors
    (`bayes_lac.model.latent.tail_df`; ``inf``: normal): each series' errors standardised by
    the filter's predictive sd, at `TAIL_DRAWS` posterior draws, in the years the run was
    fitted on, every authority pooled. Deterministic for a run."""
    data = data_of(run)
    draws = L.posterior_draws(run["posterior"].to_dataset(), TAIL_DRAWS, np.random.default_rng(TAIL_DRAWS))
    return L.tail_df(_series_loglik(draws, L.series_arrays(data), errors=True))


def forecast_tails(run: xr.DataTree, tails: str | None = None) -> np.ndarray:
    """Per measure of the run, the degrees of freedom its forecasts' shocks are drawn with
    (`bayes_lac.model.latent.unit_shocks`): those of `tail_errors` for ``"student"``, ``inf``
    (normal) for ``"normal"``; None is `bayes_lac.model.latent.DEFAULT_TAILS`."""
    tails = L.DEFAULT_TAILS if tails is None else tails
    if tails not in L.TAILS:
        raise ValueError(f"tails must be one of {', '.join(L.TAILS)}; got {tails!r}")
    if tails == "student":
        return tail_errors(run)
    return np.full(len(json.loads(run.attrs["measures"])), np.inf)


def _authority_rng(code: str) -> np.random.Generator:
    return np.random.default_rng([STATE_SEED, zlib.crc32(str(code).encode())])


def _codes(data: ModelData, la) -> list[str]:
    from bayes_lac.errors import UnknownAuthorityError

    codes = list(data.la) if la is None else ([la] if isinstance(la, str) else [str(c) for c in la])
    unknown = [c for c in codes if c not in data.la]
    if unknown:
        raise UnknownAuthorityError(f"{', '.join(unknown[:5])} not modelled in this run (it models {len(data.la)})")
    return codes


def authority_states(
    run: xr.DataTree, codes: Sequence[str], data: ModelData | None = None, years: Sequence[int] | None = None
):
    """Every posterior draw's states of the authorities `codes`, drawn per authority.

    Each authority's states are drawn from their exact conditional distribution
    (`bayes_lac.model.latent.draw_states`) with a generator seeded by `STATE_SEED` and its code,
    so they do not depend on which other authorities are asked for.

    Returns ``(draws, states, arrays)``: the posterior draws (`bayes_lac.model.latent.posterior_draws`,
    every draw, chains in order), the states (``level``, NaN before a series starts, ``trend``
    and ``mean`` with dims (draw,
    measure, la, year) and ``started`` (measure, la, year), authorities in the order of
    `codes`) and the model's data arrays of those authorities (`bayes_lac.model.latent.series_arrays`
    of the whole run, then cut to them: the deprivation centring is the run's).

    With `years`, the states are drawn from every year's data as always, but only those years
    are kept (of ``level``, ``trend``, ``mean`` and ``started``): a decomposition of every
    authority needs two years, not sixteen, of 4,000 draws.
    """
    data = data_of(run) if data is None else data
    codes = _codes(data, list(codes))
    arrays = L.series_arrays(data)
    draws = L.posterior_draws(run["posterior"].to_dataset(), None, np.random.default_rng(0))  # all, in order
    index = [data.la.index(c) for c in codes]
    subset = _authorities_of(arrays, index)
    n_d, (n_m, _, n_t) = draws["intercept"].shape[0], subset["observed"].shape
    keep = slice(None) if years is None else [list(data.year.astype(int)).index(int(y)) for y in years]
    parts = []
    for first in range(0, len(codes), STATE_BATCH):
        batch = list(range(first, min(first + STATE_BATCH, len(codes))))
        # each authority's normals from its own generator: the same states in any batch
        normals = np.stack([_authority_rng(codes[j]).standard_normal((n_t, n_d, n_m, 2)) for j in batch], axis=-2)
        part = L.draw_states(data, draws, None, arrays=_authorities_of(subset, batch), normals=normals)
        parts.append({k: v[..., keep] for k, v in part.items()})
    states = {k: np.concatenate([p[k] for p in parts], axis=2) for k in ("level", "trend", "mean")}
    states["started"] = np.concatenate([p["started"] for p in parts], axis=1)
    # a series has no level before it starts (draw_states repeats its first year's there)
    states["level"] = np.where(states["started"][None], states["level"], np.nan)
    return draws, states, subset


def _authorities_of(arrays: dict, index: list[int]) -> dict:
    """The model's data arrays (`bayes_lac.model.latent.series_arrays`) of the authorities at `index`."""
    out = {k: arrays[k][:, index] for k in ("y", "count_var", "observed")}
    return out | {"dep_between": arrays["dep_between"][index], "dep_within": arrays["dep_within"][index]}


def latent_terms(run: xr.DataTree, la=None, years: Sequence[int] | None = None) -> xr.Dataset:
    """The terms of a latent run's log rate per draw, in the shape of
    `bayes_lac.model.results.log_rate_terms` (which calls this for latent runs).

    Dims (chain, draw, measure[, la], year), authorities `la` (a code, a list, or all):

    ``level``
        what does not change over time: ``intercept`` and the between-authority deprivation
        part (``deprivation_between`` x the authority's mean deprivation, centred);
    ``trend``
        the authority's own path: its latent level state, drawn per posterior draw from its
        exact conditional distribution (`bayes_lac.model.latent.draw_states`, seeded by
        `STATE_SEED` and the authority's code). It bends where the data bend; NaN before the
        series starts (nothing is extrapolated backwards);
    ``year_effect``
        the national path (``national``) the authorities share;
    ``deprivation``
        the within-authority part: ``deprivation_within`` x the authority's deprivation less
        its own mean;
    ``log_rate``
        their sum, the latent log rate per 10,000 children.

    `years`: only those years (the states are still drawn from every year's data).
    """
    data = data_of(run)
    codes = _codes(data, la)
    post = run["posterior"].to_dataset()
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    draws, states, arrays = authority_states(run, codes, data, years=years)
    own = states["level"]  # (draw, measure, la, year), NaN before a series starts
    all_years = [int(y) for y in data.year]
    keep = list(range(len(all_years))) if years is None else [all_years.index(int(y)) for y in years]
    coords = {
        "chain": post["chain"].values,
        "draw": post["draw"].values,
        "measure": list(data.measures),
        "la": codes,
        "year": np.array([all_years[i] for i in keep]),
    }

    def shaped(values, dims):
        values = np.asarray(values).reshape(n_chain, n_draw, *np.shape(values)[1:])
        return xr.DataArray(
            values, dims=("chain", "draw", *dims), coords={d: coords[d] for d in ("chain", "draw", *dims)}
        )

    between, within = arrays["dep_between"], arrays["dep_within"]
    level = shaped(
        draws["intercept"][:, :, None] + draws["deprivation_between"][:, :, None] * between, ("measure", "la")
    )
    terms = xr.Dataset(
        {
            "level": level,
            "trend": shaped(own, ("measure", "la", "year")),
            "year_effect": shaped(draws["national"][..., keep], ("measure", "year")),
            "deprivation": shaped(
                draws["deprivation_within"][:, :, None, None] * within[None, None][..., keep], ("measure", "la", "year")
            ),
        }
    )
    terms["log_rate"] = terms["level"] + terms["trend"] + terms["year_effect"] + terms["deprivation"]
    terms = terms.transpose("chain", "draw", "measure", "la", "year")
    if isinstance(la, str):
        terms = terms.sel(la=la, drop=True)
    return terms


def latent_prior_contraction(run: xr.DataTree, name: str) -> xr.DataArray | None:
    """1 - posterior variance / prior variance of a latent run's normal-prior parameter `name`,
    per measure (as `bayes_lac.model.results.prior_contraction` for the default model's runs).
    None when the run's recorded priors do not give `name` as (mean, sd)."""
    prior = json.loads(run.attrs.get("priors", "{}")).get(name)
    post = run["posterior"].to_dataset()
    if not isinstance(prior, list) or len(prior) != 2 or name not in post or "measure" not in post[name].dims:
        return None
    measures = [str(m) for m in post[name]["measure"].values]
    sd = prior[1]
    sds = [float(sd[m]) if isinstance(sd, dict) else float(sd) for m in measures]
    prior_var = xr.DataArray(np.square(sds), dims="measure", coords={"measure": measures})
    return (1 - post[name].var(("chain", "draw")) / prior_var).rename(f"{name}_contraction")


#: Chunk of posterior draws whose series log-likelihoods are computed at once
#: (`latent_log_densities`): keeps the filter's arrays near 100 MB for a national run.
LOGLIK_CHUNK = 500


def _series_loglik(
    draws: dict[str, np.ndarray], arrays: dict, per_year: bool = False, errors: bool = False
) -> np.ndarray:
    """Each series' log-likelihood at each draw (draw, measure, la), or its per-year terms
    (draw, measure, la, year) with `per_year`, or its standardised one-step errors with `errors`
    (`bayes_lac.model.latent.kalman_loglik`), in chunks of `LOGLIK_CHUNK` draws."""
    observed = arrays["observed"]
    n_d = draws["intercept"].shape[0]
    out = np.zeros((n_d, *observed.shape) if (per_year or errors) else (n_d, *observed.shape[:2]))
    for first in range(0, n_d, LOGLIK_CHUNK):
        d = {k: v[first : first + LOGLIK_CHUNK] for k, v in draws.items()}
        resid = observed[None] * (arrays["y"][None] - L.known_mean(d, arrays))
        out[first : first + LOGLIK_CHUNK] = L.kalman_loglik(
            resid,
            L.observation_var(d, arrays["count_var"]),
            observed,
            level_start_var=d["level_start_sd"][:, :, None] ** 2,
            trend_start_var=d["trend_start_sd"][:, :, None] ** 2,
            level_var=d["level_sd"][:, :, None] ** 2,
            trend_var=d["trend_sd"][:, :, None] ** 2,
            damping=d["damping"][:, :, None],
            per_year=per_year,
            errors=errors,
        )
    return out


def series_year_loglik(run: xr.DataTree, la: str) -> xr.DataArray:
    """Each year's term of authority `la`'s series log-likelihoods at every posterior draw: the log
    density of the year's observed log rate given the series' earlier years, the parameters and the
    national path (dims chain, draw, measure, year; 0 where nothing is observed, as the coordinate
    ``observed`` (measure, year) says). They add up to the series' log-likelihood in
    `latent_log_densities`."""
    from bayes_lac.errors import UsageError
    from bayes_lac.model.results import run_info

    info = run_info(run, allow_latent=True)
    data = data_of(run)
    if la not in list(data.la):
        raise UsageError(f"{la} is not among the run's authorities")
    post = run["posterior"].to_dataset()
    draws = L.posterior_draws(post, None, np.random.default_rng(0))
    arrays = L.series_arrays(data, until=info.last_year)
    j = list(data.la).index(la)
    terms = _series_loglik(draws, _authorities_of(arrays, [j]), per_year=True)[:, :, 0]
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    return xr.DataArray(
        terms.reshape(n_chain, n_draw, *terms.shape[1:]),
        dims=("chain", "draw", "measure", "year"),
        coords={
            "chain": post["chain"].values,
            "draw": post["draw"].values,
            "measure": list(data.measures),
            "year": [int(y) for y in data.year],
            "observed": (("measure", "year"), arrays["observed"][:, j]),
        },
        name="log_predictive",
    )


def latent_log_densities(run: xr.DataTree) -> tuple[xr.Dataset, xr.Dataset]:
    """Per posterior draw, the log density of the top-level priors and each series' log-likelihood.

    ``log_prior`` (dims chain, draw, measure): one term per prior a user sets in
    ``models/latent_priors.toml`` that the run's design samples, evaluated at the run's draws
    with the priors it recorded: ``intercept``, ``deprivation_between``,
    ``deprivation_within`` and ``drift`` (normal), ``level_start_sd`` and ``national_sd``
    (half-normal), ``series_sd`` (half-normal of scale sqrt(level_sd**2 + noise**2)) and
    ``level_share`` (beta) with the ``split`` variance, or ``level_sd`` and ``noise``
    (half-normal) with ``separate``; ``trend_start_sd``, ``trend_sd`` (half-normal) and
    ``damping`` (beta) of the measures with a local trend only (in the others they do not
    touch the likelihood), ``national_damping`` (beta) of a damped national path, and
    ``count_share`` (beta) of the measures whose share of the count's variance is sampled. The
    national path's standardised steps are the population model, not a belief, and are left out
    (as the 0.2 model's authority effects are: Kallioinen et al. 2024).

    ``log_likelihood`` (variable ``series``, dims chain, draw, measure, la): each series' log
    likelihood with its states integrated out (`bayes_lac.model.latent.kalman_loglik`, the
    likelihood the model was fitted with), on the data up to the run's last fitted year.
    """
    from scipy import stats

    from bayes_lac.model.results import run_info

    info = run_info(run, allow_latent=True)
    data = data_of(run)
    post = run["posterior"].to_dataset()
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    measures = list(data.measures)
    p = {k: L._by_measure(v, tuple(measures)) for k, v in info.priors.items()}
    draws = L.posterior_draws(post, None, np.random.default_rng(0))  # every draw, chains in order
    trend = trend_measures_of(run)
    has_trend = np.array([m in trend for m in measures])
    sampler = info.sampler

    def normal(name):
        return stats.norm.logpdf(draws[name], p[name][0], p[name][1])

    def half(name, scale=None):
        return stats.halfnorm.logpdf(draws[name], scale=p[name] if scale is None else scale)

    def beta(name):
        return stats.beta.logpdf(draws[name], p[name][0], p[name][1])

    terms = {n: normal(n) for n in ("intercept", "deprivation_between", "deprivation_within", "drift")}
    terms |= {n: half(n) for n in ("level_start_sd", "national_sd")}
    if sampler.get("variance", "split") == "split":
        series_sd = np.sqrt(draws["level_sd"] ** 2 + draws["noise"] ** 2)
        terms["series_sd"] = stats.halfnorm.logpdf(series_sd, scale=np.sqrt(p["level_sd"] ** 2 + p["noise"] ** 2))
        share = draws["level_sd"] ** 2 / np.where(series_sd > 0, series_sd**2, 1.0)
        terms["level_share"] = stats.beta.logpdf(share, p["level_share"][0], p["level_share"][1])
    else:
        terms |= {n: half(n) for n in ("level_sd", "noise")}
    for name, value in (
        ("trend_start_sd", half("trend_start_sd")),
        ("trend_sd", half("trend_sd")),
        ("damping", beta("damping")),
    ):
        terms[name] = np.where(has_trend[None], value, 0.0)
    if "national_damping" in draws:
        terms["national_damping"] = beta("national_damping")
    if "count_share" in draws:
        sampled = np.array([m in L.COUNT_SHARE_MEASURES for m in measures])
        value = stats.beta.logpdf(np.where(sampled[None], draws["count_share"], 0.5), *p["count_share"])
        terms["count_share"] = np.where(sampled[None], value, 0.0)

    arrays = L.series_arrays(data, until=info.last_year)
    loglik = _series_loglik(draws, arrays)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "measure": measures}
    log_prior = xr.Dataset(
        {k: (("chain", "draw", "measure"), np.asarray(v).reshape(n_chain, n_draw, -1)) for k, v in terms.items()},
        coords=coords,
    )
    log_lik = xr.Dataset(
        {"series": (("chain", "draw", "measure", "la"), loglik.reshape(n_chain, n_draw, len(measures), -1))},
        coords={**coords, "la": list(data.la)},
    )
    return log_prior, log_lik


def refit_until(run: xr.DataTree, until: int, *, progressbar: bool = False) -> xr.DataTree:
    """`run`'s model fitted again on its data up to `until` only: the same authorities, grid,
    priors, design and sampler settings (a decomposition of a window fitted on the data to the
    window's end, as an analyst at that time would have had them, revisions apart)."""
    from bayes_lac.errors import UsageError
    from bayes_lac.model.results import run_info

    info = run_info(run, allow_latent=True)
    data = data_of(run)
    if not int(data.year[0]) < int(until) <= int(info.last_year):
        raise UsageError(
            f"a refit up to {until} needs a year after the run's first ({int(data.year[0])}) and at most its last "
            f"({info.last_year})"
        )
    return refit(run, until=int(until), progressbar=progressbar)


def refit(
    run: xr.DataTree,
    *,
    until: int | None = None,
    data: ModelData | None = None,
    priors: dict | None = None,
    trend_measures: Sequence[str] | None = _DEFAULT,  # type: ignore[assignment]
    national: str | None = None,
    progressbar: bool = False,
) -> xr.DataTree:
    """`run`'s model fitted again with some of its choices changed, the rest as the run made them.

    Parameters
    ----------
    until
        Fit the years up to this one only (default all of the data's).
    data
        Other data, e.g. another comparison set of the same panel (default the run's own). Its
        draws per chain are `default_draws` of its authorities if the run used the default of its
        own, else the run's.
    priors
        Priors to change (`bayes_lac.model.latent.load_latent_priors` entries); the run's own for
        the rest.
    trend_measures
        Measures with a local trend (None: every measure); default the run's.
    national
        Design of the national path; default the run's.
    """
    from bayes_lac.model.results import run_info

    info = run_info(run, allow_latent=True)
    own = data_of(run)
    sampler = info.sampler
    draws = int(sampler["draws"])
    if data is not None and draws == default_draws(len(own.la)):
        draws = default_draws(len(data.la))
    fitter = LatentFitter(
        priors={**info.priors, **(priors or {})},
        trend_measures=trend_measures_of(run) if trend_measures is _DEFAULT else trend_measures,
        national=national or sampler.get("national", "drift"),
        sampler=sampler.get("sampler", "nutpie"),
        variance=sampler.get("variance", "split"),
        national_steps=sampler.get("national_steps", "noncentred"),
        # a run that does not record it was fitted before the count share existed
        count_noise=sampler.get("count_noise", "poisson"),
    )
    return fitter.fit(
        own if data is None else data,
        until=until,
        draws=draws,
        tune=int(sampler["tune"]),
        chains=int(sampler["chains"]),
        seed=int(sampler.get("seed", 0)),
        target_accept=float(sampler.get("target_accept", DEFAULT_TARGET_ACCEPT)),
        # a nutpie run that does not record it used nutpie's own default, the diagonal mass matrix
        adaptation=sampler.get("adaptation", "diag") if sampler.get("sampler", "nutpie") == "nutpie" else None,
        progressbar=progressbar,
    )
