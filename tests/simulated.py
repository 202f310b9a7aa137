"""Simulated panels shared by tests and bench scripts (no fixtures, no side effects on import)."""

from __future__ import annotations

from bayes_lac.config import ENGLAND_CODE
from bayes_lac.model.simulate import simulate_panel


def recovery_panel():
    """The parameter-recovery panel: 8 authorities x 2012-2024 drawn from the model itself, with
    deprivation and UASC published every year. Returns the panel, the truth and the authority
    codes (the target first)."""
    panel, truth = simulate_panel(
        n_la=8,
        years=(2012, 2024),
        seed=21,
        deprivation_years=None,
        uasc_gaps=False,
        truth={"persistence": (0.5, 0.4, 0.6)},
    )
    codes = [c for c in panel["la_code"].unique() if c != ENGLAND_CODE]
    return panel, truth, codes
