"""How much looked-after counts vary from year to year against the Poisson part of the latent model's noise.

Usage: python bench/lac_count_noise.py [RUN.nc]

1. Over every authority's published counts (children looked after without UASC, children in
   need, child protection plans) in the bundled panel, each run of three consecutive published
   years gives a second difference of the log count. Its mean square is set against the
   variance the Poisson part of the latent model's observation noise alone gives it,
   1/n1 + 4/n2 + 1/n3 (`bayes_lac.model.latent`: 1 / (count + 0.5) a year); any movement of
   the path adds to that, so a ratio below 1 says the counts vary less than that part assumes.
   By size band of the middle year's count, and in all.
2. With a saved latent run: how far the modelled looked-after state in the run's last year
   (median over draws of the expected count, `authority_states`) sits from the published count,
   over the run's authorities, and for Thurrock (E06000034) if it is in the run.

A measurement, not a test (models/README.md, "Looked-after counts as a stock").
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bayes_lac.data.panel import load_panel  # noqa: E402

BANDS = ((0, 100), (100, 300), (300, 600), (600, np.inf))


def second_differences(panel, measure):
    rows = []
    for _, g in panel[panel["geographic_level"] == "Local authority"].groupby("la_code"):
        g = g.sort_values("year")
        count = g[measure].astype(float).to_numpy()
        if measure == "looked_after":
            count = count - g["uasc"].astype(float).fillna(0).to_numpy()
        years = g["year"].to_numpy()
        for k in range(len(count) - 2):
            n = count[k : k + 3]
            if np.all(np.isfinite(n)) and np.all(n > 0) and years[k + 2] - years[k] == 2:
                d2 = np.log(n[2]) - 2 * np.log(n[1]) + np.log(n[0])
                rows.append((d2**2, 1 / (n[0] + 0.5) + 4 / (n[1] + 0.5) + 1 / (n[2] + 0.5), n[1]))
    return np.array(rows)


def main() -> int:
    panel = load_panel()
    print("mean square of the second difference of the log count / its Poisson-part variance")
    for measure in ("looked_after", "children_in_need", "child_protection"):
        a = second_differences(panel, measure)
        bands = []
        for lo, hi in BANDS:
            s = a[(a[:, 2] >= lo) & (a[:, 2] < hi)]
            if len(s):
                bands.append(f"{lo:g}-{hi:g}: {s[:, 0].mean() / s[:, 1].mean():.2f} (n={len(s)})")
        print(f"{measure}: all {a[:, 0].mean() / a[:, 1].mean():.2f} (n={len(a)}); " + "; ".join(bands))
    if len(sys.argv) > 1:
        from bayes_lac.model.latent_fit import authority_states, data_of
        from bayes_lac.model.results import load_run

        run = load_run(sys.argv[1], allow_latent=True)
        data = data_of(run)
        _, states, _ = authority_states(run, list(data.la), data, years=[int(data.year[-1])])
        k = list(data.measures).index("looked_after")
        expected = np.exp(states["mean"] + states["level"])[:, k, :, -1] * data.population_0_17[:, -1] / 10_000 - 0.5
        published = data.modelled_count[k, :, -1]
        ok = np.isfinite(published) & (published > 0)
        gap = np.abs(np.median(expected, axis=0)[ok] - published[ok]) / published[ok]
        print(
            f"{sys.argv[1]} ({int(data.year[-1])}): modelled looked-after state (without UASC) against the published "
            f"count, {ok.sum()} authorities: median gap {100 * np.median(gap):.1f} %, 90th percentile "
            f"{100 * np.quantile(gap, 0.9):.1f} %, largest {100 * gap.max():.1f} %"
        )
        if "E06000034" in list(data.la):
            j = list(data.la).index("E06000034")
            lo, mid, hi = np.quantile(expected[:, j], [0.05, 0.5, 0.95])
            print(f"Thurrock: published {published[j]:.0f}, modelled {mid:.1f} (90 % interval {lo:.1f}-{hi:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
