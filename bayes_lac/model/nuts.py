"""NUTS settings shared by every model's fit: the trajectory-depth cap and its sampler keys.

Kept apart from `bayes_lac.model.fit` so that models that import PyMC only when they sample
(`bayes_lac.model.flows`) can share it without importing PyMC at import time.
"""

from __future__ import annotations

import os

#: NUTS builds trajectories of at most 2**depth steps; 10 is every sampler's default.
DEFAULT_MAX_TREEDEPTH = 10


def nuts_settings(sampler: str, max_treedepth: int) -> dict:
    """pm.sample's ``nuts=`` argument capping trajectories at ``2**max_treedepth`` steps (numpyro
    names the setting differently); refuses a depth outside 1-15."""
    if isinstance(max_treedepth, bool) or not isinstance(max_treedepth, int) or not 1 <= max_treedepth <= 15:
        raise ValueError(f"max_treedepth must be a whole number from 1 to 15, got {max_treedepth!r}")
    return {("max_tree_depth" if sampler == "numpyro" else "max_treedepth"): max_treedepth}


#: Environment variable that caps the cores of every fit, e.g. 1 when fits already run side by
#: side in several processes (the test suite's workers do).
CORES_VARIABLE = "BAYES_LAC_CORES"


def default_cores(chains: int) -> int:
    """Processes (threads, for nutpie) to run `chains` chains on: one per chain, up to the CPUs
    this process may use, or up to ``BAYES_LAC_CORES`` when it is set. pm.sample's own default
    halves the CPU count (it assumes half are hyper-threads), so on a 2-core machine it ran
    every chain on one core; the draws are the same either way (each chain has its own seed)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    cap = os.environ.get(CORES_VARIABLE, "").strip()
    if cap:
        if not cap.isdigit() or int(cap) < 1:
            raise ValueError(f"{CORES_VARIABLE}={cap!r}: expected a whole number of cores, 1 or more")
        available = min(available, int(cap))
    return max(1, min(int(chains), available))
