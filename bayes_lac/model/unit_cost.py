"""The unit cost of a looked-after child as a modelled quantity, across all authorities.

Unit cost (£ per child-year, cash prices of each year) = s251 outturn "Total Children Looked
After" (gross, the panel's ``spend_looked_after``) / children looked after at 31 March (the
panel's ``looked_after``), year Y = financial year ending 31 March Y. DfE's own weekly unit cost
(``weekly_cost_per_child``) is this divided by 52.18 and rounded to £5.

Which years are used
    From FY 2012-13 (year 2013): before it the s251 total excluded adoption and special
    guardianship, a definitional break, so those years are left out (not read as noise) and
    listed in `UnitCostData.excluded`. Authority-years with fewer than `MIN_CHILDREN` children
    in care are left out too (a unit cost over a handful of children, or over none, is not a
    price); so are years with no spend or no count. Every exclusion is listed with its reason.
    Any other break (a year where the authority's spend changes source, e.g. s251 outturn file
    to DfE's LAIT) is flagged in `UnitCostData.breaks` and, if passed as `breaks`, given its own
    national level shift so that a step there is not read as noise.

The model (the default, ``growth_model="local"``, ``departure="walk"``; all on the log scale of
the cash unit cost; a = authority, t = year)::

    y[a, t] - y[a, t-g] = national[t] - national[t-g] + sigma * sqrt(g) * StudentT(nu)
    national[t] = national[t-1] + drift[t]                       (the national level)
    drift[t]    = drift[t-1] + drift_sd * Normal(0, 1)          (its growth walks)

``national`` is the level of the (unweighted) geometric mean authority and ``drift[t]`` its cash
growth in year t, which may speed up or slow down from year to year (by ``drift_sd``, pooled
over all authorities: one national path); ``growth`` is the latest year's. Each authority's
distance from the national level is a random walk with heavy-tailed steps (scale ``sigma``):
an authority whose costs jumped is expected to stay where it is against the national level,
not to drift back. Only changes are modelled (g = years between an authority's observations),
so there is no parameter per authority, and the fit takes seconds with nutpie.

Measured alternatives (`bench/unit_cost_backtest.py`: every authority's unit cost forecast from
origins 2016-2024 at 1-5 years, against the outturn; `models/backtest/README.md`):

* ``growth_model="drift"``: one national growth rate for all years (a random walk with drift
  and ``national_sd`` step noise). It held 2013-17's growth of about 3 % a year, missed the
  later rise (13 % a year by 2024) and covered too few outturns at 3-5 years.
* ``growth_model="damped"``: the growth pulled back each year towards a long-run rate
  (``long_run_growth``, ``damping`` ~ Beta(2, 2)), so a forecast far ahead returns to it. Less
  calibrated at 1-5 years (90 % coverage 84-89 %, PIT mean 0.57-0.79, log CRPS 4-9 % below pooled
  growth against the default's 8-27 %), with a few divergent transitions at 5 of 9 origins; the
  default carries the latest growth on instead, which is why the report says that costs beyond
  the backtested five years rest on that growth continuing.
* ``departure="ar"``: each authority's pooled lasting ``offset`` with an AR(1) ``departure``
  around it (``persistence``, integrated out exactly). With 4 to 13 years per authority the
  persistence is not separable from the offset: its fits failed the convergence gate at every
  origin (R-hat 1.014-1.047 at 2 chains x 500 draws).
* An authority-specific linear drift (each authority's own growth rate, pooled) was tried and
  dropped earlier for the same reason (R-hat 1.08 for the persistence on data to 2017).

A future year's unit cost per draw (`predict_unit_cost`) continues the national growth's walk
and the national level from the last fitted year, and the authority's own walk from its last
observed unit cost, with fresh noise: its spread is the posterior predictive uncertainty of the
outturn unit cost, widening with the horizon as the growth itself may change.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac.data.panel import require_columns
from bayes_lac.errors import BayesLacError, PanelError, UnknownAuthorityError

#: First year (financial year ending 31 March) on one s251 definition of the CLA total.
FIRST_COMPARABLE_YEAR: int = 2013
#: Authority-years with fewer children in care than this are not used (£ per child is unstable).
MIN_CHILDREN: int = 20
#: Prior scales (log scale of £ per child-year; growth per year).
UNIT_COST_PRIORS: dict[str, float] = {
    "national_start_sd": 0.5,  # sd of the first year's national level around the data's mean
    "growth_mean": 0.03,  # cash growth a year: 3 %
    "growth_sd": 0.05,
    "national_sd": 0.05,  # half-normal scale of the national random-walk step
    "offset_sd": 0.5,  # half-normal scale of the authorities' offsets
    "sigma": 0.2,  # half-normal scale of the departure noise
    "break_sd": 0.2,  # sd of a national level shift at a flagged break
    "drift_sd": 0.03,  # half-normal scale of a year's change in the national growth ("local")
    "damping_alpha": 2.0,  # Beta prior of the damping of the growth towards its long run ("damped")
    "damping_beta": 2.0,
}
#: Default sampler settings; 4 chains x 1000 draws after 1000 tuning steps take under a minute with nutpie.
DEFAULT_UNIT_COST_SAMPLER = "nutpie"
DEFAULT_UNIT_COST_DRAWS = 1000
DEFAULT_UNIT_COST_TUNE = 1000
#: The design chosen by the unit-cost backtest (bench/unit_cost_backtest.py): a national growth
#: that walks and each authority's departure a random walk (see the module docstring).
DEFAULT_GROWTH_MODEL = "local"
DEFAULT_DEPARTURE = "walk"
#: Data with at least this many years and authorities get centred national steps, where the
#: data pin each step down. Measured (2 chains): centred mixes on all authorities 2013-2025
#: (R-hat 1.014; non-centred 1.06), non-centred on all authorities 2013-2017 (centred: 171
#: divergences) and on 20 simulated authorities x 14 years (centred: R-hat 1.6).
CENTRED_FROM_YEARS = 8
CENTRED_FROM_AUTHORITIES = 100
DEFAULT_UNIT_COST_CHAINS = 4
#: Measured: at 0.9, fits on data to 2016-2019 (non-centred) had 1-2 divergences; at 0.95, none.
DEFAULT_UNIT_COST_TARGET_ACCEPT = 0.95


@dataclass(frozen=True)
class UnitCostData:
    """The unit-cost observations the model is fitted to.

    Attributes
    ----------
    table
        One row per authority-year used: ``la_code, la_name, year, spend_gbp, looked_after,
        unit_cost_gbp_per_child_year`` (cash prices of that year), ``source`` (of the spend),
        ``break_before`` (True where the spend's source differs from the authority's previous
        year used).
    excluded
        Authority-years not used: ``la_code, year, reason``.
    until
        Last year used (None: all).
    breaks
        Years given a national level shift in the model (the first year of a new series).
    """

    table: pd.DataFrame
    excluded: pd.DataFrame = field(repr=False)
    until: int | None = None
    breaks: tuple[int, ...] = ()

    @property
    def years(self) -> np.ndarray:
        return np.arange(int(self.table["year"].min()), int(self.table["year"].max()) + 1)

    @property
    def la(self) -> list[str]:
        return sorted(self.table["la_code"].unique())

    def notices(self) -> list[str]:
        """Sentences on the exclusions and the flagged breaks, for assumptions lists."""
        out = []
        if len(self.excluded):
            counts = self.excluded["reason"].value_counts()
            out.extend(f"Unit-cost model: {n} authority-year(s) not used: {reason}." for reason, n in counts.items())
        flagged = self.table[self.table["break_before"]]
        if len(flagged):
            years = sorted(flagged["year"].unique())
            out.append(
                "Unit-cost model: the source of the spend changes in "
                f"{', '.join(map(str, years))} (s251 outturn files to the BG panel to DfE's LAIT); "
                + (
                    f"national level shifts are modelled at {', '.join(map(str, self.breaks))}."
                    if self.breaks
                    else "the sources report the same s251 line, so no shift is modelled."
                )
            )
        return out


def unit_cost_data(
    panel: pd.DataFrame,
    until: int | None = None,
    min_children: int = MIN_CHILDREN,
    breaks: tuple[int, ...] = (),
) -> UnitCostData:
    """Unit costs (£ per child-year, cash) of every local authority in the panel.

    Parameters
    ----------
    panel
        Panel with ``la_code, year, looked_after, spend_looked_after`` (£ a year) and, if
        present, ``geographic_level`` (only ``Local authority`` rows are used),
        ``spend_looked_after_source`` and ``la_name``.
    until
        Last year used (financial year ending 31 March); None uses all.
    min_children
        Authority-years with fewer children looked after at 31 March are not used.
    breaks
        Years that start a new series: each gets a national level shift in the model.

    Returns
    -------
    UnitCostData

    Raises
    ------
    PanelError
        If a column is missing, or a spend or count is given but not a number.
    """
    require_columns(
        panel,
        ("la_code", "year", "looked_after", "spend_looked_after"),
        for_output="the modelled unit cost (the default of costs; --unit-cost-method flat, trend or resample reads weekly_cost_per_child instead)",
    )
    frame = panel
    if "geographic_level" in frame.columns:
        frame = frame[frame["geographic_level"].fillna("Local authority") == "Local authority"]
    frame = frame.copy()
    frame["year"] = frame["year"].astype(int)
    if until is not None:
        frame = frame[frame["year"] <= until]
    for column in ("looked_after", "spend_looked_after"):
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & values.isna()
        if bad.any():
            row = frame[bad].iloc[0]
            raise PanelError(
                f"panel column {column}, {row['la_code']} {row['year']}: {row[column]!r} is not a number (£ or children)"
            )
        frame[column] = values.astype(float)
    reasons = pd.Series("", index=frame.index, dtype=object)
    reasons[frame["year"] < FIRST_COMPARABLE_YEAR] = (
        "before FY 2012-13 the s251 CLA total excluded adoption and special guardianship (definitional break)"
    )
    open_ = reasons == ""
    reasons[open_ & frame["spend_looked_after"].isna()] = "no spend_looked_after"
    open_ = reasons == ""
    reasons[open_ & ~(frame["spend_looked_after"] > 0)] = "spend_looked_after is zero or negative"
    open_ = reasons == ""
    reasons[open_ & frame["looked_after"].isna()] = "no looked_after count"
    open_ = reasons == ""
    reasons[open_ & (frame["looked_after"] < min_children)] = f"fewer than {min_children} children looked after"
    used = frame[reasons == ""]
    excluded = (
        frame.loc[reasons != "", ["la_code", "year"]].assign(reason=reasons[reasons != ""]).reset_index(drop=True)
    )
    # Years before the first comparable one are expected gaps; keep them listed but apart.
    if used.empty:
        raise PanelError("the unit-cost model has no usable authority-year (spend_looked_after and looked_after)")
    source = (
        used["spend_looked_after_source"].fillna("").astype(str)
        if "spend_looked_after_source" in used.columns
        else pd.Series("", index=used.index)
    )
    # "LAIT@..." and "s251 outturn 2012-13" name a series and a vintage; the series is the prefix.
    series = source.str.replace(r"(@.*| \d{4}-\d{2})$", "", regex=True)
    table = pd.DataFrame(
        {
            "la_code": used["la_code"].astype(str).to_numpy(),
            "la_name": (used["la_name"] if "la_name" in used.columns else used["la_code"]).astype(str).to_numpy(),
            "year": used["year"].to_numpy(),
            "spend_gbp": used["spend_looked_after"].to_numpy(),
            "looked_after": used["looked_after"].to_numpy(),
            "source": source.to_numpy(),
            "_series": series.to_numpy(),
        }
    ).sort_values(["la_code", "year"])
    table["unit_cost_gbp_per_child_year"] = table["spend_gbp"] / table["looked_after"]
    previous = table.groupby("la_code")["_series"].shift()
    table["break_before"] = previous.notna() & (previous != table["_series"])
    table = table.drop(columns="_series").reset_index(drop=True)
    years = set(table["year"])
    bad_breaks = [b for b in breaks if b not in years or b == min(years)]
    if bad_breaks:
        raise BayesLacError(
            f"break year(s) {bad_breaks} must be years of the unit-cost data after the first "
            f"({min(years)}-{max(years)})"
        )
    return UnitCostData(table=table, excluded=excluded, until=until, breaks=tuple(sorted(breaks)))


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


def _index(data: UnitCostData):
    """Arrays the likelihood needs: authority and year indices, previous observation, gap."""
    t = data.table
    las = data.la
    years = data.years
    la_idx = pd.Categorical(t["la_code"], categories=las).codes.astype(int)
    t_idx = (t["year"].to_numpy() - years[0]).astype(int)
    prev = np.full(len(t), -1)
    gap = np.ones(len(t), dtype=int)
    same = la_idx[1:] == la_idx[:-1]
    prev[1:][same] = np.arange(len(t) - 1)[same]
    gap[1:][same] = t_idx[1:][same] - t_idx[:-1][same]
    return la_idx, t_idx, prev, gap


def build_unit_cost_model(
    data: UnitCostData,
    priors: dict | None = None,
    centred: bool | None = None,
    growth_model: str = DEFAULT_GROWTH_MODEL,
    departure: str = DEFAULT_DEPARTURE,
):
    """The PyMC model of `data` (see the module docstring). Returns a `pm.Model`.

    `centred` chooses the national random walk's parameterisation (None: centred for at least
    `CENTRED_FROM_YEARS` years and `CENTRED_FROM_AUTHORITIES` authorities).
    """
    import pymc as pm
    import pytensor.tensor as pt

    p = {**UNIT_COST_PRIORS, **(priors or {})}
    la_idx, t_idx, prev, gap = _index(data)
    y = np.log(data.table["unit_cost_gbp_per_child_year"].to_numpy(float))
    years = data.years
    first = t_idx == t_idx.min()
    start = float(np.mean(y[t_idx == t_idx[first].min()]))
    coords = {"la": data.la, "year": years, "step": years[1:], "drift_step": years[2:], "break": list(data.breaks)}
    with pm.Model(coords=coords) as model:
        if departure == "walk":
            # Only changes are modelled: the national level is placed at the first year's mean.
            national_start = start
        else:
            national_start = pm.Normal("national_start", start, p["national_start_sd"])
        if centred is None:
            centred = len(years) >= CENTRED_FROM_YEARS and len(data.la) >= CENTRED_FROM_AUTHORITIES
        if growth_model in ("local", "damped"):
            # The national growth moves: each year's step is last year's plus an innovation
            # ("local"), or last year's pulled back towards a long-run growth by a damping
            # factor ("damped"); the national level is the sum of the steps.
            first_growth = pm.Normal("first_growth", p["growth_mean"], p["growth_sd"])
            drift_sd = pm.HalfNormal("drift_sd", p["drift_sd"])
            if centred:
                # many authorities pin each year's step down: centred innovations mix there
                change = pm.Normal("drift_change", 0.0, drift_sd, dims="drift_step")
            else:
                change = drift_sd * pm.Normal("drift_change_z", 0.0, 1.0, dims="drift_step")
            if growth_model == "local":
                path = first_growth + pt.concatenate([pt.zeros(1), pt.cumsum(change)])
            else:
                long_run = pm.Normal("long_run_growth", p["growth_mean"], p["growth_sd"])
                damping = pm.Beta("damping", p["damping_alpha"], p["damping_beta"])
                path = [first_growth]
                for k in range(len(years) - 2):  # a dozen years at most: unrolled
                    path.append(long_run + damping * (path[-1] - long_run) + change[k])
                path = pt.stack(path)
            steps = pm.Deterministic("drift", path, dims="step")
            growth = pm.Deterministic("growth", steps[-1])
        else:
            national_sd = pm.HalfNormal("national_sd", p["national_sd"])
            growth = pm.Normal("growth", p["growth_mean"], p["growth_sd"])
            if centred:
                # Centred steps: 150 authorities over many years pin the steps and their sd down.
                steps = pm.Normal("national_step", growth, national_sd, dims="step")
            else:
                # A few steps say little about their sd: the centred form is a funnel there.
                step_z = pm.Normal("national_step_z", 0.0, 1.0, dims="step")
                steps = growth + national_sd * step_z
        if data.breaks:
            shift = pm.Normal("break_shift", 0.0, p["break_sd"], dims="break")
            at = np.array([list(years[1:]).index(b) for b in data.breaks])
            steps = pt.inc_subtensor(steps[at], shift)
        national = pm.Deterministic(
            "national", national_start + pt.concatenate([pt.zeros(1), pt.cumsum(steps)]), dims="year"
        )
        sigma = pm.HalfNormal("sigma", p["sigma"])
        nu = pm.Gamma("nu", 2.0, 0.1)
        has_prev = prev >= 0
        if departure == "walk":
            # Each authority's distance from the national level walks: its change over a gap of
            # g years is the national change plus g years of its own steps.
            resid = y - national[t_idx]
            at = np.flatnonzero(has_prev)
            change = resid[at] - resid[prev[at]]
            scale = sigma * np.sqrt(gap[at])
            pm.Potential("likelihood", pm.logp(pm.StudentT.dist(nu=nu, mu=0.0, sigma=scale), change).sum())
            return model
        offset_sd = pm.HalfNormal("offset_sd", p["offset_sd"])
        offset = pm.ZeroSumNormal("offset", sigma=offset_sd, dims="la")
        persistence = pm.Beta("persistence", 2.0, 2.0)
        resid = y - national[t_idx] - offset[la_idx]
        prev_resid = pt.where(has_prev, resid[np.maximum(prev, 0)], 0.0)
        rho_h = persistence**gap
        mean = pt.where(has_prev, rho_h * prev_resid, 0.0)
        stationary = 1.0 / pt.sqrt(1.0 - persistence**2)
        scale = sigma * pt.where(has_prev, pt.sqrt((1.0 - rho_h**2) / (1.0 - persistence**2)), stationary)
        pm.Potential("likelihood", pm.logp(pm.StudentT.dist(nu=nu, mu=mean, sigma=scale), resid).sum())
    return model


@dataclass(frozen=True)
class UnitCostFit:
    """A fitted unit-cost model.

    Attributes
    ----------
    posterior
        Dataset of the posterior with the chains stacked into one ``sample`` dim.
    data
        The observations fitted.
    diagnostics
        ``max_rhat``, ``min_ess_bulk``, ``divergences``, ``seconds``, ``sampler``.
    """

    posterior: xr.Dataset
    data: UnitCostData
    diagnostics: dict

    @property
    def converged(self) -> bool:
        d = self.diagnostics
        return d["max_rhat"] < 1.01 and d["min_ess_bulk"] > 200 and d["divergences"] == 0

    def design_words(self) -> str:
        """The fitted design in words, for assumptions lists."""
        post = self.posterior
        if "damping" in post:
            national = (
                "a national level whose growth changes from year to year and is pulled back towards a long-run rate"
            )
        elif "drift_sd" in post:
            national = "a national level whose growth may change from year to year"
        else:
            national = "a national random walk with one growth rate"
        own = (
            "each authority's pooled offset and a persistent departure from it"
            if "persistence" in post
            else "each authority's own random walk against it"
        )
        return f"{national}, {own}"

    def summary_sentence(self) -> str:
        post = self.posterior
        g = np.expm1(post["growth"].values)
        d = self.diagnostics
        return (
            f"Unit-cost model: {len(self.data.table)} authority-years, {len(self.data.la)} authorities, "
            f"{int(self.data.years[0])}-{int(self.data.years[-1])}; national cash growth in the last year "
            f"{100 * np.median(g):.1f}% a year (90% interval {100 * np.quantile(g, 0.05):.1f}% to "
            f"{100 * np.quantile(g, 0.95):.1f}%); "
            + (
                f"persistence of departures {float(post['persistence'].median()):.2f}; "
                if "persistence" in post
                else "each authority's departure from it a random walk; "
            )
            + f"fitted in {d['seconds']:.0f} s "
            f"(max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergences)."
        )


#: The national growth: one rate (``drift``) or a rate that walks (``local``).
GROWTH_MODELS: tuple[str, ...] = ("drift", "local", "damped")
#: An authority's departure from the national level: mean-reverting to a lasting offset
#: (``ar``) or a random walk (``walk``).
DEPARTURES: tuple[str, ...] = ("ar", "walk")
_SCALARS = ("national_start", "growth", "national_sd", "offset_sd", "persistence", "sigma", "nu")


def fit_unit_cost(
    data: UnitCostData,
    *,
    sampler: str = DEFAULT_UNIT_COST_SAMPLER,
    draws: int = DEFAULT_UNIT_COST_DRAWS,
    tune: int = DEFAULT_UNIT_COST_TUNE,
    chains: int = DEFAULT_UNIT_COST_CHAINS,
    seed: int = 251,
    priors: dict | None = None,
    centred: bool | None = None,
    growth_model: str = DEFAULT_GROWTH_MODEL,
    departure: str = DEFAULT_DEPARTURE,
    target_accept: float = DEFAULT_UNIT_COST_TARGET_ACCEPT,
    progressbar: bool = False,
) -> UnitCostFit:
    """Fit the unit-cost model to `data` (from `unit_cost_data`).

    Parameters
    ----------
    sampler
        ``nutpie`` (default) or ``pymc`` (tests).
    draws, tune, chains, target_accept
        Sampler settings (default 4 chains x 1000 draws after 1000 tuning steps, target
        acceptance 0.95; the chains run in parallel on up to as many cores).
    seed
        Random seed.
    priors
        Overrides of `UNIT_COST_PRIORS`.
    centred
        Parameterisation of the national random walk (see `build_unit_cost_model`).
    growth_model
        ``drift`` (one national growth rate) or ``local`` (the growth rate walks from year to
        year; see the module docstring).

    Returns
    -------
    UnitCostFit
    """
    if departure not in DEPARTURES:
        raise BayesLacError(f"departure must be one of {', '.join(DEPARTURES)}, got {departure!r}")
    if growth_model not in GROWTH_MODELS:
        raise BayesLacError(f"growth_model must be one of {', '.join(GROWTH_MODELS)}, got {growth_model!r}")
    import pymc as pm

    from bayes_lac.model.diagnostics import max_rhat_min_bulk_ess

    model = build_unit_cost_model(data, priors, centred=centred, growth_model=growth_model, departure=departure)
    start = time.perf_counter()
    with model:
        idata = pm.sample(
            draws,
            tune=tune,
            chains=chains,
            cores=min(chains, os.cpu_count() or 1),
            random_seed=seed,
            progressbar=progressbar,
            nuts_sampler=sampler,
            target_accept=target_accept,
            compute_convergence_checks=False,
        )
    seconds = time.perf_counter() - start
    post = idata["posterior"].dataset
    names = [*_SCALARS, "national", "offset"] + (["break_shift"] if data.breaks else [])
    if departure == "walk":
        names = [n for n in names if n not in ("national_start", "offset_sd", "persistence", "offset")]
    if growth_model in ("local", "damped"):
        names = [n for n in names if n != "national_sd"] + ["first_growth", "drift_sd", "drift"]
    if growth_model == "damped":
        names += ["long_run_growth", "damping"]
    max_rhat, min_ess = max_rhat_min_bulk_ess(post, names)
    stats = idata["sample_stats"].dataset
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    stacked = post[names].stack(sample=("chain", "draw")).reset_index("sample", drop=True).transpose("sample", ...)
    return UnitCostFit(
        posterior=stacked.load(),
        data=data,
        diagnostics={
            "max_rhat": max_rhat,
            "min_ess_bulk": min_ess,
            "divergences": divergences,
            "seconds": seconds,
            "sampler": sampler,
        },
    )


#: Environment variable naming the folder of cached unit-cost fits; empty turns the cache off.
CACHE_ENV = "BAYES_LAC_CACHE"


def cache_dir() -> Path | None:
    """Where fitted unit-cost models are kept between commands, or None for no cache.

    ``$BAYES_LAC_CACHE`` if set (an empty value turns the cache off), else
    ``$XDG_CACHE_HOME/bayes_lac`` or ``~/.cache/bayes_lac``. Deleting the folder is always safe.
    """
    if CACHE_ENV in os.environ:
        value = os.environ[CACHE_ENV].strip()
        return Path(value).expanduser() if value else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayes_lac"


def _fit_key(data: UnitCostData, settings: dict) -> str:
    """Digest of everything a fit depends on: this module's code, the version, the data fitted,
    the breaks and the sampler settings and priors."""
    from bayes_lac import __version__

    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(__version__.encode())
    h.update(data.table.to_csv(index=False).encode())
    h.update(json.dumps({"until": data.until, "breaks": list(data.breaks), **settings}, sort_keys=True).encode())
    return h.hexdigest()[:24]


def fit_unit_cost_cached(data: UnitCostData, *, folder: Path | str | None = "default", **settings) -> UnitCostFit:
    """`fit_unit_cost`, reusing an identical earlier fit kept in `cache_dir` (same data, settings,
    priors, package version and model code): a second `bayes-lac costs` on the same data then
    takes seconds instead of a fit. ``folder`` overrides the cache folder (None: no cache).

    A cached fit is the same posterior, draws and diagnostics as the fit that made it; an entry
    that cannot be read is fitted again and replaced.
    """
    folder = cache_dir() if folder == "default" else (Path(folder) if folder is not None else None)
    if folder is None:
        return fit_unit_cost(data, **settings)
    defaults = {
        name: p.default for name, p in inspect.signature(fit_unit_cost).parameters.items() if p.kind is p.KEYWORD_ONLY
    }
    full = {k: v for k, v in {**defaults, **settings}.items() if k != "progressbar"}
    path = folder / f"unit_cost-{_fit_key(data, full)}.nc"
    if path.is_file():
        try:
            with xr.open_dataset(path) as ds:
                posterior = ds.load()
            diagnostics = json.loads(posterior.attrs.pop("diagnostics"))
            return UnitCostFit(posterior=posterior, data=data, diagnostics=diagnostics)
        except (OSError, ValueError, KeyError) as err:
            warnings.warn(f"unit-cost cache entry {path} could not be read ({err}); fitting again", stacklevel=2)
    fit = fit_unit_cost(data, **settings)
    from bayes_lac.files import atomic_path

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temp:
            fit.posterior.assign_attrs(diagnostics=json.dumps(fit.diagnostics)).to_netcdf(temp)
    except OSError as err:
        warnings.warn(f"could not keep the unit-cost fit in {folder} ({err}); it will be fitted again", stacklevel=2)
    return fit


def predict_unit_cost(fit: UnitCostFit, la_code: str, years, n_draws: int | None = None, seed: int = 0) -> xr.DataArray:
    """Posterior predictive unit cost of one authority in future years, per draw.

    Parameters
    ----------
    fit
        From `fit_unit_cost`.
    la_code
        ONS code of an authority in the fitted data.
    years
        Years (financial year ending 31 March) after the last fitted year, increasing.
    n_draws
        Number of draws returned (posterior samples are taken in turn, cycling if more are
        asked for than the fit holds); default all.
    seed
        Seed of the future noise.

    Returns
    -------
    DataArray (draw, year): £ per child-year, cash prices of each year. ``attrs``: ``units``,
    ``last_observed_year`` of the authority.
    """
    if la_code not in fit.data.la:
        raise UnknownAuthorityError(
            f"authority {la_code} has no usable unit cost in the unit-cost model's data (see UnitCostData.excluded)"
        )
    years = np.asarray(list(years), dtype=int)
    fitted = fit.data.years
    last = int(fitted[-1])
    if len(years) == 0 or years[0] <= last or np.any(np.diff(years) != 1):
        raise BayesLacError(f"future years must be consecutive and after {last}, got {list(years)}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2510]))
    post = fit.posterior
    n_post = post.sizes["sample"]
    n = n_post if n_draws is None else int(n_draws)
    pick = np.arange(n) % n_post
    rng.shuffle(pick)

    def v(name):
        return post[name].values[pick]

    rows = fit.data.table[fit.data.table["la_code"] == la_code].sort_values("year")
    y_last = float(np.log(rows["unit_cost_gbp_per_child_year"].iloc[-1]))
    t_last = int(rows["year"].iloc[-1]) - int(fitted[0])
    la_pos = fit.data.la.index(la_code)
    offset = post["offset"].values[pick, la_pos] if "offset" in post else np.zeros(n)
    national = post["national"].values[pick]
    resid_last = y_last - national[:, t_last] - offset
    growth = v("growth")
    national_sd = v("national_sd") if "national_sd" in post else np.zeros(n)
    drift_sd = v("drift_sd") if "drift_sd" in post else None
    long_run, damping = (v("long_run_growth"), v("damping")) if "damping" in post else (None, None)
    rho = v("persistence") if "persistence" in post else np.ones(n)
    sigma, nu = v("sigma"), v("nu")
    # Simulate every year from the authority's last observation to the last year asked for.
    h_total = int(years[-1]) - int(fitted[0]) - t_last
    level = national[:, -1].copy()
    resid = resid_last.copy()
    out = np.empty((n, len(years)))
    for k in range(1, h_total + 1):
        t = t_last + k
        if t > len(fitted) - 1:
            if "damping" in post:
                growth = long_run + damping * (growth - long_run) + drift_sd * rng.standard_normal(n)
            elif "drift_sd" in post:
                growth = growth + drift_sd * rng.standard_normal(n)
            level = level + growth + national_sd * rng.standard_normal(n)
            nat = level
        else:
            nat = national[:, t]
        resid = rho * resid + sigma * rng.standard_t(nu)
        year = int(fitted[0]) + t
        if year >= years[0]:
            out[:, year - years[0]] = nat + offset + resid
    da = xr.DataArray(
        np.exp(out),
        dims=("draw", "year"),
        coords={"draw": np.arange(n), "year": years},
        name="unit_cost_gbp_per_child_year",
    )
    da.attrs["units"] = "£ per child-year, cash prices of each year"
    da.attrs["last_observed_year"] = int(rows["year"].iloc[-1])
    return da


def unit_cost_table(fit: UnitCostFit, la_code: str) -> pd.DataFrame:
    """The authority's observed unit costs beside the model's fitted national level.

    Returns
    -------
    DataFrame ``la_code, year, unit_cost_gbp_per_child_year`` (observed, cash prices of that
    year), ``national_gbp_per_child_year`` (posterior median of the national level, same
    prices), ``source``, ``break_before``.
    """
    rows = fit.data.table[fit.data.table["la_code"] == la_code]
    if rows.empty:
        raise UnknownAuthorityError(f"authority {la_code} has no usable unit cost in the unit-cost model's data")
    national = pd.Series(np.exp(np.median(fit.posterior["national"].values, axis=0)), index=fit.data.years)
    out = rows[["la_code", "year", "unit_cost_gbp_per_child_year", "source", "break_before"]].copy()
    out.insert(3, "national_gbp_per_child_year", national.reindex(out["year"]).to_numpy())
    return out.reset_index(drop=True)
