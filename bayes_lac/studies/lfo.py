"""Approximate leave-future-out check of one authority's series in a latent-state run (PSIS-LFO).

The latent model integrates each series' states out with a Kalman filter, so its likelihood is a
sum over years of one-step-ahead predictive densities: year t's term is the log density of the
year's observed log rate given the series' earlier years (`bayes_lac.model.latent_fit.series_year_loglik`).
Leaving an authority's years after an origin out of the fit reweights the posterior draws by the
inverse of those years' terms; Pareto-smoothed importance sampling (PSIS) gives the weights and
their Pareto k, and the weighted predictive density of the next year is the one-year-ahead
leave-future-out score (Bürkner, Gabry and Vehtari 2020, "Approximate leave-future-out
cross-validation for Bayesian time series models", J. Stat. Comput. Simul. 90(14)).

What it checks and what it does not:
- only the authority's own series leave the fit; every other authority's data, and so the
  national path in every year, stay in (the check is of the authority's own dynamics, not of a
  forecast made at the origin: the backtest, `bayes_lac.studies.backtest`, refits for that);
- what is scored is the density of the year's observed log rate (the model's Gaussian
  approximation of the count on the log scale), not of the count;
- a Pareto k above `K_THRESHOLD` means the importance weights are unreliable there: the years
  left out moved the posterior too much to be undone by reweighting, and only a refit would score
  it. Such origins are reported, not hidden, and their score is left empty (NaN);
- the weights are smoothed with a relative efficiency of 1 (the draws' autocorrelation is not
  taken into account), as for independent draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

#: Pareto k above which PSIS weights are unreliable (Vehtari et al. 2024, "Pareto smoothed
#: importance sampling", JMLR 25(72), for the draw counts of a fit).
K_THRESHOLD = 0.7
#: Observed years of a series up to and including its first origin (the filter's start needs some
#: history).
MIN_HISTORY = 3
#: Columns of `authority_lfo`'s table.
LFO_COLUMNS: tuple[str, ...] = ("la_code", "measure", "origin", "year", "elpd", "pareto_k", "reliable")


def _log_sum_exp(x: np.ndarray) -> float:
    top = float(np.max(x))
    return top + float(np.log(np.sum(np.exp(x - top))))


def authority_lfo(run: xr.DataTree, la: str, k_threshold: float = K_THRESHOLD) -> pd.DataFrame:
    """One-year-ahead PSIS-LFO of each of `la`'s series in a latent run.

    Returns
    -------
    DataFrame with columns `LFO_COLUMNS`: a row per measure and origin (each observed year after
    the series' first `MIN_HISTORY` observed years whose next year is observed): ``elpd`` the log
    predictive density of the next year's observed log rate given the series up to the origin,
    ``pareto_k`` the Pareto k of the weights that leave the years after the origin out, and
    ``reliable`` whether k <= `k_threshold` (``elpd`` is NaN where it is not). A year is observed
    where the fit's likelihood has it (`bayes_lac.model.latent.series_arrays`); the first year
    after a gap is never scored (it would be two years ahead).
    """
    from arviz_stats.base import array_stats

    from bayes_lac.model.latent_fit import series_year_loglik

    terms = series_year_loglik(run, la)
    years = [int(y) for y in terms["year"].values]
    rows = []
    for measure in terms["measure"].values:
        t = terms.sel(measure=measure).values.reshape(-1, len(years))  # (draw, year)
        seen_years = [y for y, s in zip(years, terms["observed"].sel(measure=measure).values) if s]
        for origin in seen_years[MIN_HISTORY - 1 : -1]:
            nxt = origin + 1
            if nxt not in seen_years:
                continue
            k_o = years.index(origin)
            future = t[:, k_o + 1 :].sum(axis=1)  # the terms the weights take out
            log_w, khat = array_stats.psislw(future, r_eff=1.0, axis=-1)
            log_w = np.asarray(log_w) - _log_sum_exp(np.asarray(log_w))
            elpd = _log_sum_exp(log_w + t[:, years.index(nxt)])
            k = float(khat)
            rows.append(
                {
                    "la_code": la,
                    "measure": str(measure),
                    "origin": origin,
                    "year": nxt,
                    "elpd": elpd if k <= k_threshold else np.nan,
                    "pareto_k": k,
                    "reliable": bool(k <= k_threshold),
                }
            )
    return pd.DataFrame(rows, columns=list(LFO_COLUMNS))


def lfo_sentence(table: pd.DataFrame, la_name: str, k_threshold: float = K_THRESHOLD) -> str:
    """One sentence on `authority_lfo`'s table: how many origins it scored, and where its
    weights were unreliable."""
    if table.empty:
        return f"No origin of {la_name}'s series has the history a leave-future-out check needs."
    bad = table[~table["reliable"]]
    first, last = int(table["origin"].min()), int(table["origin"].max())
    scored = f"{len(table)} one-year-ahead checks of {la_name}'s series (origins {first}-{last})"
    if bad.empty:
        return (
            f"Leave-future-out (PSIS-LFO, no refit): {scored}; Pareto k at most {table['pareto_k'].max():.2f}, "
            f"every one reliable (k <= {k_threshold:g})."
        )
    where = "; ".join(
        f"{m.replace('_', ' ')} {', '.join(str(int(o)) for o in g['origin'])}"
        for m, g in bad.groupby("measure", sort=False)
    )
    return (
        f"Leave-future-out (PSIS-LFO, no refit): {scored}; {len(bad)} with Pareto k above {k_threshold:g} "
        f"(origins: {where}), where the years after the origin moved the fit too much for reweighting to undo "
        "them: those are not checked here, only by the backtest's refits."
    )
