"""The flows model: children entering and leaving care, and the routes by which they leave.

A separate model from the stock model of `bayes_lac.model.graph`: it reads the panel's flows
columns (``started``, ``ceased`` and the ``ceased_*`` routes, see `bayes_lac.data.panel`) for
an authority and its comparison set and says, with uncertainty, how fast children enter and
how fast they leave.

Model, for authority ``i`` and year ``t`` (the year to 31 March):

* Entries: ``started[i, t] ~ NegativeBinomial(mean = population_0_17[i, t] / 10,000 *
  exp(eta_E[i, t]), alpha_E)``, where ``exp(eta_E)`` is the **entry rate per 10,000 children
  aged 0-17** and ``eta_E[i, t] = mu + year[t] + level[i] + walk[i, t]``: a common per-year
  path (a Gaussian random walk shared by the fitted authorities: England's when fitted on all
  of them, the comparison set's otherwise), an authority level (zero-sum over the
  authorities), and an authority random walk (non-centred: ``walk[i, t] = sum of tau *
  z[i, s]`` over ``s <= t``, with ``z`` zero-sum over authorities each year and one
  innovation scale ``tau`` pooled across authorities).
* Exits: ``ceased[i, t] ~ Binomial(at_risk[i, t], p[i, t])`` with ``at_risk[i, t] =
  looked_after[i, t - 1] + started[i, t]`` (the children who could have left: those looked
  after at the start of the year plus those who started) and ``logit p = eta_X`` built the
  same way. ``p`` is the **exit probability per child at risk**.
* Routes: for each route ``r`` (returned home, adopted, special guardianship, aged 18 or
  over), ``ceased_r[i, t] ~ Binomial(ceased[i, t], q_r[i, t])``, ``logit q_r`` built the same
  way; ``q_r`` is the route's **share of exits**. Routes are modelled one by one (a year with
  the route's count blank is simply not observed); "other routes" is ``1 - sum_r q_r``.

How stock, entries and exits are kept consistent: the model conditions on the published
stock (it enters only through ``at_risk``) and does not model it. Every stock derived from
the flows (`bayes_lac.analysis.flows`) imposes the identity ``S[t] = S[t-1] + E[t] - X[t]``
with ``E[t] = population[t] / 10,000 * entry_rate[t]`` and ``X[t] = p[t] * (S[t-1] + E[t])``,
starting from the published stock of the first year. DfE counts children, not episodes, so
the published stock does not obey the identity exactly; that gap is **measured and reported**
(`bayes_lac.analysis.flows.reconciliation_table`; the flows split reports the published
change beside the modelled one), never hidden or spread over the flows.

A limitation of the pooled walk scale, measured on simulated panels
(`bayes_lac.model.flows_simulate`, tests/test_flows_recovery.py): when the comparison
authorities barely change, the pooled scale is learnt small and one authority's sharp change is
shrunk towards the common path. With four authorities, three of them flat, a 45 % fall in the
target's exit probability over five years was attributed 54 children (90 % interval 29 to 79)
against a true 93; with comparison authorities that drift from year to year, as real ones do,
the same fall was recovered (129, interval 96 to 163, true 137).

England's flows are not modelled: the analyses summarise them from the published counts
(they are large enough that sampling error is below one per cent).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayes_lac import __version__
from bayes_lac.config import ENGLAND_CODE, RATE_PER
from bayes_lac.data.panel import FLOW_COLUMNS, ROUTE_COLUMNS, panel_sha256
from bayes_lac.errors import PanelError, RunFileError, UsageError
from bayes_lac.model.data import comparison_set
from bayes_lac.model.nuts import DEFAULT_MAX_TREEDEPTH, default_cores, nuts_settings

#: Route names in results (the panel column without ``ceased_``).
ROUTES: tuple[str, ...] = tuple(c.removeprefix("ceased_") for c in ROUTE_COLUMNS)
#: Marks a run file as a flows run (stock runs have no such attr).
RUN_KIND = "flows"
DEFAULT_DRAWS = 2000
DEFAULT_TUNE = 2000
DEFAULT_CHAINS = 4
DEFAULT_SEED = 20260331
DEFAULT_SAMPLER = "nutpie"
DEFAULT_TARGET_ACCEPT = 0.95
SAMPLERS: tuple[str, ...] = ("nutpie", "pymc", "numpyro")
#: Convergence gate of a flows run (the same bar as the stock model's diagnostics).
MAX_RHAT = 1.01
MIN_ESS = 400


@dataclass
class FlowsData:
    """The arrays the flows model reads, on a full (authority x year) grid; NaN = not published.

    ``population``, ``stock`` (looked after at 31 March), ``started``, ``ceased`` have dims
    (la, year); ``routes`` (route, la, year). ``stock_before`` is the stock at 31 March of the
    year before the first modelled year (NaN where not published). ``england`` holds the same
    columns for England (a DataFrame by year), or None when the panel has no England rows.
    """

    target: str
    comparison: str
    la: list[str]
    la_name: list[str]
    year: np.ndarray
    population: np.ndarray
    stock: np.ndarray
    stock_before: np.ndarray
    started: np.ndarray
    ceased: np.ndarray
    routes: np.ndarray
    england: pd.DataFrame | None
    panel_hash: str
    england_stock_before: float = np.nan
    notices: list[str] = field(default_factory=list)

    @property
    def at_risk(self) -> np.ndarray:
        """Children who could leave in each year: stock at the start of the year + started."""
        start = np.concatenate([self.stock_before[:, None], self.stock[:, :-1]], axis=1)
        return start + self.started

    def entry_mask(self) -> np.ndarray:
        return np.isfinite(self.started) & np.isfinite(self.population)

    def exit_mask(self) -> np.ndarray:
        return np.isfinite(self.ceased) & np.isfinite(self.at_risk)

    def route_mask(self) -> np.ndarray:
        return np.isfinite(self.routes) & np.isfinite(self.ceased)[None] & (self.ceased > 0)[None]

    def to_dataset(self) -> xr.Dataset:
        """The data as a Dataset (saved in the run's ``flows_data`` group)."""
        coords = {"la": self.la, "year": self.year, "route": list(ROUTES)}
        ds = xr.Dataset(
            {
                "population_0_17": (("la", "year"), self.population),
                "looked_after": (("la", "year"), self.stock),
                "looked_after_before": (("la",), self.stock_before),
                "started": (("la", "year"), self.started),
                "ceased": (("la", "year"), self.ceased),
                "ceased_by_route": (("route", "la", "year"), self.routes),
            },
            coords=coords,
            # names as JSON in attrs: a string variable costs an import of dask when read back
            attrs={"la_names": json.dumps(self.la_name)},
        )
        if self.england is not None:
            e = self.england.reindex(self.year)
            for col in ("population_0_17", "looked_after", "started", "ceased"):
                ds[f"england_{col}"] = (("year",), e[col].to_numpy(dtype=float))
            ds["england_looked_after_before"] = self.england_stock_before
            ds["england_ceased_by_route"] = (
                ("route", "year"),
                np.stack([e[c].to_numpy(dtype=float) for c in ROUTE_COLUMNS]),
            )
        return ds


def prepare_flows(
    panel: pd.DataFrame,
    target: str,
    neighbours="2021",
    first_year: int | None = None,
    last_year: int | None = None,
) -> FlowsData:
    """The flows data of `target` and its comparison set (``comparison_set`` of the stock model).

    Parameters
    ----------
    panel
        A validated panel with ``started`` and ``ceased`` (and any route columns).
    target
        Code of the authority of interest.
    neighbours
        Comparison set: ``"2021"``, ``"2025"``, ``"all"`` or a list of codes.
    first_year, last_year
        Years to model (default: the first and last year with any published ``started``).

    Raises
    ------
    PanelError
        The panel lacks ``started`` or ``ceased``, or has no flows in the years asked for.
    """
    missing = [c for c in FLOW_COLUMNS if c not in panel.columns]
    if missing:
        raise PanelError(
            f"the panel has no {' or '.join(missing)} column: the flows model needs started and "
            "ceased (children who started / ceased to be looked after in the year to 31 March)"
        )
    codes, label, notices = comparison_set(panel, target, neighbours)
    frame = panel.copy()
    for col in ROUTE_COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan
            notices.append(f"the panel has no {col} column: that route is not modelled (no data)")
    with_flows = frame.loc[frame["started"].notna(), "year"].astype(int)
    if with_flows.empty:
        raise PanelError("the panel's started column is blank everywhere: no flows to model")
    y0 = int(with_flows.min()) if first_year is None else int(first_year)
    y1 = int(with_flows.max()) if last_year is None else int(last_year)
    if y1 - y0 < 2:
        raise PanelError(f"flows years {y0}-{y1}: the flows model needs at least 3 years")
    years = np.arange(y0, y1 + 1)
    values = ["population_0_17", "looked_after", "started", "ceased", *ROUTE_COLUMNS]
    rows = frame[frame["la_code"].astype(str).isin(codes)].copy()
    rows["la_code"] = rows["la_code"].astype(str)
    rows["year"] = rows["year"].astype(int)

    def grid(col: str, yrs) -> np.ndarray:
        wide = rows.pivot(index="la_code", columns="year", values=col).reindex(index=codes, columns=yrs)
        return wide.to_numpy(dtype=float, na_value=np.nan)

    names = rows.drop_duplicates("la_code").set_index("la_code")["la_name"].astype(str)
    stock_before = grid("looked_after", [y0 - 1])[:, 0]
    england, england_before = None, np.nan
    if ENGLAND_CODE in set(frame["la_code"].astype(str)):
        e = frame[frame["la_code"].astype(str) == ENGLAND_CODE].copy()
        e["year"] = e["year"].astype(int)
        e = e.set_index("year")[values].astype(float)
        england = e.loc[e.index.isin(years)].copy()
        england_before = float(e["looked_after"].get(y0 - 1, np.nan))
    data = FlowsData(
        target=target,
        comparison=label,
        la=list(codes),
        la_name=[str(names.get(c, c)) for c in codes],
        year=years,
        population=grid("population_0_17", years),
        stock=grid("looked_after", years),
        stock_before=stock_before,
        started=grid("started", years),
        ceased=grid("ceased", years),
        routes=np.stack([grid(c, years) for c in ROUTE_COLUMNS]),
        england=england,
        panel_hash=panel_sha256(panel),
        england_stock_before=england_before,
        notices=notices,
    )
    over = np.isfinite(data.ceased) & np.isfinite(data.at_risk) & (data.ceased > data.at_risk)
    if over.any():
        i, t = np.argwhere(over)[0]
        raise PanelError(
            f"{data.la[i]} {int(years[t])}: ceased ({int(data.ceased[i, t]):,}) is more than the children "
            f"looked after at the start of the year plus those who started ({int(data.at_risk[i, t]):,}); "
            "expected at most that many (check looked_after of the year before, started and ceased)"
        )
    if not data.entry_mask()[0].any():
        raise PanelError(f"{target}: no year {y0}-{y1} has both started and population_0_17")
    return data


def _latent(name: str, n_year: int, n_la: int, centre: float, prior: dict, extra: tuple = ()):
    """Common per-year random walk + authority level + authority random walk (non-centred).

    Returns a tensor of shape ``extra + (la, year)`` on the link scale. `extra` is ``()`` or
    ``(n_route,)`` (one independent structure per route).
    """
    import pymc as pm

    dims_extra = ("route",) if extra else ()
    mu = pm.Normal(f"{name}_mu", centre, prior["mu_sd"], dims=dims_extra or None)
    sigma_year = pm.HalfNormal(f"{name}_year_sigma", prior["year_sigma"], dims=dims_extra or None)
    z_year = pm.Normal(f"{name}_year_z", 0.0, 1.0, dims=(*dims_extra, "year_step"))
    steps = z_year * (sigma_year[..., None] if extra else sigma_year)
    year_path = pm.math.concatenate([pm.math.zeros((*extra, 1)), pm.math.cumsum(steps, axis=-1)], axis=-1)
    sigma_la = pm.HalfNormal(f"{name}_la_sigma", prior["la_sigma"], dims=dims_extra or None)
    level_z = pm.ZeroSumNormal(f"{name}_level_z", sigma=1.0, dims=(*dims_extra, "la"))
    level = level_z * (sigma_la[..., None] if extra else sigma_la)
    tau = pm.HalfNormal(f"{name}_walk_sigma", prior["walk_sigma"], dims=dims_extra or None)
    # zero-sum over authorities each year: the common path carries what they share
    walk_z = pm.ZeroSumNormal(f"{name}_walk_z", sigma=1.0, dims=(*dims_extra, "year_step", "la"))
    walk_steps = walk_z * (tau[..., None, None] if extra else tau)
    walk = pm.math.concatenate([pm.math.zeros((*extra, 1, n_la)), pm.math.cumsum(walk_steps, axis=-2)], axis=-2)
    mu_b = mu[..., None, None] if extra else mu
    # (extra, year, la) -> (extra, la, year)
    eta = mu_b + year_path[..., :, None] + level[..., None, :] + walk
    return eta.dimshuffle(0, 2, 1) if extra else eta.dimshuffle(1, 0)


#: Prior scales (link scale). Entries: log rate per 10,000; exits and routes: logit.
FLOWS_PRIORS: dict[str, dict[str, float]] = {
    "entry": {"mu_sd": 1.0, "year_sigma": 0.15, "la_sigma": 0.7, "walk_sigma": 0.15},
    "exit": {"mu_sd": 1.0, "year_sigma": 0.15, "la_sigma": 0.5, "walk_sigma": 0.15},
    "route": {"mu_sd": 1.5, "year_sigma": 0.25, "la_sigma": 0.7, "walk_sigma": 0.25},
}


def build_flows_model(data: FlowsData, priors: dict | None = None):
    """The PyMC model (``pymc.Model``) of `data` (see the module docstring)."""
    import pymc as pm

    priors = priors or FLOWS_PRIORS
    n_la, n_year = len(data.la), len(data.year)
    coords = {
        "la": data.la,
        "year": data.year,
        "year_step": data.year[1:],
        "route": list(ROUTES),
    }
    e_mask, x_mask, r_mask = data.entry_mask(), data.exit_mask(), data.route_mask()
    with pm.Model(coords=coords) as model:
        eta_e = _latent("entry", n_year, n_la, np.log(25.0), priors["entry"])
        entry_rate = pm.Deterministic("entry_rate", pm.math.exp(eta_e), dims=("la", "year"))
        inv_sqrt_alpha = pm.HalfNormal("entry_inv_sqrt_dispersion", 0.2)
        expected = (data.population / RATE_PER)[e_mask] * entry_rate[e_mask]
        pm.NegativeBinomial(
            "started",
            mu=expected,
            alpha=1.0 / inv_sqrt_alpha**2,
            observed=data.started[e_mask],
        )
        eta_x = _latent("exit", n_year, n_la, -0.6, priors["exit"])
        exit_p = pm.Deterministic("exit_probability", pm.math.sigmoid(eta_x), dims=("la", "year"))
        pm.Binomial("ceased", n=data.at_risk[x_mask], p=exit_p[x_mask], observed=data.ceased[x_mask])
        eta_r = _latent("route", n_year, n_la, -1.2, priors["route"], extra=(len(ROUTES),))
        share = pm.Deterministic("route_share", pm.math.sigmoid(eta_r), dims=("route", "la", "year"))
        if r_mask.any():
            exits = np.broadcast_to(data.ceased[None], data.routes.shape)
            pm.Binomial("ceased_by_route", n=exits[r_mask], p=share[r_mask], observed=data.routes[r_mask])
    return model


@dataclass
class FlowsModel:
    """Settings of a flows fit; `fit` builds the model and samples.

    Parameters
    ----------
    target
        Code of the authority of interest.
    neighbours
        Comparison set (as ``bayes-lac fit --neighbours``): ``"2021"`` (default), ``"2025"``,
        ``"all"`` or a list of codes.
    """

    target: str
    neighbours: object = "2021"
    first_year: int | None = None
    last_year: int | None = None

    def prepare(self, panel: pd.DataFrame) -> FlowsData:
        return prepare_flows(panel, self.target, self.neighbours, self.first_year, self.last_year)

    def fit(
        self,
        panel: pd.DataFrame,
        *,
        draws: int = DEFAULT_DRAWS,
        tune: int = DEFAULT_TUNE,
        chains: int = DEFAULT_CHAINS,
        seed: int = DEFAULT_SEED,
        sampler: str = DEFAULT_SAMPLER,
        target_accept: float = DEFAULT_TARGET_ACCEPT,
        max_treedepth: int = DEFAULT_MAX_TREEDEPTH,
        progressbar: bool = False,
        cores: int | None = None,
        source: str = "<DataFrame>",
    ) -> xr.DataTree:
        """Sample the flows model; returns the run (posterior, flows_data, attrs).

        ``max_treedepth`` caps NUTS trajectories at ``2**max_treedepth`` steps (default 10).
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        import pymc as pm

        nuts = nuts_settings(sampler, max_treedepth)
        data = self.prepare(panel)
        model = build_flows_model(data)
        with model:
            idata = pm.sample(
                draws,
                tune=tune,
                chains=chains,
                cores=cores if cores is not None else default_cores(chains),
                random_seed=seed,
                progressbar=progressbar,
                nuts_sampler=sampler,
                target_accept=target_accept,
                nuts=nuts,
                compute_convergence_checks=False,
            )
        keep = ["entry_rate", "exit_probability", "route_share"]
        posterior = idata["posterior"].to_dataset()
        params = [v for v in posterior.data_vars if v not in keep and not v.endswith("_z")]
        run = xr.DataTree.from_dict(
            {
                "posterior": posterior[keep + params],
                "flows_data": data.to_dataset(),
                **({"sample_stats": idata["sample_stats"].to_dataset()} if "sample_stats" in idata else {}),
            }
        )
        diag = flows_diagnostics(run)
        run.attrs.update(
            {
                "run_kind": RUN_KIND,
                "target_la": data.target,
                "comparison": data.comparison,
                "authorities": json.dumps(data.la),
                "first_year": int(data.year[0]),
                "last_year": int(data.year[-1]),
                "panel_sha256": data.panel_hash,
                "panel_source": Path(source).name if source != "<DataFrame>" else source,
                "bayes_lac_version": __version__,
                "sampler": sampler,
                "draws": int(draws),
                "tune": int(tune),
                "chains": int(chains),
                "seed": int(seed),
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "notices": json.dumps(data.notices),
                "max_rhat": diag["max_rhat"],
                "min_ess_bulk": diag["min_ess_bulk"],
                "divergences": diag["divergences"],
                "converged": "true" if diag["converged"] else "false",
            }
        )
        return run


def flows_diagnostics(run: xr.DataTree) -> dict:
    """Largest R-hat, smallest bulk ESS (over the rates, probabilities and shares) and divergences."""
    from bayes_lac.model.diagnostics import max_rhat_min_bulk_ess

    names = ["entry_rate", "exit_probability", "route_share"]
    max_rhat, min_ess = max_rhat_min_bulk_ess(run["posterior"].to_dataset(), names)
    divergences = 0
    if "sample_stats" in run and "diverging" in run["sample_stats"].to_dataset():
        divergences = int(run["sample_stats"].to_dataset()["diverging"].sum())
    converged = bool(max_rhat <= MAX_RHAT and min_ess >= MIN_ESS and divergences == 0)
    return {"max_rhat": max_rhat, "min_ess_bulk": min_ess, "divergences": divergences, "converged": converged}


def save_flows_run(run: xr.DataTree, path) -> Path:
    """Write a flows run to netCDF (atomically; folder created). Returns the path."""
    from bayes_lac.files import atomic_path

    path = Path(path)
    if run.attrs.get("run_kind") != RUN_KIND:
        raise RunFileError(f"refusing to save {path}: not a flows run (attrs run_kind != {RUN_KIND!r})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temp:
        run.to_netcdf(temp, engine="h5netcdf")
    return path


@dataclass(frozen=True)
class FlowsRunInfo:
    """What a flows run is about, read once from its attrs by `flows_run_info`.

    `converged` is the verdict of `flows_diagnostics` (largest R-hat at most `MAX_RHAT`,
    smallest bulk ESS at least `MIN_ESS`, no divergence over the rates, probabilities and
    shares), made when the run was fitted; `problem` says it in a sentence when it failed.
    """

    target_la: str
    authorities: tuple[str, ...]
    comparison: str
    first_year: int
    last_year: int
    sampler: str
    version: str
    converged: bool
    max_rhat: float
    min_ess_bulk: float
    divergences: int

    @property
    def problem(self) -> str:
        """Why the run failed its convergence checks, in one sentence ("" if it passed)."""
        if self.converged:
            return ""
        return (
            f"the flows run failed its convergence diagnostics (max R-hat {self.max_rhat:.3f}, need <= {MAX_RHAT}; "
            f"min bulk ESS {self.min_ess_bulk:.0f}, need >= {MIN_ESS}; {self.divergences} divergences, need 0)"
        )

    def authority(self, la: str | None) -> str:
        """`la`, or the run's target when None; refused (UsageError naming the run's
        authorities) when the run does not hold it."""
        target = self.target_la if la is None else la
        if target not in self.authorities:
            raise UsageError(f"--la {target}: not in this flows run (its authorities: {', '.join(self.authorities)})")
        return target


def flows_run_info(run: xr.DataTree) -> FlowsRunInfo:
    """The `FlowsRunInfo` of a flows run; the one place its attrs are parsed.

    Raises
    ------
    RunFileError
        The run is not a flows run, or an attr is missing or not what a flows run holds.
    """
    a = run.attrs
    if a.get("run_kind") != RUN_KIND:
        raise RunFileError(
            "not a flows run (it has no run_kind 'flows'); expected one from `bayes-lac fit-flows` "
            "(runs from `bayes-lac fit` model the stock only)"
        )

    def attr(name: str, parse):
        if name not in a:
            raise RunFileError(f"the flows run lacks its attr {name!r}; refit with `bayes-lac fit-flows`")
        try:
            return parse(a[name])
        except (TypeError, ValueError) as err:
            raise RunFileError(f"the flows run's attr {name!r} is not what a flows run holds: {err}") from None

    def verdict(value) -> bool:
        if value not in ("true", "false"):
            raise ValueError(f"expected 'true' or 'false', got {value!r}")
        return value == "true"

    authorities = attr("authorities", lambda v: tuple(str(c) for c in json.loads(v)))
    target = attr("target_la", str)
    if target not in authorities:
        raise RunFileError(f"the flows run's target_la {target} is not one of its authorities {list(authorities)}")
    return FlowsRunInfo(
        target_la=target,
        authorities=authorities,
        comparison=attr("comparison", str),
        first_year=attr("first_year", int),
        last_year=attr("last_year", int),
        sampler=attr("sampler", str),
        version=attr("bayes_lac_version", str),
        converged=attr("converged", verdict),
        max_rhat=attr("max_rhat", float),
        min_ess_bulk=attr("min_ess_bulk", float),
        divergences=attr("divergences", int),
    )


def load_flows_run(path) -> xr.DataTree:
    """Read a flows run saved by `save_flows_run`, checking it is one.

    Raises
    ------
    RunFileError
        The file is missing, unreadable, or not a flows run (e.g. a stock run from ``fit``).
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: flows run not found; expected a file written by `bayes-lac fit-flows`")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as tree:
            run = tree.load()
    except (OSError, ValueError) as err:
        raise RunFileError(
            f"{path}: not a readable netCDF run ({err}); expected a file from `bayes-lac fit-flows`"
        ) from err
    try:
        flows_run_info(run)
    except RunFileError as err:
        raise RunFileError(f"{path}: {err}") from None
    for group in ("posterior", "flows_data"):
        if group not in run:
            raise RunFileError(f"{path}: the flows run has no {group!r} group; expected one from `bayes-lac fit-flows`")
    return run
