"""The latent-state model: each authority's own path, with its states integrated out.

For measure ``m``, authority ``i`` and year ``t`` (the modelled count is looked-after children
excluding UASC, children in need, or child protection plans)::

    y[m, i, t]      = log((count + 0.5) / (population_0_17 / 10,000))      observed log rate
    y[m, i, t]      = x[m, i, t] + e[m, i, t],   e ~ Normal(0, count_share[m] / (count + 0.5) + noise[m]**2)
    x[m, i, t]      = national[m, t] + deprivation parts + level[m, i, t]
    level[t]        = level[t - 1] + trend[t - 1] + Normal(0, level_sd[m])
    level_sd[m]     = series_sd[m] * sqrt(level_share[m]),  noise[m] = series_sd[m] * sqrt(1 - level_share[m])
    trend[t]        = damping[m] * trend[t - 1] + Normal(0, trend_sd[m])
    national[m, t]  = national[m, t - 1] + drift[m] + Normal(0, national_sd[m])

The observation variance is a share of the log-scale variance of a Poisson count (``1 / count``)
plus extra noise; counts of English authorities are large, so this Gaussian approximation on
the log scale is close to a negative binomial likelihood when the share is 1 (the default
design, ``count_noise="poisson"``). Children looked after at 31 March are a stock, counted
whole, not a Poisson draw around a rate: their year-to-year movement comes from entries and
exits and persists. With ``count_noise="share"`` their ``count_share`` is sampled (Beta prior
on 0-1) and the other measures keep the whole Poisson part (share 1); models/README.md records
what it was measured to do. Each series starts in its own first
published year: the authority's level there is a pooled mean (national path + ``intercept[m]``
+ between-authority deprivation effect) with spread ``level_start_sd[m]``, and its trend starts
at zero with spread ``trend_start_sd[m]`` (years before it do not exist for the series, so
children in need, first published in 2013, and an authority created in 2021 start there); the trend
is damped towards the national drift, so forecasts follow the authority's recent movement and
then the country's.

Because the states enter linearly and the noise is Gaussian, each (measure, authority) series
is multivariate normal given the hyper-parameters: the likelihood integrates the states out
with one small Cholesky factor per series, and NUTS samples only a few dozen hyper-parameters
and the national path. The states are drawn afterwards, per posterior draw, from their exact
conditional distribution (`draw_states`).

Cells that are not published (suppressed, before an authority existed, after ``until``) leave
the likelihood; nothing is extrapolated backwards: an authority's path is reported only from
its first published year.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_lac.config import MODELS_DIR
from bayes_lac.model.data import ModelData

#: Years per deprivation unit: deprivation (% of children in low-income families) enters per
#: 10 percentage points, so its coefficients are on a readable scale.
DEPRIVATION_UNIT = 10.0


def series_arrays(data: ModelData, until: int | None = None) -> dict[str, np.ndarray]:
    """Observed log rates, their count variances and masks, on the (measure, la, year) grid.

    With `until`, cells after that year leave the likelihood (a fit on data up to `until` on
    the same grid, so that one compiled model serves every origin of a backtest).
    """
    count = data.modelled_count
    population = data.population_0_17[None] / 10_000
    observed = np.isfinite(count) & np.isfinite(population) & (population > 0)
    if until is not None:
        observed = observed & (data.year <= until)[None, None, :]
    safe = np.where(observed, count, 0.0)
    y = np.where(observed, np.log(safe + 0.5) - np.log(np.where(observed, population, 1.0)), 0.0)
    count_var = np.where(observed, 1.0 / (safe + 0.5), 1.0)
    # A suppressed UASC count (1-5) makes the non-UASC count uncertain by about +-2 children.
    if "looked_after" in data.measures:
        k = data.measures.index("looked_after")
        extra = np.where(data.uasc_imputed & observed[k], 2.0 / (safe[k] + 0.5) ** 2, 0.0)
        count_var[k] = count_var[k] + extra
    dep = data.deprivation / DEPRIVATION_UNIT
    if until is not None:
        dep = np.where((data.year <= until)[None, :], dep, np.nan)
    has_dep = np.isfinite(dep)
    dep_mean = np.array([np.nanmean(row) if np.isfinite(row).any() else np.nan for row in dep])
    centre = float(np.nanmean(dep_mean)) if np.isfinite(dep_mean).any() else 0.0
    between = np.where(np.isfinite(dep_mean), dep_mean - centre, 0.0)
    within = np.where(has_dep, dep - dep_mean[:, None], 0.0)
    return {
        "y": y,
        "count_var": count_var,
        "observed": observed,
        "dep_between": between,
        "dep_within": within,
        "dep_centre": centre,
    }


def _state_loadings(n_years: int, damping):
    """Loadings of the level path on its start, start trend and innovations (tensor or array).

    Returns ``(g, k_level, k_trend)``: ``g[t]`` the loading of the starting trend on the level
    at t (sum of damping**k for k < t), ``k_level[t, u] = min(t, u)`` the covariance of the
    cumulated level innovations, and ``k_trend`` that of the cumulated trend innovations.
    """
    lib = pt if isinstance(damping, pt.TensorVariable) else np
    t = np.arange(n_years)
    lag = t[:, None] - t[None, :]  # t - s
    # G_k = sum_{j<k} damping**j = (1 - damping**k) / (1 - damping)
    g = (1 - damping**t) / (1 - damping)
    gk = lib.where((lag >= 1) & (t[None, :] >= 1), (1 - damping ** np.maximum(lag, 0)) / (1 - damping), 0.0)
    k_level = np.minimum(t[:, None], t[None, :]).astype(float)
    k_trend = gk @ gk.T
    return g, k_level, k_trend


#: Designs of the national path (`build_latent_model`).
NATIONAL_PATHS: tuple[str, ...] = ("drift", "damped")

#: How the level innovation and the extra observation noise are sampled (`build_latent_model`).
VARIANCE_DESIGNS: tuple[str, ...] = ("split", "separate")
#: How the national path's yearly steps are sampled (`build_latent_model`).
NATIONAL_STEPS: tuple[str, ...] = ("noncentred", "centred")
#: How much of a Poisson count's variance a published count carries as observation noise
#: (`build_latent_model`): a sampled share for the measures in `COUNT_SHARE_MEASURES`, or all of it.
COUNT_NOISE_DESIGNS: tuple[str, ...] = ("share", "poisson")
#: Measures whose share of the Poisson variance is sampled with ``count_noise="share"``: counts of
#: a stock (children looked after at 31 March), whose year-to-year movement persists.
COUNT_SHARE_MEASURES: tuple[str, ...] = ("looked_after",)

DATA_NAMES = ("y", "count_var", "observed", "dep_between", "dep_within")


#: The latent model's prior file, with the source of every choice (models/latent_priors.toml).
LATENT_PRIORS_FILE = MODELS_DIR / "latent_priors.toml"
#: Parameters of each prior family, in the order the model takes them.
_FAMILY_PARAMETERS = {"normal": ("mean", "sd"), "half_normal": ("scale",), "beta": ("alpha", "beta")}


def load_latent_priors(path=None) -> dict:
    """The latent model's priors from a TOML file (default `LATENT_PRIORS_FILE`).

    Returns ``{name: value}`` with value ``(mean, sd)`` for a normal, ``scale`` for a
    half-normal and ``(alpha, beta)`` for a beta; each number may be a dict by measure. A
    missing or malformed entry is a `bayes_lac.errors.InputFileError` naming the file and entry.
    """
    import tomllib

    from bayes_lac.config import MEASURES
    from bayes_lac.errors import InputFileError as PriorError

    path = LATENT_PRIORS_FILE if path is None else path
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as err:
        raise PriorError(f"cannot read the latent priors {path}: {err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise PriorError(f"{path}: not valid TOML ({err})") from None
    out = {}
    for name, table in raw.items():
        family = table.get("family") if isinstance(table, dict) else None
        if family not in _FAMILY_PARAMETERS:
            raise PriorError(f"{path} [{name}]: family must be one of {', '.join(_FAMILY_PARAMETERS)}; got {family!r}")
        wanted = _FAMILY_PARAMETERS[family]
        unknown = sorted(set(table) - {"family", *wanted})
        if unknown:
            raise PriorError(f"{path} [{name}]: unknown key(s) {', '.join(unknown)}; a {family} prior takes {wanted}")
        values = []
        for key in wanted:
            if key not in table:
                raise PriorError(f"{path} [{name}]: missing {key!r} (a {family} prior needs {wanted})")
            value = table[key]
            if isinstance(value, dict):
                strange = sorted(set(value) - set(MEASURES))
                if strange:
                    raise PriorError(
                        f"{path} [{name}] {key}: unknown measure(s) {', '.join(strange)}; known: {', '.join(MEASURES)}"
                    )
            numbers = list(value.values()) if isinstance(value, dict) else [value]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in numbers):
                raise PriorError(f"{path} [{name}] {key}: expected a finite number or a table of them by measure")
            if key != "mean" and not all(v > 0 for v in numbers):
                raise PriorError(f"{path} [{name}] {key}: must be positive")
            values.append(value)
        out[name] = values[0] if family == "half_normal" else tuple(values)
    return out


#: The latent model's priors (`load_latent_priors` of the bundled file): (mean, sd) of
#: normals, the scale of half-normals, (alpha, beta) of betas; log rates per 10,000 children,
#: sds per year on the log scale, deprivation per 10 points.
LATENT_PRIORS: dict = load_latent_priors()


def _by_measure(value, measures: tuple[str, ...]):
    """A prior's parameter(s) as arrays over `measures` (a number, a dict by measure, or a tuple
    or list of those); a dict missing a measure is an InputFileError."""
    from bayes_lac.errors import InputFileError as PriorError

    if isinstance(value, (tuple, list)):
        return tuple(_by_measure(v, measures) for v in value)
    if isinstance(value, dict):
        missing = [m for m in measures if m not in value]
        if missing:
            raise PriorError(f"latent prior {value} gives no value for {', '.join(missing)}")
        return np.array([float(value[m]) for m in measures])
    return np.full(len(measures), float(value))


def build_latent_model(
    data: ModelData,
    priors: dict | None = None,
    use_scan: bool = True,
    until: int | None = None,
    trend_measures: tuple[str, ...] | None = None,
    national: str = "drift",
    variance: str = "split",
    national_steps: str = "noncentred",
    count_noise: str = "poisson",
) -> pm.Model:
    """The PyMC model with the authority states integrated out (see the module docstring).

    The observed arrays are ``pm.Data`` (`DATA_NAMES`), so a compiled model can be refitted on
    the same grid with fewer years (`series_arrays` with ``until``) without compiling again.
    `priors` overrides entries of `LATENT_PRIORS` (designs under evaluation, e.g. a damping
    prior that pulls local trends back faster); an unknown name is a ValueError.
    `trend_measures` names the measures whose authorities have a local trend (default all);
    in the others each authority's level is a random walk around the national path (its trend
    sds are 0: ``trend_sd`` and ``trend_start_sd`` are then the raw parameters times 0).
    `national` is ``"drift"`` (the national path a random walk with constant drift) or
    ``"damped"`` (its yearly steps an AR(1) around the drift, with coefficient
    ``national_damping``: a recent national rise or fall carries on for a while, then the path
    returns to the long-run drift).
    `variance` is ``"split"`` (default: per measure the series' year-to-year sd ``series_sd``,
    with ``level_sd = series_sd * sqrt(level_share)`` and ``noise = series_sd * sqrt(1 -
    level_share)``) or ``"separate"`` (``level_sd`` and ``noise`` sampled apart, each with its
    own half-normal prior). The two are the same model up to their priors; "split" samples the
    well-identified total apart from the weakly identified share. `national_steps` is
    ``"noncentred"`` (default: steps = drift + national_sd * national_z) or ``"centred"``
    (steps sampled as Normal(drift, national_sd)); measured in models/README.md.
    `count_noise` is ``"poisson"`` (default: every measure's observation variance is ``1 / count
    + noise**2``) or ``"share"`` (that of the measures in `COUNT_SHARE_MEASURES` is ``count_share
    / count + noise**2`` with ``count_share`` sampled; the other measures' share is 1).
    """
    if count_noise not in COUNT_NOISE_DESIGNS:
        raise ValueError(f"count_noise must be one of {', '.join(COUNT_NOISE_DESIGNS)}; got {count_noise!r}")
    if national not in NATIONAL_PATHS:
        raise ValueError(f"national must be one of {', '.join(NATIONAL_PATHS)}; got {national!r}")
    if variance not in VARIANCE_DESIGNS:
        raise ValueError(f"variance must be one of {', '.join(VARIANCE_DESIGNS)}; got {variance!r}")
    if national_steps not in NATIONAL_STEPS:
        raise ValueError(f"national_steps must be one of {', '.join(NATIONAL_STEPS)}; got {national_steps!r}")
    if national_steps == "centred" and national != "drift":
        raise ValueError("national_steps='centred' is a design of the random-walk national path (national='drift')")
    if trend_measures is not None:
        strange = sorted(set(trend_measures) - set(data.measures))
        if strange:
            raise ValueError(f"trend_measures: {', '.join(strange)} not among the measures {', '.join(data.measures)}")
    unknown = sorted(set(priors or {}) - set(LATENT_PRIORS))
    if unknown:
        raise ValueError(f"unknown latent-model priors {', '.join(unknown)}; known: {', '.join(LATENT_PRIORS)}")
    p = {name: _by_measure(value, tuple(data.measures)) for name, value in {**LATENT_PRIORS, **(priors or {})}.items()}
    every_year = series_arrays(data)
    arrays = every_year if until is None else series_arrays(data, until)
    n_m, n_la, n_t = data.modelled_count.shape
    # National steps exist from each measure's second published year: the national path starts,
    # as a series does, in the measure's first year with any authority's count.
    step_mask = propagation_mask(every_year["observed"].any(axis=1))
    coords = {"measure": list(data.measures), "la": list(data.la), "year": data.year.astype(int)}
    with pm.Model(coords=coords) as model:
        # Static shapes: a refit keeps the grid (`until` only masks years), and pytensor then
        # builds the scan's gradient without folding symbolic shapes (measured on a small panel:
        # 32 s to build the gradient with symbolic shapes).
        grid = (n_m, n_la, n_t)
        y_data = pm.Data("y", arrays["y"], dims=("measure", "la", "year"), shape=grid)
        count_var = pm.Data("count_var", arrays["count_var"], dims=("measure", "la", "year"), shape=grid)
        observed = pm.Data("observed", arrays["observed"].astype(float), dims=("measure", "la", "year"), shape=grid)
        between = pm.Data("dep_between", arrays["dep_between"], dims="la", shape=(n_la,))
        within = pm.Data("dep_within", arrays["dep_within"], dims=("la", "year"), shape=(n_la, n_t))
        intercept = pm.Normal("intercept", *p["intercept"], dims="measure")
        level_start_sd = pm.HalfNormal("level_start_sd", p["level_start_sd"], dims="measure")
        if variance == "separate":
            level_sd = pm.HalfNormal("level_sd", p["level_sd"], dims="measure")
            noise = pm.HalfNormal("noise", p["noise"], dims="measure")
        else:
            # the year-to-year variance of a series (well identified) and the share of it that
            # persists (the weakly identified part, on a bounded scale): sampled apart, the two
            # sds trade off along a ridge and the fit failed its gate (models/README.md)
            scale = np.sqrt(p["level_sd"] ** 2 + p["noise"] ** 2)
            series_sd = pm.HalfNormal("series_sd", scale, dims="measure")
            share = pm.Beta("level_share", *p["level_share"], dims="measure")
            level_sd = pm.Deterministic("level_sd", series_sd * pt.sqrt(share), dims="measure")
            noise = pm.Deterministic("noise", series_sd * pt.sqrt(1 - share), dims="measure")
        if trend_measures is None or set(trend_measures) >= set(data.measures):
            trend_start_sd = pm.HalfNormal("trend_start_sd", p["trend_start_sd"], dims="measure")
            trend_sd = pm.HalfNormal("trend_sd", p["trend_sd"], dims="measure")
        else:
            has_trend = np.array([m in trend_measures for m in data.measures], float)
            raw_start = pm.HalfNormal("trend_start_sd_raw", p["trend_start_sd"], dims="measure")
            raw_sd = pm.HalfNormal("trend_sd_raw", p["trend_sd"], dims="measure")
            trend_start_sd = pm.Deterministic("trend_start_sd", raw_start * has_trend, dims="measure")
            trend_sd = pm.Deterministic("trend_sd", raw_sd * has_trend, dims="measure")
        damping = pm.Beta("damping", *p["damping"], dims="measure")
        dep_between = pm.Normal("deprivation_between", *p["deprivation_between"], dims="measure")
        dep_within = pm.Normal("deprivation_within", *p["deprivation_within"], dims="measure")
        drift = pm.Normal("drift", *p["drift"], dims="measure")
        national_sd = pm.HalfNormal("national_sd", p["national_sd"], dims="measure")
        if national_steps == "centred":  # random-walk path only (checked above)
            national_step = pm.Normal("national_step", drift[:, None], national_sd[:, None], dims=("measure", "year"))
            steps = national_step * step_mask
        elif national == "drift":
            national_z = pm.Normal("national_z", 0.0, 1.0, dims=("measure", "year"))
            steps = (drift[:, None] + national_sd[:, None] * national_z) * step_mask
        else:
            national_z = pm.Normal("national_z", 0.0, 1.0, dims=("measure", "year"))
            phi_n = pm.Beta("national_damping", *p["national_damping"], dims="measure")
            previous, columns = drift, []
            for t in range(n_t):
                step = drift + phi_n * (previous - drift) + national_sd * national_z[:, t]
                # before a measure's second published year its step is 0 and the recursion waits
                step = pt.where(step_mask[:, t] > 0, step, drift)
                columns.append(step * step_mask[:, t])
                previous = step
            steps = pt.stack(columns, axis=1)
        national = pm.Deterministic("national", pt.cumsum(steps, axis=1), dims=("measure", "year"))

        mean = (
            national[:, None, :]
            + intercept[:, None, None]
            + dep_between[:, None, None] * between[None, :, None]
            + dep_within[:, None, None] * within[None]
        )
        resid = observed * (y_data - mean)

        if count_noise == "share":
            sampled = np.array([m in COUNT_SHARE_MEASURES for m in data.measures], float)
            raw_share = pm.Beta("count_share_raw", *p["count_share"], dims="measure")
            share_of_count = pm.Deterministic("count_share", raw_share * sampled + (1 - sampled), dims="measure")
            obs_var = share_of_count[:, None, None] * count_var + noise[:, None, None] ** 2
        else:
            obs_var = count_var + noise[:, None, None] ** 2
        # one measure: nutpie gives the data a static length-1 axis after the scan is built,
        # which the scan's carry does not match; the loop has no carry
        scan = use_scan and len(data.measures) > 1
        by_years = {} if scan else {"n_years": len(data.year)}
        loglik = (kalman_loglik_scan if scan else kalman_loglik)(
            resid,
            obs_var,
            observed,
            level_start_var=level_start_sd[:, None] ** 2,
            trend_start_var=trend_start_sd[:, None] ** 2,
            level_var=level_sd[:, None] ** 2,
            trend_var=trend_sd[:, None] ** 2,
            damping=damping[:, None],
            **by_years,
        )
        pm.Potential("series_loglik", pt.sum(loglik))
    return model


def propagation_mask(observed, lib=np):
    """1 where a series' state moves on from the year before, 0 where it does not (float).

    A series' state starts at its first observed year with the start spreads
    (``level_start_sd``, ``trend_start_sd``): before that year it does not exist and in that
    year it is the start, so nothing is propagated into either. `observed` is (..., year).
    """
    seen = observed * 1.0
    count = lib.cumsum(seen, axis=-1)
    started = (count > 0.5) * 1.0
    first = started * ((count - seen) < 0.5)
    return started - first


def series_started(observed) -> np.ndarray:
    """Whether each series has begun by each year (its first observed year or later)."""
    return np.cumsum(observed, axis=-1) > 0


def kalman_loglik(
    resid,
    obs_var,
    observed,
    *,
    level_start_var,
    trend_start_var,
    level_var,
    trend_var,
    damping,
    n_years=None,
    per_year=False,
    errors=False,
):
    """Log-likelihood of each series with its (level, trend) state integrated out.

    A Kalman filter written out over the years (16 or so) with every operation vectorised over
    the (measure, la) series, so the graph is small and its gradient cheap. ``resid`` is the
    observed log rate minus the known mean (national path, intercept, deprivation); unobserved
    cells skip the update step. Each series starts at its first observed year
    (`propagation_mask`): years before it neither add to nor change its likelihood. Works on
    tensors (in the model: give `n_years`, the length of the years axis, when it is symbolic)
    and on arrays. With `per_year` (arrays only) it returns each year's term, the log density of
    that year's observation given the series' earlier years (0 where nothing is observed), with
    the years last; they add up to the series' log-likelihood. With `errors` (arrays only) it
    returns instead each year's one-step-ahead error standardised by its predictive sd, ``(y -
    predicted) / sqrt(F)``, NaN where nothing is observed and in a series' first year (whose
    prediction is the pooled start, not the series' own past); after unobserved years the error
    is that of the prediction from the last observed year.
    """
    lib = pt if any(isinstance(v, pt.TensorVariable) for v in (resid, damping, level_var)) else np
    if (per_year or errors) and lib is not np:
        raise TypeError("kalman_loglik gives per-year terms and errors of arrays only")
    if per_year and errors:
        raise ValueError("kalman_loglik gives per-year terms or errors, not both")
    terms = []
    n_t = observed.shape[-1] if n_years is None else int(n_years)
    move = propagation_mask(observed, lib)
    level = lib.zeros_like(resid[..., 0])
    trend = lib.zeros_like(resid[..., 0])
    p11 = level_start_var + 0 * level
    p12 = 0 * level
    p22 = trend_start_var + 0 * level
    total = 0.0
    for t in range(n_t):
        keep = move[..., t]
        level, trend = level + keep * trend, trend * (1 - keep + keep * damping)
        p11, p12, p22 = (
            p11 + keep * (2 * p12 + p22 + level_var),
            p12 * (1 - keep) + keep * damping * (p12 + p22),
            p22 * (1 - keep) + keep * (damping**2 * p22 + trend_var),
        )
        seen = observed[..., t]
        f = p11 + obs_var[..., t]
        v = resid[..., t] - level
        k1, k2 = p11 / f, p12 / f
        term = lib.where(seen, -0.5 * (np.log(2 * np.pi) + lib.log(f) + v**2 / f), 0.0)
        total = total + term
        if errors:
            terms.append(np.where(np.asarray(seen, bool) & (move[..., t] > 0), v / np.sqrt(f), np.nan))
        elif per_year:
            terms.append(term)
        level = lib.where(seen, level + k1 * v, level)
        trend = lib.where(seen, trend + k2 * v, trend)
        p11, p12, p22 = (
            lib.where(seen, p11 - k1 * p11, p11),
            lib.where(seen, p12 - k1 * p12, p12),
            lib.where(seen, p22 - k2 * p12, p22),
        )
    return np.stack(terms, axis=-1) if (per_year or errors) else total


def kalman_loglik_scan(resid, obs_var, observed, *, level_start_var, trend_start_var, level_var, trend_var, damping):
    """`kalman_loglik` as a pytensor scan over the years (a smaller graph: faster to compile)."""
    import pytensor

    seq_r = pt.moveaxis(pt.as_tensor(resid), -1, 0)
    seq_h = pt.moveaxis(pt.as_tensor(obs_var), -1, 0)
    observed = pt.as_tensor(observed)
    seq_o = pt.moveaxis(pt.cast(observed, "float64"), -1, 0)
    seq_m = pt.moveaxis(propagation_mask(pt.cast(observed, "float64"), pt), -1, 0)
    zero = pt.zeros_like(pt.as_tensor(resid)[..., 0])

    def step(keep, r, h, seen, level, trend, p11, p12, p22, total, level_var, trend_var, damping):
        level_p = level + keep * trend
        trend_p = trend * (1 - keep + keep * damping)
        p11_p = p11 + keep * (2 * p12 + p22 + level_var)
        p12_p = p12 * (1 - keep) + keep * damping * (p12 + p22)
        p22_p = p22 * (1 - keep) + keep * (damping**2 * p22 + trend_var)
        f = p11_p + h
        v = r - level_p
        k1 = seen * p11_p / f
        k2 = seen * p12_p / f
        total = total + seen * (-0.5 * (np.log(2 * np.pi) + pt.log(f) + v**2 / f))
        return (
            level_p + k1 * v,
            trend_p + k2 * v,
            p11_p - k1 * p11_p,
            p12_p - k1 * p12_p,
            p22_p - k2 * p12_p,
            total,
        )

    outputs = pytensor.scan(
        step,
        sequences=[seq_m, seq_r, seq_h, seq_o],
        outputs_info=[zero, zero, level_start_var + zero, zero, trend_start_var + zero, zero],
        non_sequences=[level_var + zero, trend_var + zero, damping + zero],
        return_updates=False,
    )
    return outputs[-1][-1]


# ---------------------------------------------------------------------------------------
# After the fit: states drawn from their conditional distribution, and forecasts
# ---------------------------------------------------------------------------------------

HYPER = (
    "intercept",
    "level_start_sd",
    "trend_start_sd",
    "level_sd",
    "trend_sd",
    "damping",
    "noise",
    "deprivation_between",
    "deprivation_within",
    "drift",
    "national_sd",
)


#: Hyper-parameters of some designs only (`build_latent_model`'s options).
OPTIONAL_HYPER = ("national_damping", "count_share")


def posterior_draws(posterior, n_draws: int | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Flatten (chain, draw) and keep `n_draws` of them at random (all if None)."""
    out = {}
    total = posterior.sizes["chain"] * posterior.sizes["draw"]
    pick = np.sort(rng.choice(total, n_draws, replace=False)) if n_draws and n_draws < total else np.arange(total)
    for name in (*HYPER, *(n for n in OPTIONAL_HYPER if n in posterior), "national"):
        values = np.asarray(posterior[name].values)
        out[name] = values.reshape(total, *values.shape[2:])[pick]
    return out


def count_share(draws: dict[str, np.ndarray]) -> np.ndarray:
    """Each draw's share of the Poisson variance per measure, (draw, measure): 1 for a run of
    the ``count_noise="poisson"`` design, which has no ``count_share``."""
    if "count_share" in draws:
        return draws["count_share"]
    return np.ones_like(draws["noise"])


def observation_var(draws: dict[str, np.ndarray], count_var: np.ndarray) -> np.ndarray:
    """The observation variance of every cell per draw, (draw, measure, la, year), from
    `count_var` (measure, la, year) as `series_arrays` gives it."""
    return count_share(draws)[:, :, None, None] * count_var[None] + draws["noise"][:, :, None, None] ** 2


def known_mean(draws: dict[str, np.ndarray], arrays: dict) -> np.ndarray:
    """The known part of each series' log rate per draw, (draw, measure, la, year): national path,
    intercept and the deprivation parts (`arrays` as `series_arrays` gives them)."""
    return (
        draws["national"][:, :, None, :]
        + draws["intercept"][:, :, None, None]
        + draws["deprivation_between"][:, :, None, None] * arrays["dep_between"][None, None, :, None]
        + draws["deprivation_within"][:, :, None, None] * arrays["dep_within"][None, None]
    )


def draw_states(
    data: ModelData,
    draws: dict[str, np.ndarray],
    rng: np.random.Generator | None,
    arrays: dict | None = None,
    normals: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Forward filter, backward sample: one (level, trend) path per posterior draw and series.

    `arrays` are the model's data as `series_arrays` gives them (default: `series_arrays(data)`);
    simulation-based calibration passes log rates drawn from the model itself.

    The backward pass's standard normals come from `rng`, or are given as `normals` (year
    sampled, draw, measure, la, 2), in the order the pass uses them: the last year first, then
    back to the first. Given so, authorities whose normals come from generators of their own
    are drawn in one batch exactly as they would be one at a time.

    Returns ``level`` and ``trend`` with dims (draw, measure, la, year), ``mean`` (the known
    part of the log rate: national path, intercept, deprivation), so that the latent log rate is
    ``mean + level``, and ``started`` (measure, la, year): whether the series has begun (its
    first observed year or later). Before that year a series has no state: its values there
    repeat the first year's and must not be read as a path.
    """
    arrays = series_arrays(data) if arrays is None else arrays
    obs = arrays["observed"]
    n_d = draws["intercept"].shape[0]
    shape = (n_d, *obs.shape[:2])

    def per_measure(name):
        return draws[name][:, :, None]

    mean = known_mean(draws, arrays)
    resid = arrays["y"][None] - mean
    h_all = observation_var(draws, arrays["count_var"])
    # the 2 x 2 algebra written out per element: (a0, a1) the state's mean (level, trend) and
    # (p00, p01, p11) its covariance, each an array (draw, measure, la)
    phi = per_measure("damping")
    q_level = per_measure("level_sd") ** 2
    q_trend = per_measure("trend_sd") ** 2
    n_t = obs.shape[-1]
    filtered = np.zeros((5, n_t, *shape))
    a0, a1 = np.zeros(shape), np.zeros(shape)
    p00 = np.broadcast_to(per_measure("level_start_sd") ** 2, shape).copy()
    p11 = np.broadcast_to(per_measure("trend_start_sd") ** 2, shape).copy()
    p01 = np.zeros(shape)
    move = propagation_mask(obs) > 0  # (measure, la, year)
    for t in range(n_t):
        go = move[None, :, :, t]
        a0, a1 = np.where(go, a0 + a1, a0), np.where(go, phi * a1, a1)
        p00, p01, p11 = (
            np.where(go, p00 + 2 * p01 + p11 + q_level, p00),
            np.where(go, phi * (p01 + p11), p01),
            np.where(go, phi**2 * p11 + q_trend, p11),
        )
        seen = obs[None, :, :, t]
        f = p00 + h_all[..., t]
        v = resid[..., t] - a0
        k0, k1 = p00 / f, p01 / f
        a0, a1 = np.where(seen, a0 + k0 * v, a0), np.where(seen, a1 + k1 * v, a1)
        p00, p01, p11 = (
            np.where(seen, p00 - k0 * p00, p00),
            np.where(seen, p01 - k0 * p01, p01),
            np.where(seen, p11 - k1 * p01, p11),
        )
        filtered[:, t] = a0, a1, p00, p01, p11
    # backward sampling
    if normals is None and rng is None:
        raise ValueError("draw_states needs a generator (rng) or the standard normals (normals)")
    if normals is None:
        normals = rng.standard_normal((n_t, *shape, 2))
    elif normals.shape != (n_t, *shape, 2):
        raise ValueError(f"normals of shape {normals.shape}; expected {(n_t, *shape, 2)}")
    states = np.zeros((n_t, *shape, 2))
    a0, a1, p00, p01, p11 = filtered[:, -1]
    states[-1] = _mvn2(a0, a1, p00, p01, p11, normals[0])
    for t in range(n_t - 2, -1, -1):
        # into a series' first year (and before it) the state does not move
        go = move[None, :, :, t + 1]
        a0, a1, p00, p01, p11 = filtered[:, t]
        # B = P F', predicted S = F P F' + Q (+ jitter), gain G = B S^-1, C = P - G B'
        b00, b01 = np.where(go, p00 + p01, p00), np.where(go, phi * p01, p01)
        b10, b11 = np.where(go, p01 + p11, p01), np.where(go, phi * p11, p11)
        s00 = np.where(go, b00 + b10 + q_level, p00) + _JITTER
        s01 = np.where(go, b01 + b11, p01)
        s11 = np.where(go, phi * b11 + q_trend, p11) + _JITTER
        det = s00 * s11 - s01**2
        g00, g01 = (b00 * s11 - b01 * s01) / det, (b01 * s00 - b00 * s01) / det
        g10, g11 = (b10 * s11 - b11 * s01) / det, (b11 * s00 - b10 * s01) / det
        d0 = states[t + 1, ..., 0] - np.where(go, a0 + a1, a0)
        d1 = states[t + 1, ..., 1] - np.where(go, phi * a1, a1)
        m0, m1 = a0 + g00 * d0 + g01 * d1, a1 + g10 * d0 + g11 * d1
        c00 = p00 - (g00 * b00 + g01 * b01)
        c01 = 0.5 * ((p01 - (g00 * b10 + g01 * b11)) + (p01 - (g10 * b00 + g11 * b01)))
        c11 = p11 - (g10 * b10 + g11 * b11)
        states[t] = _mvn2(m0, m1, c00, c01, c11, normals[n_t - 1 - t])
    states = np.moveaxis(states, 0, -2)  # (draw, measure, la, year, 2)
    return {"level": states[..., 0], "trend": states[..., 1], "mean": mean, "started": series_started(obs)}


#: Added to the variances of the backward pass, as to a covariance matrix's diagonal.
_JITTER = 1e-12


def _mvn2(m0, m1, c00, c01, c11, normals: np.ndarray) -> np.ndarray:
    """Draws (..., 2) from N((m0, m1), [[c00, c01], [c01, c11]]) for batches of 2-vectors, from
    standard `normals` (..., 2), by the Cholesky factor written out; the jitter keeps the first
    variance positive, and a second pivot that rounding makes negative counts as zero."""
    c00 = c00 + _JITTER
    l00 = np.sqrt(np.clip(c00, 0.0, None))
    l10 = np.where(l00 > 0, c01 / np.where(l00 > 0, l00, 1.0), 0.0)
    l11 = np.sqrt(np.clip(c11 + _JITTER - l10**2, 0.0, None))
    z0, z1 = normals[..., 0], normals[..., 1]
    return np.stack([m0 + l00 * z0, m1 + l10 * z0 + l11 * z1], axis=-1)


def forecast_log_rates(
    data: ModelData,
    draws: dict[str, np.ndarray],
    states: dict[str, np.ndarray],
    horizon: int,
    rng: np.random.Generator,
    arrays: dict | None = None,
    tails: np.ndarray | None = None,
) -> np.ndarray:
    """Latent log rates 1..`horizon` years after the last fitted year, per draw.

    Returns an array (draw, measure, la, horizon). The authority's state continues its damped
    trend with fresh innovations; the national path continues its random walk with drift (with
    ``national_damping`` among the draws: its steps continue their AR(1) around the drift from
    the last year's step); deprivation is held at its last value. `arrays` as in `draw_states`
    (those of the authorities in `states`; default every authority of `data`). `tails`, per
    measure the degrees of freedom of the level's shocks (`tail_df`; None: normal shocks).
    """
    arrays = series_arrays(data) if arrays is None else arrays
    n_d, n_m, n_la, _ = states["level"].shape
    tails = np.full(n_m, np.inf) if tails is None else np.asarray(tails, float)
    level = states["level"][..., -1].copy()
    trend = states["trend"][..., -1].copy()
    national = draws["national"][:, :, -1].copy()[:, :, None]
    drift = draws["drift"][:, :, None]
    damped = "national_damping" in draws
    if damped:
        last = draws["national"]
        step = (last[:, :, -1] - last[:, :, -2])[:, :, None] if last.shape[-1] > 1 else drift.copy()
        phi_n = draws["national_damping"][:, :, None]
    phi = draws["damping"][:, :, None]
    out = np.zeros((n_d, n_m, n_la, horizon))
    fixed = (
        draws["intercept"][:, :, None]
        + draws["deprivation_between"][:, :, None] * arrays["dep_between"][None, None, :]
        + draws["deprivation_within"][:, :, None] * arrays["dep_within"][None, None, :, -1]
    )
    for h in range(horizon):
        level = level + trend + draws["level_sd"][:, :, None] * unit_shocks(rng, level.shape, tails[:, None])
        trend = phi * trend + draws["trend_sd"][:, :, None] * rng.standard_normal(trend.shape)
        shock = draws["national_sd"][:, :, None] * rng.standard_normal(national.shape)
        if damped:
            step = drift + phi_n * (step - drift) + shock
            national = national + step
        else:
            national = national + drift + shock
        out[..., h] = national + fixed + level
    return out


#: Where a forecast starts in the last fitted year: ``"state"``, where the model puts each
#: authority (the filtered state, which smooths the last count as noise), or ``"published"``, at
#: the published count, the model's movement carried on from there.
FORECAST_STARTS = ("state", "published")

#: Where forecasts of a latent run start unless told (`bayes_lac.analysis.forecast.forecast`).
DEFAULT_FORECAST_START = "state"


def start_offsets(
    log_rate_last: np.ndarray,
    count_last: np.ndarray,
    population_last: np.ndarray,
    measures: Sequence[str],
    start: str | Sequence[str] = "published",
) -> np.ndarray:
    """How far to move each draw's forecast so that it starts at the published count.

    ``log_rate_last`` (draw, measure, la): each draw's modelled log rate per 10,000 children in
    the last fitted year; ``count_last`` (measure, la): that year's published (modelled) counts,
    NaN where none; ``population_last`` (la,): children aged 0-17 that year. `start` is
    ``"state"`` (no measure moved), ``"published"`` (every measure) or the names of the measures
    to move. Returns (draw, measure, la): the log of the published rate less the modelled one,
    0 where the measure is not moved or the year has no count (a forecast starting at the
    model's state); a published 0 is taken as 0.5 (the log scale has no 0).
    """
    if isinstance(start, str):
        if start not in FORECAST_STARTS:
            raise ValueError(f"start must be one of {', '.join(FORECAST_STARTS)} or measure names; got {start!r}")
        moved = list(measures) if start == "published" else []
    else:
        moved = list(start)
        unknown = [m for m in moved if m not in measures]
        if unknown:
            raise ValueError(
                f"start names measures not modelled: {', '.join(unknown)} (modelled: {', '.join(measures)})"
            )
    count_last = np.asarray(count_last, float)
    population_last = np.asarray(population_last, float)[None, :]
    pick = np.array([m in moved for m in measures])[:, None]
    known = pick & np.isfinite(count_last) & np.isfinite(population_last) & (population_last > 0)
    published = np.log(np.maximum(np.where(known, count_last, 1.0), 0.5)) - np.log(
        np.where(known, population_last, 1.0) / 10_000
    )
    offset = published[None] - log_rate_last
    return np.where(known[None] & np.isfinite(offset), offset, 0.0)


#: How forecasts draw the shocks of an authority's level and of the observation noise
#: (`forecast_log_rates`, `predictive_counts`): ``"normal"``, as the likelihood has them, or
#: ``"student"``, with the variance the fit gives them and the tails the fit's one-step errors
#: show (`tail_df`). models/README.md records what each was measured to do.
TAILS = ("normal", "student")
#: The forecasts' tails unless asked otherwise: measured better than normal shocks for children in
#: need and child protection plans and level for looked-after children (models/README.md).
DEFAULT_TAILS = "student"

#: Degrees of freedom `tail_df` chooses among; ``inf`` is the normal distribution.
TAIL_DF_GRID = (3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, np.inf)


def tail_df(errors: np.ndarray) -> np.ndarray:
    """Per measure, the tails of the standardised one-step errors (draw, measure, la, year; NaN
    where none), as `kalman_loglik` gives them with ``errors=True``: the degrees of freedom of
    the Student t of unit variance, among `TAIL_DF_GRID`, under which they are most likely
    (``inf``: the normal). Unit variance keeps the fit's variances; only the shape changes (so
    errors whose variance is below 1 also lean towards a t, whose middle is narrower). The one
    shape is given to the level's shocks and to the observation noise alike, though it was found
    in their sum. A measure with no errors (every series a single year) gets ``inf``."""
    from scipy import stats

    out = np.full(errors.shape[1], np.inf)
    for k in range(errors.shape[1]):
        e = errors[:, k].ravel()
        e = e[np.isfinite(e)]
        if e.size == 0:
            continue
        scores = [
            stats.norm.logpdf(e).sum() if np.isinf(nu) else stats.t.logpdf(e, nu, scale=np.sqrt((nu - 2) / nu)).sum()
            for nu in TAIL_DF_GRID
        ]
        out[k] = TAIL_DF_GRID[int(np.argmax(scores))]
    return out


def unit_shocks(rng: np.random.Generator, shape: tuple, df) -> np.ndarray:
    """Draws of mean 0 and variance 1: standard normal where `df` (broadcastable to `shape`) is
    ``inf``, elsewhere Student t with `df` degrees of freedom (more than 2) scaled to unit
    variance. With every `df` infinite it draws exactly ``rng.standard_normal(shape)``."""
    z = rng.standard_normal(shape)
    df = np.broadcast_to(np.asarray(df, float), shape)
    if np.isnan(df).any():
        raise ValueError("unit_shocks: degrees of freedom are NaN (inf is the normal)")
    finite = np.isfinite(df)
    if not finite.any():
        return z
    if (df[finite] <= 2).any():
        raise ValueError("unit_shocks needs more than 2 degrees of freedom (a finite variance)")
    nu = np.where(finite, df, 3.0)
    t = z / np.sqrt(rng.chisquare(nu) / nu) * np.sqrt((nu - 2) / nu)
    return np.where(finite, t, z)


def predictive_counts(
    log_rate: np.ndarray,
    population: np.ndarray,
    noise: np.ndarray,
    rng: np.random.Generator,
    count_share: np.ndarray | None = None,
    tails: np.ndarray | None = None,
) -> np.ndarray:
    """Predictive modelled counts around the rate, with the likelihood's observation model.

    ``log_rate`` (draw, ...), ``population`` broadcastable to it (children aged 0-17), ``noise``
    (draw,) or broadcastable. Without `count_share` (a run of the ``count_noise="poisson"``
    design): Poisson counts around the rate with the extra log-scale noise. With it
    (broadcastable like `noise`): `observed_counts`, the likelihood's observation model.
    `tails` (broadcastable to `log_rate`): the degrees of freedom of the observation noise's
    shocks (`unit_shocks`; None: normal).
    """
    eps = unit_shocks(rng, log_rate.shape, np.inf if tails is None else tails)
    if count_share is None:
        mu = np.exp(log_rate + noise * eps) * population / 10_000
        return rng.poisson(np.clip(mu, 0, 1e9)).astype(float)
    return observed_counts(np.exp(log_rate) * population / 10_000, noise, count_share, eps)


def observed_counts(expected: np.ndarray, noise, count_share, eps: np.ndarray) -> np.ndarray:
    """Counts drawn around `expected` by the likelihood's observation model: ``log(count + 0.5)``
    normal around ``log(expected)`` (the log rate times the children) with variance
    ``count_share / (expected + 0.5) + noise**2``, from standard normals `eps`; whole numbers, at
    least 0, NaN where `expected` is."""
    expected = np.asarray(expected, float)
    known = np.isfinite(expected) & (expected > 0)
    safe = np.where(known, expected, 1.0)
    sd = np.sqrt(count_share / (safe + 0.5) + noise**2)
    counts = np.maximum(np.rint(safe * np.exp(sd * eps) - 0.5), 0.0)
    return np.where(known, counts, np.nan)
