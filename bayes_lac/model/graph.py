"""The hierarchical model of looked-after children, children in need and child protection.

One authority is fitted jointly with its comparison set (its DfE statistical neighbours, a
list of authorities, or every authority in England); the model, its variables and the run it
returns are specified in ``bayes_lac.model.results``. In short, for measure m, authority i, year t::

    modelled_count ~ NegBin(mean, alpha = dispersion[m])
    log mean       = log(population_0_17 / 10,000) + log_rate + persistence[m] * deviation[t - 1]
    log_rate       = intercept[m] + la_intercept[i, m] + la_trend[i, m] * (year - reference_year)
                     + year_effect[m, t] + deprivation_effect[m] * (deprivation - deprivation_centre)

``log_rate`` is the authority's path; ``deviation`` is how far last year's published count
sat from it. Authority levels and trends sum to zero over the comparison set and are
correlated across measures (LKJ prior); the common path ``year_effect`` is a random walk,
held at zero up to each measure's first year with data (children in need and child
protection are published from 2013).

Parameterisation: the model is the same whichever way the sampler sees it; `build_model`
documents the changes of variables (levels at the middle of each authority's data, the
deprivation parts folded into the effects) and `choose_parameterisation` which blocks are
sampled as themselves (centred) or standardised (non-centred). With the persistence term
each year's count informs the path only through its change from last year's, so the
authority effects are weakly pinned by their own data and the default is non-centred
(measured in ``bench/bench_fit.py``).

Usage::

    from bayes_lac.model.fit import LACModel
    run = LACModel("E06000034", neighbours="2021").fit(panel)
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import ZeroSumTransform

from bayes_lac.config import RATE_PER
from bayes_lac.model.data import ModelData
from bayes_lac.model.priors import LKJ, NORMAL, PRIORS

#: How the sampler sees the parameters by default (see `choose_parameterisation`).
DEFAULT_PARAMETERISATION = "non_centred"
PARAMETERISATIONS: tuple[str, ...] = ("auto", "centred", "non_centred", "baseline")


# ---------------------------------------------------------------------------------------
# The model graph
# ---------------------------------------------------------------------------------------


def _zero_sum_effect(name: str, chol, mean, centred: np.ndarray, n_measures: int, model: pm.Model):
    """Authority effects (la, measure): `mean` plus zero-sum multivariate normal deviations.

    The distribution: draw each authority's row from MvNormal(0, Sigma) (Sigma = chol @
    chol.T, across measures), subtract the mean row, add `mean`. So the effects less `mean`
    sum to zero over authorities exactly.

    How it is sampled: the zero-sum deviations are an orthonormal map Q (pymc's zero-sum
    basis) of n_la - 1 independent rows ``Y[i] ~ MvNormal(0, Sigma)``; row i stands for
    authority i (the last authority has no own row). Each row is built measure by measure
    from its Cholesky conditionals, ``Y[i, k] | Y[i, :k] ~ Normal(sum_j<k chol[k, j] z[i, j],
    chol[k, k])``, and each element is sampled either as itself plus its share of `mean`
    (centred: where the authority's own data pin it, ``centred[i, k]``; the data pin the
    effect *with* its mean, e.g. an authority's level including its deprivation part) or as
    a standard normal z (non-centred: where the prior dominates, e.g. a trend with two years
    of data, or a measure the authority has no data for). Every choice gives the same
    distribution; it only changes the geometry the sampler sees (centred effects with weak
    data, and non-centred ones with strong data, form funnels with Sigma).

    Sampled variables: ``{name}`` (centred elements, dim ``{name}_centred``) and ``{name}_z``
    (the others, dim ``{name}_noncentred``). Returns the (la, measure) tensor of effects.
    """
    centred = np.asarray(centred, bool)
    n_la = centred.shape[0]
    rows = centred[:-1]  # rows of Y: authorities 0 .. n_la - 2
    n_rows = n_la - 1
    # element order: measure by measure (column-major), the order the Cholesky recursion uses
    cmask = rows.T.ravel()  # (m * n_rows,)
    c_pos, nc_pos = np.flatnonzero(cmask), np.flatnonzero(~cmask)
    n_c, n_nc = len(c_pos), len(nc_pos)
    labels = np.array(model.coords["la"], dtype=object)
    measures = list(model.coords["measure"])
    cell_labels = np.array(
        [f"{labels[i]} {measures[k]}" for k in range(n_measures) for i in range(n_rows)], dtype=object
    )
    basis = ZeroSumTransform([0])
    mean_avg = mean.mean(axis=0, keepdims=True)
    # `mean` in the coordinates of Y (its zero-sum part): centred elements are sampled as
    # Y + mean_y, which is what the data see
    mean_y = basis.forward(mean - mean_avg).T.ravel()  # column-major like the elements

    def columns(chol, yc_full, z_full, mean_y):
        """Y (column-major vector) and the conditional means of all elements.

        Every symbolic input is an argument: a CustomDist's logp may not reach variables of
        the enclosing model."""
        ycols, zcols, cond = [], [], []
        for k in range(n_measures):
            sl = slice(k * n_rows, (k + 1) * n_rows)
            cm = pt.zeros(n_rows)
            for j in range(k):
                cm = cm + chol[k, j] * zcols[j]
            yk = pt.where(cmask[sl], yc_full[sl] - mean_y[sl], cm + chol[k, k] * z_full[sl])
            cond.append(cm + mean_y[sl])
            ycols.append(yk)
            zcols.append((yk - cm) / chol[k, k])
        return pt.concatenate(ycols), pt.concatenate(cond)

    def full(values, positions):
        return pt.set_subtensor(pt.zeros(n_measures * n_rows)[positions], values)

    sd_index = np.repeat(np.arange(n_measures), n_rows)
    if n_nc:
        model.add_coord(f"{name}_noncentred", cell_labels[nc_pos].tolist())
        z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=f"{name}_noncentred")
        z_full = full(z, nc_pos)
    else:
        z = pt.zeros(0)
        z_full = pt.zeros(n_measures * n_rows)
    if n_c:
        model.add_coord(f"{name}_centred", cell_labels[c_pos].tolist())

        def dist(chol, z, mean_y, size):
            eps = pm.Normal.dist(0.0, 1.0, shape=(n_measures * n_rows,))
            zf = full(z, nc_pos)
            # draw column by column: a centred element is its conditional mean plus noise
            ycols, zcols = [], []
            for k in range(n_measures):
                sl = slice(k * n_rows, (k + 1) * n_rows)
                cm = pt.zeros(n_rows)
                for j in range(k):
                    cm = cm + chol[k, j] * zcols[j]
                yk = cm + chol[k, k] * pt.where(cmask[sl], eps[sl], zf[sl])
                ycols.append(yk + mean_y[sl])
                zcols.append((yk - cm) / chol[k, k])
            return pt.concatenate(ycols)[c_pos]

        def logp(value, chol, z, mean_y):
            _, cond = columns(chol, full(value, c_pos), full(z, nc_pos), mean_y)
            sd = pt.diag(chol)[sd_index]
            return pt.sum(pm.logp(pm.Normal.dist(cond[c_pos], sd[c_pos]), value))

        yc = pm.CustomDist(
            name,
            chol,
            z,
            mean_y,
            dist=dist,
            logp=logp,
            support_point=lambda rv, size, chol, z, mean_y: mean_y[c_pos],
            signature="(m,m),(q),(e)->(c)",
            dims=f"{name}_centred",
        )
        yc_full = full(yc, c_pos)
    else:
        yc_full = pt.zeros(n_measures * n_rows)
    y, _ = columns(chol, yc_full, z_full, mean_y)
    return mean + basis.backward(y.reshape((n_measures, n_rows)).T)


def _negbin_log_mean_dist(log_mu, alpha, size):
    return pm.NegativeBinomial.dist(mu=pt.exp(log_mu), alpha=alpha, size=size)


def _negbin_log_mean_logp(value, log_mu, alpha):
    """Negative-binomial log-probability in terms of the log mean.

    The same density as ``pm.NegativeBinomial(mu, alpha)`` with fewer special functions per
    cell (pymc's form evaluates a log-beta, i.e. three log-gammas, and their digammas in the
    gradient): the likelihood is most of the cost of a gradient evaluation.
    """
    return (
        pt.gammaln(value + alpha)
        - pt.gammaln(alpha)
        - pt.gammaln(value + 1.0)
        + value * log_mu
        + alpha * pt.log(alpha)
        - (value + alpha) * pt.log(pt.exp(log_mu) + alpha)
    )


def _random_walk_levels(name: str, loc, scale, is_first: np.ndarray, dims):
    """Random walks on levels, several laid end to end in one vector.

    Element k starts a walk where ``is_first[k]``: ``value[k] ~ Normal(loc[k], scale[k])``;
    otherwise ``value[k] ~ Normal(value[k - 1] + loc[k], scale[k])`` (loc is the mean step).
    """
    is_first = np.asarray(is_first, bool)
    starts = np.flatnonzero(is_first)
    # index of the start of each element's walk
    start_of = starts[np.searchsorted(starts, np.arange(len(is_first)), side="right") - 1]
    follows = (~is_first).astype(float)

    def segmented_cumsum(increments):
        total = pt.cumsum(increments)
        return total - total[start_of] + increments[start_of]

    def dist(loc, scale, size):
        eps = pm.Normal.dist(0.0, 1.0, shape=(len(is_first),))
        return segmented_cumsum(loc + scale * eps)

    def logp(value, loc, scale):
        previous = pt.concatenate([pt.zeros(1), value[:-1]]) * follows
        return pt.sum(pm.logp(pm.Normal.dist(previous + loc, scale), value))

    return pm.CustomDist(
        name,
        loc,
        scale,
        dist=dist,
        logp=logp,
        support_point=lambda rv, size, loc, scale: segmented_cumsum(loc),
        signature="(k),(k)->(k)",
        dims=dims,
    )


def _covariance(name: str, priors: dict, measures) -> pt.TensorVariable:
    """Cholesky factor of the covariance across measures of an authority effect.

    The sds and the correlation matrix take their priors from ``PRIORS["{name}_sd"]`` and
    ``PRIORS["{name}_corr"]``. Stores ``{name}_sd`` (measure) and, for several measures,
    ``{name}_corr``.
    """
    n_m = len(measures)
    sd_prior, corr_prior = PRIORS[f"{name}_sd"], PRIORS[f"{name}_corr"]
    sd_parameters = sd_prior.parameters(priors, measures)
    if n_m == 1:
        sds = sd_prior.family.variable(f"{name}_sd", sd_parameters, dims="measure")
        return pt.diag(sds)
    if corr_prior.family is not LKJ:
        raise NotImplementedError(f"the model builds {name}_corr with an LKJ prior, not {corr_prior.family.name}")
    chol, corr, sds = pm.LKJCholeskyCov(
        f"{name}_chol",
        n=n_m,
        eta=corr_prior.parameters(priors, measures)["eta"],
        sd_dist=sd_prior.family.dist(sd_parameters, shape=n_m),
        compute_corr=True,
        store_in_trace=False,
    )
    pm.Deterministic(f"{name}_sd", sds, dims="measure")
    pm.Deterministic(f"{name}_corr", corr, dims=("measure", "measure_bis"))
    return chol


def deprivation_parts(data: ModelData) -> dict[str, np.ndarray]:
    """Split centred deprivation into authority, year, authority-trend and residual parts.

    ``deprivation - centre = la[i] + year[t] + la_slope[i] * (year - mean year) + rest[i, t]``
    with ``la`` and ``la_slope`` summing to zero over authorities and ``year`` over years.
    The model samples the combinations the data identify (e.g. an authority's level
    including its deprivation part) instead of fighting the ridge between the deprivation
    effect and the authority and year effects; this is an exact change of variables.
    """
    dep = data.deprivation - data.deprivation_centre
    la = dep.mean(axis=1)
    year = dep.mean(axis=0)
    rest = dep - la[:, None] - year[None, :]
    tc = (data.year - data.year.mean()).astype(float)
    slope = (rest * tc[None, :]).sum(axis=1) / np.sum(tc**2) if np.sum(tc**2) > 0 else np.zeros(len(la))
    rest = rest - slope[:, None] * tc[None, :]
    return {"la": la, "year": year, "la_slope": slope, "rest": rest, "year_centre": float(data.year.mean())}


def informativeness(data: ModelData) -> dict:
    """How well each block of parameters is pinned by its own data (quick, before fitting).

    The sampler mixes best when a parameter the data pin is sampled as itself (centred) and
    one the data barely inform is sampled through a standardised variable (non-centred).
    On the log-rate scale, with each cell weighted by its information (count / (1 + count *
    cv^2), cv the residual coefficient of variation estimated from the data), this compares

    * per authority and measure: the standard error of the authority's own level and own
      trend (weighted least squares on its log rates) with the spread of levels and trends
      between authorities (method-of-moments estimates from the same fits);
    * per measure: the standard error of one year's common level (all authorities) with the
      year-to-year movement of the common level (its differences, noise removed).

    Returns ``level_ratio``, ``trend_ratio`` (la, measure) and ``year_ratio`` (measure,):
    below 1 the data dominate, above 1 the prior does; and the estimates used.
    """
    n_m, n_la, n_y = data.modelled_count.shape
    years = data.year.astype(float)
    level_ratio = np.full((n_la, n_m), np.inf)
    trend_ratio = np.full((n_la, n_m), np.inf)
    year_ratio = np.full(n_m, np.inf)
    details: dict = {
        "cv": [],
        "residual_autocorrelation": [],
        "level_sd": [],
        "trend_sd": [],
        "year_sd": [],
        "year_se": [],
    }
    for k in range(n_m):
        y = data.modelled_count[k]
        have = ~np.isnan(y)
        rate = np.where(have, np.log((np.nan_to_num(y) + 0.5) / data.population_0_17), 0.0)
        # residual cv: noise of log rates around each authority's straight line, less Poisson
        resid, dof, lag_num, lag_den = 0.0, 0, 0.0, 0.0
        for i in range(n_la):
            h = have[i]
            if h.sum() >= 3:
                coef = np.polyfit(years[h], rate[i, h], 1)
                e = rate[i, h] - np.polyval(coef, years[h])
                resid += np.sum(e**2 - 1.0 / (y[i, h] + 0.5))
                dof += int(h.sum()) - 2
                lag_num += float(np.sum(e[1:] * e[:-1]))
                lag_den += float(np.sum(e**2))
        cv2 = max(resid / dof, 0.02**2) if dof > 0 else 0.1**2
        # persistent deviations (lag-1 autocorrelation rho of the residuals): with the
        # persistence term each year's count informs the path only through its change from
        # persistence x last year's, so standard errors grow by about 1 / (1 - rho)
        rho = float(np.clip(lag_num / lag_den, 0.0, 0.9)) if lag_den > 0 else 0.0
        inflate = 1.0 / (1.0 - rho)
        w = np.where(have, (np.nan_to_num(y) + 0.5) / (1.0 + (np.nan_to_num(y) + 0.5) * cv2), 0.0)
        wsum = w.sum(axis=1)
        level = np.where(wsum > 0, (w * rate).sum(axis=1) / np.maximum(wsum, 1e-12), np.nan)
        se_level = np.where(wsum > 0, 1.0 / np.sqrt(np.maximum(wsum, 1e-12)), np.inf)
        tbar = np.where(wsum > 0, (w * years).sum(axis=1) / np.maximum(wsum, 1e-12), 0.0)
        sxx = (w * (years[None, :] - tbar[:, None]) ** 2).sum(axis=1)
        two_years = have.sum(axis=1) >= 2
        slope = np.where(
            two_years,
            (w * (years[None, :] - tbar[:, None]) * (rate - level[:, None])).sum(axis=1) / np.maximum(sxx, 1e-12),
            np.nan,
        )
        se_slope = np.where(two_years & (sxx > 0), 1.0 / np.sqrt(np.maximum(sxx, 1e-12)), np.inf)
        ok = np.isfinite(se_level)
        # levels include the year mix of each authority's data: a crude but safe spread
        level_var = max(np.var(level[ok]) - np.mean(se_level[ok] ** 2), 0.05**2) if ok.sum() >= 3 else 0.3**2
        ok = np.isfinite(se_slope) & (have.sum(axis=1) >= 5)
        trend_var = max(np.var(slope[ok]) - np.mean(se_slope[ok] ** 2), 0.003**2) if ok.sum() >= 3 else 0.02**2
        level_ratio[:, k] = inflate * se_level / np.sqrt(level_var)
        trend_ratio[:, k] = inflate * se_slope / np.sqrt(trend_var)
        # common level per year: precision sums over authorities; its movement from the
        # differences of the weighted yearly means of each authority's deviations from its
        # own level (so authorities entering or leaving do not move it)
        year_w = w.sum(axis=0)
        use = year_w > 0
        dev = np.where(have, rate - np.nan_to_num(level)[:, None], 0.0)
        ybar = (w * dev).sum(axis=0)[use] / year_w[use]
        se_year = float(np.sqrt(np.median(1.0 / year_w[use])))
        diffs = np.diff(ybar)
        move2 = np.var(diffs) - 2 * se_year**2 if diffs.size >= 3 else 0.0
        year_sd = float(np.sqrt(max(move2, 0.005**2)))
        year_ratio[k] = se_year / year_sd
        details["cv"].append(float(np.sqrt(cv2)))
        details["residual_autocorrelation"].append(rho)
        details["level_sd"].append(float(np.sqrt(level_var)))
        details["trend_sd"].append(float(np.sqrt(trend_var)))
        details["year_sd"].append(year_sd)
        details["year_se"].append(se_year)
    return {"level_ratio": level_ratio, "trend_ratio": trend_ratio, "year_ratio": year_ratio, **details}


#: Centre a block when its own data's standard error is below this multiple of the spread
#: its prior must explain (`informativeness`).
CENTRE_BELOW_RATIO = 1.0


def choose_parameterisation(data: ModelData, parameterisation: str = "auto") -> dict:
    """Which parameters are sampled centred (as themselves) rather than standardised.

    ``"auto"`` centres each authority's level and trend per measure, and each measure's
    common path, where its own data dominate (`informativeness` ratio below
    `CENTRE_BELOW_RATIO`); ``"centred"`` and ``"non_centred"`` centre everything or nothing
    (``"baseline"`` is the straightforward non-centred model). Returns a JSON-able dict
    ``{"mode", "centred_level": {measure: [codes]}, "centred_trend": {...}, "centred_year":
    [measures]}``, stored in a run so the same model can be rebuilt from it.
    """
    measures = list(data.measures)
    if parameterisation == "centred":
        every = {m: list(data.la) for m in measures}
        return {"mode": "centred", "centred_level": every, "centred_trend": every, "centred_year": measures}
    if parameterisation in ("non_centred", "baseline"):
        none = {m: [] for m in measures}
        return {"mode": parameterisation, "centred_level": none, "centred_trend": none, "centred_year": []}
    if parameterisation != "auto":
        raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got {parameterisation!r}")
    info = informativeness(data)
    las = np.array(data.la)
    return {
        "mode": "auto",
        "centred_level": {
            m: las[info["level_ratio"][:, k] < CENTRE_BELOW_RATIO].tolist() for k, m in enumerate(measures)
        },
        "centred_trend": {
            m: las[info["trend_ratio"][:, k] < CENTRE_BELOW_RATIO].tolist() for k, m in enumerate(measures)
        },
        "centred_year": [m for m, r in zip(measures, info["year_ratio"]) if r < CENTRE_BELOW_RATIO],
    }


def _centred_matrix(data: ModelData, by_measure: dict) -> np.ndarray:
    """(la, measure) booleans from a {measure: [codes]} partition."""
    return np.stack([np.isin(np.array(data.la), by_measure.get(m, [])) for m in data.measures], axis=1)


def build_model(data: ModelData, priors: dict, parameterisation=DEFAULT_PARAMETERISATION) -> pm.Model:
    """The PyMC model of `data` under `priors` (see the module docstring).

    Parameters
    ----------
    parameterisation
        ``"non_centred"`` (default, `DEFAULT_PARAMETERISATION`), ``"auto"`` (centre each block
        where its data dominate, see `choose_parameterisation`), ``"centred"``, ``"baseline"`` (the
        straightforward model of the benchmark: non-centred effects and steps, deprivation
        entered as written), or a dict from `choose_parameterisation` (e.g. from a saved run).

    Notes
    -----
    Except in the baseline, the sampled variables are combinations the data identify, each
    with the prior of the contract variables it stands for (linear changes of variables with
    unit Jacobian, so the model is the same):

    * deprivation is split by `deprivation_parts`; its authority, authority-trend and year
      parts are folded into the authority levels, trends and the common path (the ridge
      between the deprivation effect and those effects then disappears);
    * authority levels are sampled at the middle of each measure's data (``la_mid``), where
      level and trend are nearly uncorrelated, and trends as ``la_slope``;
    * the common path is sampled as the level of each year (``common_level``, a random walk
      on levels), not as steps, when centred: each year's data pin its level, while steps
      (differences of levels) are strongly correlated.

    The contract variables (``intercept``, ``la_intercept``, ``la_trend``, ``year_effect``,
    ...) are deterministics of these.
    """
    partition = (
        parameterisation if isinstance(parameterisation, dict) else choose_parameterisation(data, parameterisation)
    )
    mode = partition["mode"]
    measures = data.measures
    n_la, n_m, n_y = len(data.la), len(measures), len(data.year)
    centred_level = _centred_matrix(data, partition["centred_level"])
    centred_trend = _centred_matrix(data, partition["centred_trend"])
    centred_year = np.isin(np.array(measures), partition["centred_year"])
    first = data.first_data_year()
    first_t = np.array([int(np.flatnonzero(data.year == first[m])[0]) for m in measures])
    m_idx, la_idx, t_idx = data.observed_index()
    y = data.modelled_count[m_idx, la_idx, t_idx].astype("int64")

    # Free random-walk steps: every year after the measure's first year with data.
    step_m, step_t = np.nonzero(np.arange(n_y)[None, :] > first_t[:, None])
    coords = {
        "measure": list(measures),
        "measure_bis": list(measures),
        "la": data.la,
        "year": data.year,
        "obs": np.arange(len(y)),
        "step": [f"{measures[k]} {data.year[t]}" for k, t in zip(step_m, step_t)],
    }
    offset = np.log(data.population_0_17 / RATE_PER)
    parts = deprivation_parts(data)
    # each authority's level is sampled at the middle of its own data for the measure (the
    # measure's middle year if it has none), where its level and trend are uncorrelated
    has = ~np.isnan(data.modelled_count)  # (measure, la, year)
    n_years = has.sum(axis=2)
    mid_year = np.array([data.year[t_idx][m_idx == k].mean() for k in range(n_m)])
    own_mid = (has * data.year[None, None, :]).sum(axis=2) / np.maximum(n_years, 1)
    la_mid_year = np.where(n_years > 0, own_mid, mid_year[:, None]).T  # (la, measure)

    def prior(name: str):
        """A variable with its prior from the table in bayes_lac.model.priors."""
        return PRIORS[name].family.variable(name, PRIORS[name].parameters(priors, measures), dims="measure")

    # the common level is sampled as shifted levels, or as the first cell of a random walk of
    # normal steps: both need the intercept's prior to be normal
    if PRIORS["intercept"].family is not NORMAL:
        raise NotImplementedError(f"the model needs a normal intercept prior, not {PRIORS['intercept'].family.name}")
    intercept_prior = PRIORS["intercept"].parameters(priors, measures)
    after = (np.arange(n_y)[None, :] >= first_t[:, None]).astype(float)

    with pm.Model(coords=coords) as model:
        d = prior("deprivation_effect")
        chol_level = _covariance("la_intercept", priors, measures)
        chol_trend = _covariance("la_trend", priors, measures)
        year_sigma = prior("year_sigma")

        if mode == "baseline":
            intercept = prior("intercept")
            model.add_coord("la_all", data.la)
            z_trend = pm.ZeroSumNormal("la_trend_z", sigma=1.0, dims=("measure", "la_all"), n_zerosum_axes=1)
            la_trend = pm.Deterministic("la_trend", (chol_trend @ z_trend).T, dims=("la", "measure"))
            # the hierarchical prior is on levels in each measure's middle year (see Notes)
            z_level = pm.ZeroSumNormal("la_intercept_z", sigma=1.0, dims=("measure", "la_all"), n_zerosum_axes=1)
            la_intercept = pm.Deterministic(
                "la_intercept",
                (chol_level @ z_level).T - la_trend * (mid_year - data.reference_year)[None, :],
                dims=("la", "measure"),
            )
            z_step = pm.Normal("year_step_z", 0.0, 1.0, dims="step")
            steps = pm.Deterministic("year_step", z_step * year_sigma[step_m], dims="step")
            year_effect = pm.Deterministic(
                "year_effect",
                pt.cumsum(pt.set_subtensor(pt.zeros((n_m, n_y))[step_m, step_t], steps), axis=1),
                dims=("measure", "year"),
            )
            log_rate = (
                intercept[:, None, None]
                + la_intercept.T[:, :, None]
                + la_trend.T[:, :, None] * (data.year - data.reference_year)[None, None, :]
                + year_effect[:, None, :]
                + d[:, None, None] * (data.deprivation - data.deprivation_centre)[None, :, :]
            )
        else:
            # authority trends, then levels at each measure's middle year, each prior shifted by
            # its deprivation part
            slope_shift = parts["la_slope"][:, None] * d[None, :]
            la_slope = _zero_sum_effect("la_slope", chol_trend, slope_shift, centred_trend, n_m, model)
            la_trend = pm.Deterministic("la_trend", la_slope - slope_shift, dims=("la", "measure"))
            # la_mid: each authority's level at the middle of its own data; its prior is the
            # hierarchical prior on levels in the measure's middle year, moved along the
            # authority's trend and shifted by its deprivation part
            dep_shift = (parts["la"][:, None] + parts["la_slope"][:, None] * (la_mid_year - parts["year_centre"])) * d[
                None, :
            ]
            la_mid = _zero_sum_effect(
                "la_mid",
                chol_level,
                la_trend * (la_mid_year - mid_year[None, :]) + dep_shift,
                centred_level,
                n_m,
                model,
            )
            la_intercept = pm.Deterministic(
                "la_intercept",
                la_mid - la_trend * (la_mid_year - data.reference_year) - dep_shift,
                dims=("la", "measure"),
            )

            # the common path: per measure, levels of each year from its first year with data
            year_dep = d[:, None] * parts["year"][None, :]  # (measure, year)
            level_shift = d * parts["year"][first_t]
            step_shift = year_dep[step_m, step_t] - year_dep[step_m, step_t - 1]
            level = pt.zeros(n_m)
            path = pt.zeros((n_m, n_y))
            rw = np.flatnonzero(centred_year)
            if rw.size:
                cell_m, cell_t = np.nonzero((np.arange(n_y)[None, :] >= first_t[:, None]) & centred_year[:, None])
                is_first = cell_t == first_t[cell_m]
                # mean and sd of each cell given the previous one (first cell: the level prior)
                follow = ~is_first
                step_of = np.array(
                    [np.flatnonzero((step_m == k) & (step_t == t))[0] for k, t in zip(cell_m[follow], cell_t[follow])],
                    int,
                )
                loc = pt.zeros(len(cell_m))
                loc = pt.set_subtensor(loc[np.flatnonzero(is_first)], (intercept_prior["mu"] + level_shift)[rw])
                scale = pt.zeros(len(cell_m))
                scale = pt.set_subtensor(scale[np.flatnonzero(is_first)], intercept_prior["sigma"][rw])
                if follow.any():
                    loc = pt.set_subtensor(loc[np.flatnonzero(follow)], step_shift[step_of])
                    scale = pt.set_subtensor(scale[np.flatnonzero(follow)], year_sigma[cell_m[follow]])
                model.add_coord("level_cell", [f"{measures[k]} {data.year[t]}" for k, t in zip(cell_m, cell_t)])
                common = _random_walk_levels("common_level", loc, scale, is_first, dims="level_cell")
                level = pt.set_subtensor(level[rw], common[np.flatnonzero(is_first)])
                path = pt.set_subtensor(path[cell_m, cell_t], common)
            nc = np.flatnonzero(~centred_year)
            if nc.size:
                model.add_coord("measure_noncentred", list(np.array(measures)[nc]))
                level_nc = NORMAL.variable(
                    "level",
                    {"mu": (intercept_prior["mu"] + level_shift)[nc], "sigma": intercept_prior["sigma"][nc]},
                    dims="measure_noncentred",
                )
                level = pt.set_subtensor(level[nc], level_nc)
                walk = pt.zeros((n_m, n_y))
                sel = np.isin(step_m, nc)
                if sel.any():
                    model.add_coord("step_noncentred", list(np.array(coords["step"])[sel]))
                    z_step = pm.Normal("year_step_z", 0.0, 1.0, dims="step_noncentred")
                    steps = step_shift[sel] + z_step * year_sigma[step_m[sel]]
                    walk = pt.cumsum(pt.set_subtensor(walk[step_m[sel], step_t[sel]], steps), axis=1)
                path = path + (level[:, None] + walk) * ((~centred_year)[:, None] * after)
            # path: from each measure's first year with data, the common log level (level +
            # year_effect + the deprivation year part relative to the first year); zero before
            intercept = pm.Deterministic("intercept", level - level_shift, dims="measure")
            year_effect = pm.Deterministic(
                "year_effect",
                (path - level[:, None] - (year_dep - year_dep[np.arange(n_m), first_t][:, None])) * after,
                dims=("measure", "year"),
            )
            pm.Deterministic("year_step", (year_effect[step_m, step_t] - year_effect[step_m, step_t - 1]), dims="step")
            # likelihood in the sampled combinations: only the residual deprivation remains
            # (computed on the full measure x la x year grid: dense broadcasting is far cheaper
            # to differentiate than gathering each term by fancy index)
            log_rate = (
                path[:, None, :]
                + la_mid.T[:, :, None]
                + la_slope.T[:, :, None] * (data.year[None, None, :] - la_mid_year.T[:, :, None])
                + d[:, None, None] * parts["rest"][None, :, :]
            )

        # persistence: a share of last year's observed distance from the path carries into
        # this year (an observation-driven autoregressive term; see bayes_lac.model.results)
        previous, has_previous = data.previous_deviation_data()
        persistence = prior("persistence")
        previous_path = pt.concatenate([pt.zeros((n_m, n_la, 1)), log_rate[:, :, :-1]], axis=2)
        log_rate = log_rate + persistence[:, None, None] * has_previous * (previous - previous_path)

        cv = prior("dispersion_cv")
        dispersion = pm.Deterministic("dispersion", 1.0 / cv**2, dims="measure")
        # one gather from the flattened grid to the observed cells (its gradient is a single
        # increment-by-index)
        flat = np.ravel_multi_index((m_idx, la_idx, t_idx), (n_m, n_la, n_y))
        log_expected = offset.ravel()[la_idx * n_y + t_idx] + log_rate.ravel()[flat]
        pm.CustomDist(
            "modelled_count",
            log_expected,
            dispersion[m_idx],
            dist=_negbin_log_mean_dist,
            logp=_negbin_log_mean_logp,
            observed=y,
            dims="obs",
            dtype="int64",
        )
    model.partition = partition  # recorded in the run (attrs "parameterisation")
    model.log_expected = log_expected  # for checks: log of the expected count of each cell
    return model


# ---------------------------------------------------------------------------------------
# Sampling and the run
# ---------------------------------------------------------------------------------------

#: Variables of the contract, in the order a summary shows them.
CONTRACT_VARIABLES: tuple[str, ...] = (
    "intercept",
    "la_intercept",
    "la_trend",
    "year_effect",
    "year_sigma",
    "deprivation_effect",
    "dispersion",
    "persistence",
)
