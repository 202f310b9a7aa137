"""Backtest forecaster for the latent-state model: one compiled model refitted at every origin."""

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from bayes_lac.data.population import project_population
from bayes_lac.model import latent as L
from bayes_lac.model.data import prepare_data
from bayes_lac.studies.baselines import PooledGrowth, empty_draws

GRID_END = 2025


def pad_years(data, last_year=GRID_END):
    years = np.arange(int(data.year[0]), last_year + 1)
    extra = len(years) - len(data.year)
    if extra <= 0:
        return data

    def pad(a):
        widths = [(0, 0)] * (a.ndim - 1) + [(0, extra)]
        if a.dtype == bool:
            return np.pad(a, widths, constant_values=False)
        return np.pad(a.astype(float), widths, constant_values=np.nan)

    return replace(
        data,
        year=years,
        population_0_17=pad(data.population_0_17),
        uasc=pad(data.uasc),
        uasc_imputed=pad(data.uasc_imputed),
        deprivation=pad(data.deprivation),
        deprivation_imputed=pad(data.deprivation_imputed),
        modelled_count=pad(data.modelled_count),
        reported_count=pad(data.reported_count),
    )


@dataclass
class LatentForecaster:
    name: str = "model"
    draws: int = 500
    tune: int = 500
    chains: int = 4
    n_draws: int = 1000
    #: overrides of bayes_lac.model.latent.LATENT_PRIORS (a design under evaluation)
    priors: dict | None = None
    #: measures with a local trend (None: all)
    trend_measures: tuple | None = None
    #: future UASC: "hold" (the count at the origin; measured better, models/README.md) or
    #: "pooled" (pooled empirical h-year changes of each authority's UASC count)
    uasc: str = "hold"
    timings: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    _compiled: object = None

    def __call__(self, panel, origin, horizons, measures, *, las, quantity="count", seed=0):
        import nutpie

        t0 = time.time()
        data = prepare_data(panel, "E06000034", neighbours="all", until=int(origin))
        data = pad_years(data)
        arrays = L.series_arrays(data, until=int(origin))
        # one compiled model per set of authorities (a reorganisation changes the set)
        key = tuple(data.la)
        if self._compiled is None:
            self._compiled = {}
        if key not in self._compiled:
            self._compiled[key] = nutpie.compile_pymc_model(
                L.build_latent_model(data, priors=self.priors, until=int(origin), trend_measures=self.trend_measures)
            )
        compiled = self._compiled[key]
        c = compiled.with_data(
            y=arrays["y"],
            count_var=arrays["count_var"],
            observed=arrays["observed"].astype(float),
            dep_between=arrays["dep_between"],
            dep_within=arrays["dep_within"],
        )
        t1 = time.time()
        tr = nutpie.sample(
            c,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            cores=2,
            seed=int(seed) + int(origin),
            progress_bar=False,
        )
        t2 = time.time()
        post = tr.posterior if hasattr(tr, "posterior") else tr["posterior"]
        from bayes_lac.model import diagnostics as D

        sampled = [v for v in post.data_vars if v not in ("national", "trend_sd", "trend_start_sd")]
        stats = [
            D._convergence_statistics(D._scalars_first(post[v].transpose("chain", "draw", ...).values)) for v in sampled
        ]
        self.diagnostics[int(origin)] = {
            "rhat_max": float(max(np.nanmax(r) for r, _, _ in stats)),
            "ess_bulk_min": float(min(np.nanmin(b) for _, b, _ in stats)),
            "ess_tail_min": float(min(np.nanmin(t) for _, _, t in stats)),
            "divergences": int(np.asarray(tr.sample_stats["diverging"]).sum()),
        }
        rng = np.random.default_rng([int(seed), int(origin), 7])
        # cut the grid back at the origin for the state draws and forecasts
        k = int(np.nonzero(data.year == int(origin))[0][0])
        cut = replace(
            data,
            year=data.year[: k + 1],
            population_0_17=data.population_0_17[:, : k + 1],
            uasc=data.uasc[:, : k + 1],
            uasc_imputed=data.uasc_imputed[:, : k + 1],
            deprivation=data.deprivation[:, : k + 1],
            deprivation_imputed=data.deprivation_imputed[:, : k + 1],
            modelled_count=data.modelled_count[..., : k + 1],
            reported_count=data.reported_count[..., : k + 1],
        )
        draws = L.posterior_draws(post, self.n_draws, rng)
        draws["national"] = draws["national"][..., : k + 1]
        states = L.draw_states(cut, draws, rng)
        hmax = int(max(horizons))
        log_rate = L.forecast_log_rates(cut, draws, states, hmax, rng)  # (draw, m, la, h)
        # population projections per authority
        pop = np.full((self.n_draws, len(cut.la), hmax), np.nan)
        for j in range(len(cut.la)):
            hist = pd.Series(cut.population_0_17[j], index=cut.year).dropna()
            if len(hist) >= 2:
                pop[:, j, :], _ = project_population(hist, hmax, self.n_draws, rng)
        counts = L.predictive_counts(log_rate, pop[:, None], draws["noise"][:, :, None, None], rng)
        # UASC: pooled empirical h-year changes applied to the count at the origin
        uasc_wide = panel.pivot_table(index="la_code", columns="year", values="uasc")
        out = empty_draws(measures, las, horizons, self.n_draws)
        la_index = {la: j for j, la in enumerate(cut.la)}
        for i, m in enumerate(measures):
            mk = cut.measures.index(m)
            for kh, h in enumerate(horizons):
                c_h = counts[:, mk, :, int(h) - 1]
                if m == "looked_after" and self.uasc == "hold":
                    c_h = c_h + np.nan_to_num(cut.uasc[:, -1])[None, :]
                elif m == "looked_after":
                    pool = PooledGrowth.changes(
                        uasc_wide.reindex(columns=range(2010, int(origin) + 1)), int(origin), int(h)
                    )
                    u_t = cut.uasc[:, -1]
                    if len(pool) < 30:
                        continue  # no UASC change that long before the origin: cannot forecast
                    u_future = (np.nan_to_num(u_t)[None, :] + 1) * np.exp(
                        rng.choice(pool, size=(self.n_draws, len(cut.la)))
                    ) - 1
                    c_h = c_h + np.round(np.clip(u_future, 0, None))
                for jl, la in enumerate(las):
                    j = la_index.get(la)
                    if j is None or not np.isfinite(cut.modelled_count[mk, j]).any():
                        continue
                    out.values[i, jl, kh] = c_h[:, j]
        self.timings[int(origin)] = {"prepare": t1 - t0, "sample": t2 - t1, "post": time.time() - t2}
        return out
