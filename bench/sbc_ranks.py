"""Ranks, rank histograms and their summary table: what the SBC scripts (`sbc_model.py`,
`sbc_latent.py`) share.

A replication ranks each true value among ``L`` thinned posterior draws (0..L). With a
calibrated model and sampler the ranks are uniform: the summary gives, per quantity, a
chi-square test of uniformity over `BINS` bins, the mean rank / L (0.5 if unbiased) and the
share of truths inside the central 50 % and 90 % posterior intervals.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

#: Bins of the rank histograms.
BINS = 10


def thinned(n_total: int, n_kept: int) -> np.ndarray:
    """Indices of `n_kept` draws spread evenly over `n_total` (ranks are taken among these)."""
    return np.linspace(0, n_total - 1, n_kept).round().astype(int)


def rank_record(draws: dict[str, np.ndarray], truth: dict[str, float], keep: np.ndarray) -> dict:
    """Rank and interval membership of each true value among its draws.

    `draws` maps a quantity to its posterior draws (1-d; the intervals use all of them, the rank
    the draws at `keep`, or all of them when the array is as long as `keep`)."""
    record: dict = {"rank": {}, "in50": {}, "in90": {}, "truth": {}}
    for name, d in draws.items():
        d = np.asarray(d, float)
        value = float(truth[name])
        lo50, hi50, lo90, hi90 = np.quantile(d, [0.25, 0.75, 0.05, 0.95])
        ranked = d if len(d) == len(keep) else d[keep]
        record["rank"][name] = int((ranked < value).sum())
        record["in50"][name] = bool(lo50 <= value <= hi50)
        record["in90"][name] = bool(lo90 <= value <= hi90)
        record["truth"][name] = value
    return record


def summarise_ranks(records: list[dict], names, judged, ranks_from: int) -> dict:
    """Per quantity: chi-square p of uniform ranks, mean rank / L, 50 % and 90 % coverage."""
    summary = {}
    for name in names:
        r = [rec["rank"][name] for rec in records]
        counts = np.histogram(r, bins=BINS, range=(0, ranks_from + 1))[0]
        summary[name] = {
            "chi2_p": float(stats.chisquare(counts).pvalue),
            "mean_rank": float(np.mean(r) / ranks_from),
            "cover50": float(np.mean([rec["in50"][name] for rec in records])),
            "cover90": float(np.mean([rec["in90"][name] for rec in records])),
            "histogram": counts.tolist(),
            "judged": name in judged,
        }
    return summary


def show_ranks(result: dict, ranks_from: int, width: int = 20) -> None:
    """Print the summary table of `summarise_ranks` (in ``result["quantities"]``)."""
    n = result["replications"]
    print(f"\nSBC, {n} replications, ranks among {ranks_from} draws (fits {result['fit_seconds']} s):")
    print(f"{'quantity':<{width}}{'chi2 p':>8}{'mean rank':>11}{'in 50%':>8}{'in 90%':>8}  histogram")
    for name, s in result["quantities"].items():
        flag = "" if s["judged"] else "  (lower level: reported, not judged)"
        print(
            f"{name:<{width}}{s['chi2_p']:>8.3f}{s['mean_rank']:>11.2f}{s['cover50']:>8.2f}{s['cover90']:>8.2f}  "
            f"{s['histogram']}{flag}"
        )
    print(f"fits failing the gate: {result['fits_failing_gate']} of {n}")


def combined_records(files) -> list[dict]:
    """The replication records of earlier runs (e.g. halves run side by side), refusing overlap."""
    parts = [json.loads(Path(f).read_text()) for f in files]
    records = [rec for part in parts for rec in part["replication_records"]]
    if len({(rec["seed"], rec["replication"]) for rec in records}) != len(records):
        raise SystemExit("the files share replications (same seed): combine runs made with different --seed")
    return records


def write_json(path, result: dict) -> None:
    """Write `result` to `path` atomically (a temporary file beside it, then a rename)."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(path)
