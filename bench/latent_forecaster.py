"""Backtest forecaster for the latent-state model: one compiled model refitted at every origin."""

import json
import time
from dataclasses import dataclass, field

from bayes_lac.model.data import prepare_data
from bayes_lac.model.latent_fit import (
    DEFAULT_TARGET_ACCEPT,
    DEFAULT_TREND_MEASURES,
    LatentFitter,
    latent_forecast,
    on_grid,
)
from bayes_lac.studies.baselines import empty_draws

#: Every origin's data are laid on the years up to this one, so one compiled model serves all.
GRID_END = 2025


@dataclass
class LatentForecaster:
    name: str = "model"
    draws: int = 500
    tune: int = 500
    chains: int = 4
    n_draws: int = 1000
    #: overrides of bayes_lac.model.latent.LATENT_PRIORS (a design under evaluation)
    priors: dict | None = None
    #: measures with a local trend (None: all; default: the package's default value, passed
    #: explicitly, so data without looked-after children would be refused rather than fitted
    #: without a trend; the backtest's panel always has them)
    trend_measures: tuple | None = DEFAULT_TREND_MEASURES
    #: future UASC: "hold" (the count at the origin; measured better than "pooled",
    #: models/README.md), "stochastic" (a path around it, bayes_lac.model.uasc) or "pooled"
    #: (pooled empirical h-year changes of each authority's UASC count)
    uasc: str = "hold"
    #: the national path: "drift" or "damped" (bayes_lac.model.latent.build_latent_model)
    national: str = "drift"
    #: NUTS target acceptance (bayes_lac.model.latent_fit.DEFAULT_TARGET_ACCEPT unless set)
    target_accept: float = DEFAULT_TARGET_ACCEPT
    #: how much of a Poisson count's variance is observation noise: "poisson" (the default) or
    #: "share" (sampled for looked-after children; bayes_lac.model.latent.build_latent_model)
    count_noise: str = "poisson"
    #: where forecasts start: "state", "published" or the measures started at the published
    #: count (bayes_lac.model.latent.start_offsets)
    start: object = "state"
    #: the tails of the level's and observation noise's shocks in forecasts: "normal" or
    #: "student" (bayes_lac.model.latent.TAILS; None: the package's default)
    tails: str | None = None
    #: another LatentForecaster whose fit at the same origin this one reuses (a second UASC
    #: design scored on the same fits); it must come first in the backtest's list
    reuse: object = field(default=None, repr=False)
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    _fitter: object = None
    _runs: dict = field(default_factory=dict, repr=False)

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        t0 = time.time()
        if self.reuse is not None:
            run = self.reuse._runs[int(origin)]
        else:
            if self._fitter is None:
                self._fitter = LatentFitter(
                    priors=self.priors,
                    trend_measures=self.trend_measures,
                    national=self.national,
                    count_noise=self.count_noise,
                )
            data = on_grid(prepare_data(panel, "E06000034", neighbours="all", until=int(origin)), GRID_END)
            run = self._fitter.fit(
                data,
                until=int(origin),
                draws=self.draws,
                tune=self.tune,
                chains=self.chains,
                seed=int(seed) + int(origin),
                target_accept=self.target_accept,
            )
            self._runs = {int(origin): run}  # the latest only: a reusing forecaster reads it next
        t1 = time.time()
        sampler = json.loads(run.attrs["sampler"])
        self.diagnostics[int(origin)] = json.loads(run.attrs["diagnostics"])
        uasc_history = panel.pivot_table(index="la_code", columns="year", values="uasc")
        predicted = latent_forecast(
            run,
            int(max(horizons)),
            self.n_draws,
            seed=int(seed),
            uasc=self.uasc,
            uasc_history=uasc_history,
            start=self.start,
            tails=self.tails,
        )
        out = empty_draws(measures, las, horizons, self.n_draws)
        in_run = set(predicted["la"].values)
        for i, m in enumerate(measures):
            for kh, h in enumerate(horizons):
                for jl, la in enumerate(las):
                    if la in in_run:
                        out.values[i, jl, kh] = predicted.sel(measure=m, la=la, horizon=int(h)).values
        self.timings[int(origin)] = {
            "compile": sampler["compile_seconds"],
            "sample": sampler["sample_seconds"],
            "fit_total": t1 - t0,
            "forecast": time.time() - t1,
        }
        return out
