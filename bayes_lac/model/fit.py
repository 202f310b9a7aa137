"""Fitting: sampling a built model and assembling the run (``LACModel``, ``fit``)."""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from pytensor.compile.mode import Mode

from bayes_lac import __version__
from bayes_lac.config import MEASURES
from bayes_lac.data.neighbours import parse_neighbours
from bayes_lac.model.data import ModelData, prepare_data
from bayes_lac.model.graph import DEFAULT_PARAMETERISATION, build_model
from bayes_lac.model.nuts import DEFAULT_MAX_TREEDEPTH, default_cores, nuts_settings
from bayes_lac.model.priors import load_priors, prior_set_name, priors_json

#: Default sampler settings: they give a converged fit of the bundled data (see bench/).
DEFAULT_DRAWS = 1500
DEFAULT_TUNE = 1500
DEFAULT_CHAINS = 4
DEFAULT_SEED = 20260331
DEFAULT_SAMPLER = "nutpie"
DEFAULT_TARGET_ACCEPT = 0.95
SAMPLERS: tuple[str, ...] = ("pymc", "nutpie", "numpyro")


def compile_kwargs_after(sampler: str | None) -> dict | None:
    """pytensor compile options for what is computed from a model after a fit (log densities,
    predictive draws): JAX after numpyro's sampler, which has JAX installed and its graph
    compiled by JAX already, so nothing is compiled to C; otherwise pytensor's default."""
    return {"mode": "JAX"} if sampler == "numpyro" else None


#: Up to this many draws, what is computed draw by draw after a fit (predictive draws, log
#: densities) uses pytensor's Python implementations. Measured on Thurrock and its ten
#: neighbours (2 cores): a prior predictive draw costs 5.6 ms and a posterior predictive draw
#: 3.3 ms that way, with nothing to compile, while compiling the same draws took 23 s with JAX
#: and 92-96 s with C or numba on an empty cache (about 4 s once filled); the log-likelihood and
#: log-prior of 200 draws took 3.3 s against 5.4 s with JAX. Above it (a default run has 6,000
#: draws) compiled code is faster: posterior predictive draws 6 s against 21 s.
PYTHON_MAX_DRAWS = 1_000


def compile_kwargs_for(sampler: str | None, draws: int) -> dict | None:
    """pytensor compile options for computing `draws` draws after a fit: Python implementations
    for a few (`PYTHON_MAX_DRAWS`), otherwise `compile_kwargs_after`."""
    if draws <= PYTHON_MAX_DRAWS:
        return {"mode": Mode(linker="py", optimizer="fast_compile")}
    return compile_kwargs_after(sampler)


def _obs_coords(data: ModelData) -> dict:
    m_idx, la_idx, t_idx = data.observed_index()
    return {
        "obs_measure": ("obs", np.array(data.measures)[m_idx]),
        "obs_la": ("obs", np.array(data.la)[la_idx]),
        "obs_year": ("obs", data.year[t_idx]),
    }


def _sample(
    model, *, draws, tune, chains, cores, seed, progressbar, sampler, target_accept, max_treedepth=DEFAULT_MAX_TREEDEPTH
) -> tuple[xr.DataTree, dict]:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    nuts = nuts_settings(sampler, max_treedepth)
    timing: dict = {}
    start = time.perf_counter()
    with model:
        idata = pm.sample(
            draws,
            tune=tune,
            chains=chains,
            # nutpie runs chains as threads: one per CPU; pymc's own sampler would spawn
            # processes, which cost more than they save on small fits, so it keeps pm.sample's choice
            cores=cores if cores is not None or sampler != "nutpie" else default_cores(chains),
            random_seed=seed,
            progressbar=progressbar,
            nuts_sampler=sampler,
            target_accept=target_accept,
            nuts=nuts,
            compute_convergence_checks=False,
        )
    timing["sample_call_s"] = time.perf_counter() - start
    post_attrs = idata["posterior"].attrs
    if "sampling_time" in post_attrs:
        timing["sampling_s"] = float(post_attrs["sampling_time"])
    return idata, timing


def assemble_run(
    idata: xr.DataTree,
    model: pm.Model,
    data: ModelData,
    *,
    priors: dict,
    prior_set: str,
    sampler_info: dict,
    log_density: bool = True,
) -> xr.DataTree:
    """Turn sampler output into a run that follows the contract of ``bayes_lac.model.results``."""
    posterior = idata["posterior"].to_dataset()
    groups: dict[str, xr.Dataset] = {
        "posterior": posterior,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "constant_data": data.constant_data(),
        "observed_data": data.observed_data(),
        "reference": data.reference,
    }
    if log_density:
        n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
        compile_kwargs = compile_kwargs_for(sampler_info.get("sampler"), n_draws)
        ll = pm.stats.compute_log_likelihood(
            idata, model=model, extend_inferencedata=False, progressbar=False, compile_kwargs=compile_kwargs
        )
        ll = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
        # float32 halves the largest group (draws x cells); LOO does not need more precision
        groups["log_likelihood"] = ll.astype("float32").assign_coords(_obs_coords(data))
        lp = pm.stats.compute_log_prior(
            idata, model=model, extend_inferencedata=False, progressbar=False, compile_kwargs=compile_kwargs
        )
        lp = lp["log_prior"].to_dataset() if isinstance(lp, xr.DataTree) else lp
        groups["log_prior"] = lp
    run = xr.DataTree.from_dict(groups)
    run.attrs.update(
        {
            "bayes_lac_version": __version__,
            **data.attrs(),
            "priors": priors_json(priors),
            "prior_set": prior_set,
            "sampler": json.dumps(sampler_info),
            "parameterisation": json.dumps(model.partition),
            "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    from bayes_lac.model.diagnostics import attach_diagnostics

    attach_diagnostics(run)
    return run


class LACModel:
    """The hierarchical model of one authority among its comparison set.

    The constructor stores settings; `fit` arranges the panel, builds the PyMC model and
    samples. The `pm.Model` is held in ``model_`` after `build` or `fit`.

    Parameters
    ----------
    target_la
        ONS code of the authority of interest, e.g. ``"E06000034"`` (Thurrock).
    neighbours
        Comparison set: ``"2021"`` or ``"2025"`` (DfE statistical neighbours), ``"all"``
        (every local authority in the panel: the national model) or ONS codes (a list or a
        comma-separated string); see ``bayes_lac.data.neighbours.parse_neighbours``.
    until
        Use only data up to and including this year (for backtests).
    priors
        A prior set name (``"default"``, ``"weak"``, ``"tight"``), a TOML file, or a dict as
        returned by ``bayes_lac.model.priors.load_priors``.
    measures
        Measures to fit jointly (default all three).
    parameterisation
        How the sampler sees the parameters (the model is the same): ``"non_centred"``
        (default), ``"auto"`` (centred where the data dominate, per authority and per
        measure), ``"centred"``, ``"baseline"`` (the straightforward non-centred model used
        as the benchmark's baseline), or a partition dict stored in a run.
    """

    def __init__(
        self,
        target_la: str,
        neighbours="2021",
        until: int | None = None,
        priors="default",
        measures: Sequence[str] = MEASURES,
        parameterisation=DEFAULT_PARAMETERISATION,
    ):
        self.target_la = target_la
        self.neighbours = parse_neighbours(neighbours)
        self.until = until
        self.priors = priors
        self.measures = tuple(measures)
        self.parameterisation = parameterisation
        self.data_: ModelData | None = None
        self.model_: pm.Model | None = None
        self.timing_: dict = {}
        #: the NUTS implementation of the fit (or saved run) this model last came from
        self.sampler_: str | None = None

    # -- priors -------------------------------------------------------------------------
    def _priors(self) -> tuple[dict, str]:
        if isinstance(self.priors, dict):
            return self.priors, "custom"
        return load_priors(self.priors, tuple(m for m in MEASURES if m in self.measures)), prior_set_name(self.priors)

    # -- graph ------------------------------------------------------------------------------
    def prepare(self, panel: pd.DataFrame, source: str = "panel") -> ModelData:
        """Arrange `panel` for this model (no sampling); stores and returns the `ModelData`."""
        self.data_ = prepare_data(panel, self.target_la, self.neighbours, self.until, self.measures, source)
        return self.data_

    def build(self, panel: pd.DataFrame | None = None) -> pm.Model:
        """The PyMC model for `panel` (or for the data already prepared / loaded from a run)."""
        if panel is not None:
            self.prepare(panel)
        if self.data_ is None:
            raise ValueError("build needs a panel (or a model made by LACModel.from_run)")
        priors, _ = self._priors()
        self.model_ = build_model(self.data_, priors, self.parameterisation)
        return self.model_

    @classmethod
    def from_run(cls, results: xr.DataTree) -> LACModel:
        """The model of a saved run, rebuilt from its stored data and priors (no panel)."""
        from bayes_lac.model.results import run_info

        info = run_info(results)
        data = ModelData.from_run(results)
        self = cls(
            info.target_la,
            neighbours=info.neighbours_setting,
            until=info.until_year,
            priors=info.priors,
            measures=data.measures,
            parameterisation=info.parameterisation,
        )
        self.data_ = data
        self.sampler_ = info.sampler.get("sampler")
        self.build()
        return self

    # -- sampling ---------------------------------------------------------------------------
    def fit(
        self,
        panel: pd.DataFrame | None = None,
        draws: int = DEFAULT_DRAWS,
        tune: int = DEFAULT_TUNE,
        chains: int = DEFAULT_CHAINS,
        seed: int | None = DEFAULT_SEED,
        progressbar: bool = True,
        sampler: str = DEFAULT_SAMPLER,
        cores: int | None = None,
        target_accept: float = DEFAULT_TARGET_ACCEPT,
        max_treedepth: int = DEFAULT_MAX_TREEDEPTH,
        log_density: bool = True,
        source: str = "panel",
    ) -> xr.DataTree:
        """Fit the model and return the run (diagnostics computed, attrs filled).

        Parameters
        ----------
        panel
            The panel (``bayes_lac.load_panel()``); may be omitted after `from_run`.
        draws, tune, chains, seed
            Sampler settings: posterior draws and tuning steps per chain, chains, seed.
        sampler
            ``"nutpie"`` (default: the fastest here, see ``bench/bench_fit.py``), ``"pymc"``
            or ``"numpyro"`` (if installed).
        cores
            Processes for the chains (default with nutpie: one per chain, up to the CPUs this
            process may use, `bayes_lac.model.nuts.default_cores`; otherwise pm.sample's choice).
        target_accept, max_treedepth
            NUTS settings: the acceptance rate step sizes are tuned to, and the deepest
            trajectory tree (at most ``2**max_treedepth`` steps per draw). A lower depth caps
            the cost of a short exploratory fit, which then mixes worse (the convergence
            checks see it).
        log_density
            Store ``log_likelihood`` and ``log_prior`` (needed for LOO and power-scaling).

        Returns
        -------
        xarray.DataTree following ``bayes_lac.model.results``. A fit that fails its diagnostics is
        returned all the same, with ``attrs["converged"] == "false"``; see
        ``bayes_lac.model.diagnostics.require_converged``.
        """
        if panel is not None:
            self.prepare(panel, source)
        priors, prior_set = self._priors()
        start = time.perf_counter()
        self.build()
        build_s = time.perf_counter() - start
        idata, timing = _sample(
            self.model_,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            progressbar=progressbar,
            sampler=sampler,
            target_accept=target_accept,
            max_treedepth=max_treedepth,
        )
        timing["build_s"] = build_s
        self.sampler_ = sampler
        start = time.perf_counter()
        info = {
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "seed": seed,
            "sampler": sampler,
            "target_accept": target_accept,
            "max_treedepth": max_treedepth,
        }
        run = assemble_run(
            idata,
            self.model_,
            self.data_,
            priors=priors,
            prior_set=prior_set,
            sampler_info=info,
            log_density=log_density,
        )
        timing["assemble_s"] = time.perf_counter() - start
        self.timing_ = timing
        return run

    def prior_predictive(
        self, panel: pd.DataFrame | None = None, draws: int = 500, seed: int | None = DEFAULT_SEED
    ) -> xr.DataTree:
        """Draws from the prior and the prior predictive of the counts (dims ``obs``).

        Returns a DataTree with groups ``prior``, ``prior_predictive``, ``observed_data``
        (``modelled_count`` on ``obs``) and the run's ``constant_data``; see
        ``bayes_lac.model.checks.prior_predictive_table``.
        """
        if panel is not None or self.model_ is None:
            self.build(panel)
        with self.model_:
            pp = pm.sample_prior_predictive(
                draws, random_seed=seed, compile_kwargs=compile_kwargs_for(self.sampler_, draws)
            )
        obs_coords = _obs_coords(self.data_)
        tree = {
            "prior": pp["prior"].to_dataset(),
            "prior_predictive": pp["prior_predictive"].to_dataset().assign_coords(obs_coords),
            "observed_data": pp["observed_data"].to_dataset().assign_coords(obs_coords),
            "constant_data": self.data_.constant_data(),
        }
        out = xr.DataTree.from_dict(tree)
        out.attrs.update(self.data_.attrs())
        return out


def fit(panel: pd.DataFrame, target_la: str, **kwargs) -> xr.DataTree:
    """Fit `LACModel` in one call: settings and sampler arguments as keywords.

    ``neighbours``, ``until``, ``priors``, ``measures``, ``parameterisation`` go to the model;
    everything else to `LACModel.fit`.
    """
    model_keys = ("neighbours", "until", "priors", "measures", "parameterisation")
    model_kw = {k: kwargs.pop(k) for k in model_keys if k in kwargs}
    return LACModel(target_la, **model_kw).fit(panel, **kwargs)
