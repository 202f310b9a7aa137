"""NUTS settings shared by every model's fit: the trajectory-depth cap and its sampler keys.

Kept apart from `bayes_lac.model.fit` so that models that import PyMC only when they sample
(`bayes_lac.model.flows`) can share it without importing PyMC at import time.
"""

from __future__ import annotations

#: NUTS builds trajectories of at most 2**depth steps; 10 is every sampler's default.
DEFAULT_MAX_TREEDEPTH = 10


def nuts_settings(sampler: str, max_treedepth: int) -> dict:
    """pm.sample's ``nuts=`` argument capping trajectories at ``2**max_treedepth`` steps (numpyro
    names the setting differently); refuses a depth outside 1-15."""
    if isinstance(max_treedepth, bool) or not isinstance(max_treedepth, int) or not 1 <= max_treedepth <= 15:
        raise ValueError(f"max_treedepth must be a whole number from 1 to 15, got {max_treedepth!r}")
    return {("max_tree_depth" if sampler == "numpyro" else "max_treedepth"): max_treedepth}
