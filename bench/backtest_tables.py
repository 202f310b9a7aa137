"""Markdown tables of a saved backtest, for models/backtest/README.md (so its figures are never typed).

Usage: python bench/backtest_tables.py [STEM]   (default models/backtest/backtest_full)

Reads ``STEM_summary.csv``, ``STEM_ratios.csv``, ``STEM_origins.csv`` and ``STEM_manifest.json``
(as `bayes-lac backtest` writes them) and prints, per measure:

* a table of ``90 % coverage · PIT mean · mean CRPS`` by method and horizon, with the cells scored
  (each method on all the cells it scored);
* the model beside pooled growth on the same cells (`bayes_lac.studies.backtest.against_pooled`);
* the model's CRPS over each baseline's on the cells both scored, with the 90 % interval from
  resampling origins (none with fewer than `MIN_ORIGINS_FOR_INTERVAL` origins);
* the origins whose fit failed its convergence gate, with the reason, and the wall time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from bayes_lac.config import MEASURES
from bayes_lac.studies.backtest import MIN_ORIGINS_FOR_INTERVAL, against_pooled
from bayes_lac.studies.baselines import BASELINES, MODEL_METHOD


def _cell(row) -> str:
    return f"{100 * row.coverage_90:.1f} % · {row.pit_mean:.2f} · {row.crps:.1f}"


def score_table(summary: pd.DataFrame, measure: str) -> str:
    sub = summary[(summary["measure"] == measure) & (summary["outcome"] == "latest") & (summary["n_scored"] > 0)]
    horizons = sorted(sub["horizon"].unique())
    methods = [m for m in (MODEL_METHOD, *BASELINES) if m in set(sub["method"])]
    lines = ["| method | " + " | ".join(f"h = {h}" for h in horizons) + " |", "|---" * (len(horizons) + 1) + "|"]
    for method in methods:
        rows = sub[sub["method"] == method].set_index("horizon")
        cells = [_cell(rows.loc[h]) if h in rows.index else "none" for h in horizons]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    counts = []
    for h in horizons:
        rows = sub[sub["horizon"] == h].set_index("method")["n_scored"]
        counts.append(" / ".join(f"{int(rows.get(m, 0)):,}" for m in methods))
    lines.append(f"| cells scored ({' / '.join(methods)}) | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def ratio_table(ratios: pd.DataFrame, measure: str) -> str:
    sub = ratios[(ratios["measure"] == measure) & (ratios["split"] == "all")]
    if sub.empty:
        return "(no ratios: the model scored no cell of this measure)"
    horizons = sorted(sub["horizon"].unique())
    lines = [
        "| model / | " + " | ".join(f"h = {h}" for h in horizons) + " |",
        "|---" * (len(horizons) + 1) + "|",
    ]
    for baseline in [b for b in BASELINES if b in set(sub["baseline"])]:
        rows = sub[sub["baseline"] == baseline].set_index("horizon")
        cells = []
        for h in horizons:
            if h not in rows.index:
                cells.append("none")
                continue
            r = rows.loc[h]
            with_interval = r.n_origins >= MIN_ORIGINS_FOR_INTERVAL and pd.notna(r.lower)
            cells.append(f"{r.ratio:.2f} ({r.lower:.2f}-{r.upper:.2f})" if with_interval else f"{r.ratio:.2f}")
        lines.append(f"| {baseline} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def same_cells_table(table: pd.DataFrame, measure: str) -> str:
    rows = against_pooled(table)
    rows = rows[rows["measure"] == measure]
    lines = [
        "| years ahead | cells | origins | model: 90 % coverage · PIT mean | pooled growth: 90 % coverage · PIT mean "
        "| CRPS, model / pooled growth |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows.itertuples():
        interval = f" ({r.lower:.2f}-{r.upper:.2f})" if pd.notna(r.lower) else ""
        lines.append(
            f"| {r.horizon} | {r.n_scored:,} | {r.n_origins} | {100 * r.coverage_90:.1f} % · {r.pit_mean:.2f} "
            f"| {100 * r.coverage_90_pooled:.1f} % · {r.pit_mean_pooled:.2f} | {r.crps_ratio:.2f}{interval} |"
        )
    return "\n".join(lines)


def main(stem: str) -> None:
    stem = Path(stem)
    summary = pd.read_csv(f"{stem}_summary.csv")
    ratios = pd.read_csv(f"{stem}_ratios.csv")
    origins = pd.read_csv(f"{stem}_origins.csv")
    manifest = json.loads(Path(f"{stem}_manifest.json").read_text())
    table = pd.read_csv(f"{stem}.csv.gz", dtype={"la_code": str})
    for measure in [m for m in MEASURES if m in set(summary["measure"])]:
        print(f"`{measure}`: 90 % coverage · PIT mean · mean CRPS (children)\n")
        print(score_table(summary, measure))
        print(f"\n`{measure}`: the model beside pooled growth on the same cells\n")
        print(same_cells_table(table, measure))
        print(f"\n`{measure}`: CRPS of the model over each baseline (90 % interval over origins)\n")
        print(ratio_table(ratios, measure))
        print()
    model = origins[origins["method"] == MODEL_METHOD]
    failed = model[model["status"] == "failed"]
    print(f"model origins scored: {', '.join(map(str, model.loc[model['status'] != 'failed', 'origin']))}")
    for row in failed.itertuples():
        print(f"- {row.origin} failed: {row.message}")
    fit = model["fit_seconds"]
    print(f"fit seconds per origin: {fit.min():.0f}-{fit.max():.0f} (total {fit.sum():.0f})")
    keys = ("package_version", "model_config_hash", "wall_seconds", "panel_sha256_16")
    print("manifest: " + ", ".join(f"{k} {manifest.get(k)}" for k in keys))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/backtest/backtest_full")
