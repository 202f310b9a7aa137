"""Recovery of awkward truths by the latent-state model's decomposition, at its default settings.

One simulated panel (`bayes_lac.model.simulate.simulate_panel`, 20 authorities, 2010-2025, all
three measures, counts drawn from the default model's negative-binomial process) carries six
awkward truths, each on its own authority:

* a local surge in looked-after supply: +5 % a year for 7 years from 2012, then flat;
* an authority created in 2021 (a reorganisation: no row before it);
* a UASC influx: 40 more unaccompanied children from 2016;
* a deprivation step: +5 points from 2018;
* fast population growth: 3 % a year;
* a national shift: every authority's looked-after rate up by 10 % from 2020.

The panel is fitted once, national-style (every authority, `bayes_lac.model.latent_fit`'s
defaults: nutpie, 4 chains x 2,000 draws (the default below 50 authorities) after 1,000 tuning,
target acceptance 0.95), and each
event's authority is decomposed (`bayes_lac.analysis.decompose.decompose`) over a window around
its event. The true parts are the same Shapley split of the true log rate's terms: population,
UASC (the known count), deprivation (the true effect times the change), national (the common
random walk and the national shift) and the authority's own path (its linear trend and local
shift). Printed: each part's truth, posterior mean and 90 % interval, whether the interval
holds the truth, and the fit's gate.

The truth's national part and the model's differ by definition by the average of the
authorities' own movements (the model's national path is what they share; the truth's is the
random walk alone): with 20 authorities that is one twentieth of the surge, a small part of the
national part's interval.

Run from the project root: ``.venv/bin/python bench/recovery_latent.py [--seed 3]`` (about 3
minutes on 2 cores); writes ``bench/results/recovery_latent.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sbc_ranks import write_json  # noqa: E402

from bayes_lac.analysis.decompose import ADDITIVE_COMPONENTS, decompose, shapley_split  # noqa: E402
from bayes_lac.config import MEASURES, RATE_PER  # noqa: E402
from bayes_lac.model.data import prepare_data  # noqa: E402
from bayes_lac.model.latent_fit import LatentFitter  # noqa: E402
from bayes_lac.model.simulate import simulate_panel, surge_then_plateau  # noqa: E402

N_LA, YEARS = 20, (2010, 2025)
YRS = np.arange(YEARS[0], YEARS[1] + 1)
#: event name -> (authority index, window, measure, the events given to simulate_panel)
SCENARIOS = {
    "local surge then plateau": (0, (2011, 2024), "looked_after"),
    "authority created in 2021": (1, (2021, 2025), "looked_after"),
    "UASC influx": (2, (2014, 2020), "looked_after"),
    "deprivation step": (3, (2015, 2022), "looked_after"),
    "population growth": (4, (2012, 2024), "looked_after"),
    "national shift": (5, (2016, 2024), "looked_after"),
}
EVENTS = {
    "local": {0: surge_then_plateau(YRS, 2012)},
    "starts": {1: 2021},
    "uasc": {2: np.where(YRS >= 2016, 40.0, 0.0)},
    "deprivation": {3: (2018, 5.0)},
    "population": {4: 0.03},
    "national": {"looked_after": np.where(YRS >= 2020, np.log(1.1), 0.0)},
}


def true_parts(panel, truth, i: int, window, measure: str) -> dict[str, float]:
    """The Shapley split of authority `i`'s true change (children), as the decomposition defines it."""
    a, b = (int(np.flatnonzero(YRS == y)[0]) for y in window)
    k = MEASURES.index(measure)
    code = truth["la"][i]
    rows = panel[panel["la_code"] == code].set_index("year")
    pop = rows["population_0_17"]
    log_rate = truth["log_rate"][k, i]
    start = np.exp(log_rate[a]) * pop[window[0]] / RATE_PER
    trend = truth["la_trend"][i, k] * (window[1] - window[0])
    ratios = {
        "population": np.log(pop[window[1]] / pop[window[0]]),
        "deprivation": truth["deprivation_effect"][k] * (truth["deprivation"][i, b] - truth["deprivation"][i, a]),
        "supply_national": (truth["year_effect"][k, b] - truth["year_effect"][k, a])
        + (truth["national_shift"][k, b] - truth["national_shift"][k, a]),
        "supply_local": trend + (truth["local_shift"][i, b] - truth["local_shift"][i, a]) * (k == 0),
    }
    parts = shapley_split(xr.DataArray(start), {c: xr.DataArray(v) for c, v in ratios.items()})
    out = {c: float(v) for c, v in parts.items()}
    uasc = rows["uasc"] if measure == "looked_after" else None
    out["uasc"] = float(uasc[window[1]] - uasc[window[0]]) if uasc is not None else 0.0
    out["total"] = sum(out[c] for c in ADDITIVE_COMPONENTS)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "recovery_latent.json"))
    args = ap.parse_args(argv)
    panel, truth = simulate_panel(
        n_la=N_LA, years=YEARS, seed=args.seed, deprivation_years=None, uasc_gaps=False, events=EVENTS
    )
    truth["deprivation"] = _true_deprivation(panel, truth)
    codes = truth["la"]
    data = prepare_data(panel, codes[0], neighbours="all")
    tic = time.perf_counter()
    run = LatentFitter().fit(data, seed=args.seed, progressbar=True)
    seconds = time.perf_counter() - tic
    diagnostics = run.attrs["diagnostics"]
    print(f"fit: {seconds:.0f} s; converged: {run.attrs['converged']}; {diagnostics}")
    results, covered, judged = {}, {}, {}
    for name, (i, window, measure) in SCENARIOS.items():
        d = decompose(run, codes[i], *window, measures=measure, allow_unconverged=True)
        truths = true_parts(panel, truth, i, window, measure)
        table = d.table.set_index("component")
        rows = {}
        print(f"\n{name}: {codes[i]}, {measure}, {window[0]}-{window[1]}")
        print(f"  {'part':<16}{'truth':>8}{'mean':>8}{'90% interval':>20}  holds")
        for c in (*ADDITIVE_COMPONENTS, "total"):
            r = table.loc[c]
            holds = bool(r["lower"] - 0.5 <= truths[c] <= r["upper"] + 0.5)  # counts: half a child either way
            rows[c] = {
                "truth": truths[c],
                "mean": float(r["mean"]),
                "lower": float(r["lower"]),
                "upper": float(r["upper"]),
            }
            rows[c]["holds"] = holds
            if c in ADDITIVE_COMPONENTS:
                covered[c], judged[c] = covered.get(c, 0) + holds, judged.get(c, 0) + 1
            print(
                f"  {c:<16}{truths[c]:>8.1f}{r['mean']:>8.1f}{r['lower']:>10.1f} to {r['upper']:>6.1f}  {'yes' if holds else 'NO'}"
            )
        results[name] = {"authority": codes[i], "window": list(window), "measure": measure, "parts": rows}
    modelled = ("deprivation", "supply_national", "supply_local")
    inside = sum(covered[c] for c in modelled), sum(judged[c] for c in modelled)
    print(
        f"\nthe model's parts (deprivation, national, own path): {inside[0]} of {inside[1]} inside their 90 % "
        f"interval; population and UASC (data, or nearly): {sum(covered.values()) - inside[0]} of "
        f"{sum(judged.values()) - inside[1]}"
    )
    write_json(
        args.out,
        {
            "what": "recovery of awkward truths by the latent model's decomposition (bench/recovery_latent.py)",
            "seed": args.seed,
            "fit_seconds": round(seconds),
            "converged": run.attrs["converged"],
            "diagnostics": diagnostics,
            "model_parts_inside_90": list(inside),
            "parts_inside_90_by_component": {c: [covered[c], judged[c]] for c in judged},
            "scenarios": results,
        },
    )
    return 0


def _true_deprivation(panel, truth) -> np.ndarray:
    """Deprivation per (la, year) as simulated (published in every year here)."""
    wide = panel.pivot_table(index="la_code", columns="year", values="deprivation")
    return wide.reindex(index=truth["la"], columns=YRS).to_numpy()


if __name__ == "__main__":
    raise SystemExit(main())
