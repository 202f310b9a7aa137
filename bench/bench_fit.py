"""Time the model fit: (a) Thurrock and its 10 statistical neighbours, (b) every authority.

Targets (issue, on 2 cores): (a) under 15 s of sampling after compilation, (b) under 60 s;
at the default settings 0 divergences, R-hat <= 1.01 and bulk ESS >= 400; and an ESS per
second at least 3x a straightforward baseline (the same model with non-centred authority
effects and random-walk steps, deprivation entered as written: parameterisation
``"baseline"``), fitted in the same run with pm.sample's default settings
(`BASELINE_SETTINGS`). The default fit uses the package defaults (``bayes_lac.model``).

Each fit runs in a fresh Python process, as a user's ``bayes-lac fit`` would, so compile
times include the per-process numba compilation and the peak memory is that process's own
(maximum resident set size from ``resource.getrusage``, which counts numpy and the
sampler's native memory alike). "Sampling" is the sampler's own time (tuning and draws);
"compile" is the rest of the sampling call (building and compiling the log-density and its
gradient); "wall" is the whole fit including the log-likelihood and log-prior groups and the
diagnostics.

With ``--latent-seeds N`` (default 1) the latent-state model (`bayes_lac.model.latent_fit`, issue
#13's candidate) is fitted first in each case at its own defaults with seeds 1..N, and printed
in the same table; its "compile" is building and compiling the model, its "sampling" the
sampler's call, its wall time includes preparing the data.

Run from the project root::

    .venv/bin/python bench/bench_fit.py            # (a) and (b): latent (seed 1), default and baseline
    .venv/bin/python bench/bench_fit.py --only a   # just (a)
    .venv/bin/python bench/bench_fit.py --sampler pymc
    .venv/bin/python bench/bench_fit.py --no-default --no-baseline --latent-seeds 5   # the latent model's gate on 5 seeds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {"a": ("E06000034", "2021"), "b": ("E06000034", "all")}
#: Sampler settings of the baseline: pm.sample's defaults (4 chains, 1000 tuning steps,
#: 1000 draws, target acceptance 0.8; nutpie is pm.sample's default sampler when installed).
BASELINE_SETTINGS = {"draws": 1000, "tune": 1000, "chains": 4, "target_accept": 0.8, "sampler": "nutpie"}


def _gate_and_memory(diag, sampling_s: float, size: int | None) -> dict:
    """The gate's figures, ESS per second of sampling, this process's peak memory, the run file."""
    import resource

    return {
        "min_ess_bulk": diag.min_ess_bulk,
        "min_ess_tail": diag.min_ess_tail,
        "max_rhat": diag.max_rhat,
        "divergences": diag.divergences,
        "converged": diag.converged,
        "worst": diag.worst,
        "ess_per_s": diag.min_ess_bulk / sampling_s,
        # ru_maxrss is in KiB on Linux
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "run_file_mib": None if size is None else size / 2**20,
    }


def _latent_child(case: str, seed: int, out: str, save: str | None) -> None:
    """Fit the latent-state model (`bayes_lac.model.latent_fit`) at its defaults, once."""

    from bayes_lac import load_panel
    from bayes_lac.model.data import prepare_data
    from bayes_lac.model.diagnostics import check_convergence
    from bayes_lac.model.latent_fit import LatentFitter
    from bayes_lac.model.results import save_run

    la, neighbours = CASES[case]
    start = time.perf_counter()
    data = prepare_data(load_panel(), la, neighbours=neighbours)
    run = LatentFitter().fit(data, seed=seed)
    wall = time.perf_counter() - start
    diag = check_convergence(run)
    info = json.loads(run.attrs["sampler"])
    size = None
    if save:
        save_run(run, save)
        size = os.path.getsize(save)
    result = {
        "case": case,
        "parameterisation": f"latent s{seed}",
        "sampler": info["sampler"],
        "settings": f"{info['chains']} chains x {info['tune']} tune + {info['draws']} draws, target_accept {info['target_accept']}"
        + (f", {info['adaptation']} mass matrix" if "adaptation" in info else ""),
        "authorities": len(data.la),
        "cells": int(np.isfinite(data.modelled_count).sum()),
        "wall_s": wall,
        "compile_s": info["compile_seconds"],
        "sampling_s": info["sample_seconds"],
        **_gate_and_memory(diag, info["sample_seconds"], size),
    }
    Path(out).write_text(json.dumps(result, default=float))


def _child(case: str, parameterisation: str, sampler: str | None, out: str, save: str | None) -> None:
    """Fit once and write the measurements as JSON (runs in its own process)."""

    from bayes_lac import load_panel
    from bayes_lac.model.diagnostics import check_convergence
    from bayes_lac.model.fit import DEFAULT_SAMPLER, LACModel
    from bayes_lac.model.results import save_run

    la, neighbours = CASES[case]
    panel = load_panel()
    model = (
        LACModel(la, neighbours=neighbours)
        if parameterisation == "default"
        else LACModel(la, neighbours=neighbours, parameterisation=parameterisation)
    )
    start = time.perf_counter()
    kwargs = {"progressbar": False}
    if parameterisation == "baseline":
        # what a user writing the model by hand gets: pm.sample's own defaults
        kwargs.update(BASELINE_SETTINGS)
    if sampler:
        kwargs["sampler"] = sampler
    run = model.fit(panel, **kwargs)
    wall = time.perf_counter() - start
    diag = check_convergence(run)
    timing = model.timing_
    sampling = timing.get("sampling_s", float("nan"))
    size = None
    if save:
        save_run(run, save)
        size = os.path.getsize(save)
    info = json.loads(run.attrs["sampler"])
    result = {
        "case": case,
        "parameterisation": parameterisation,
        "sampler": info["sampler"] if "sampler" in info else (sampler or DEFAULT_SAMPLER),
        "settings": f"{info['chains']} chains x {info['tune']} tune + {info['draws']} draws, target_accept {info.get('target_accept')}",
        "authorities": int(run["posterior"].sizes["la"]),
        "cells": int(run["log_likelihood"].sizes["obs"]),
        "wall_s": wall,
        "compile_s": timing.get("sample_call_s", float("nan")) - sampling + timing.get("build_s", 0.0),
        "sampling_s": sampling,
        **_gate_and_memory(diag, sampling, size),
        "partition": {
            k: (len(v) if isinstance(v, list) else {m: len(c) for m, c in v.items()})
            for k, v in json.loads(run.attrs["parameterisation"]).items()
            if k != "mode"
        },
    }
    Path(out).write_text(json.dumps(result, default=float))


def _fit_in_process(case, parameterisation, sampler, save=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--child", case, parameterisation, sampler or "", str(out), save or ""]
        env = {**os.environ, "PYTENSOR_FLAGS": os.environ.get("PYTENSOR_FLAGS", "blas__ldflags=")}
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"fit {case}/{parameterisation} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def _row(r: dict) -> str:
    return (
        f"({r['case']}) {r['parameterisation']:<10} {r['sampler']:<7} {r['authorities']:>4} LAs {r['cells']:>5} cells | "
        f"wall {r['wall_s']:6.1f} s  compile {r['compile_s']:5.1f} s  sampling {r['sampling_s']:6.1f} s | "
        f"ESS bulk {r['min_ess_bulk']:7.0f} tail {r['min_ess_tail']:6.0f}  R-hat {r['max_rhat']:.3f}  "
        f"div {r['divergences']:>3} | ESS/s {r['ess_per_s']:6.1f} | peak RSS {r['peak_rss_mib']:6.0f} MiB"
        + (f" | run file {r['run_file_mib']:.1f} MiB" if r.get("run_file_mib") else "")
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), help="run one case only")
    parser.add_argument(
        "--sampler",
        help="sampler of the default and baseline fits (default: the package default; the latent fits use nutpie)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline fits")
    parser.add_argument("--no-default", action="store_true", help="skip the default (v0.2) model's fits")
    parser.add_argument(
        "--latent-seeds",
        type=int,
        default=1,
        metavar="N",
        help="fit the latent-state model with seeds 1..N (default 1; 0 skips it)",
    )
    args = parser.parse_args(argv)
    cases = [args.only] if args.only else sorted(CASES)
    print(f"bench_fit: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start")
    results = []
    for case in cases:
        save = str(ROOT / f"bench_{case}.nc") if case else None
        for seed in range(1, args.latent_seeds + 1):
            latent = _fit_in_process(case, f"latent:{seed}", None, save=save if seed == 1 else None)
            Path(save).unlink(missing_ok=True)
            print(_row(latent), flush=True)
            print(f"    settings: {latent['settings']}; slowest: {latent['worst']}; converged: {latent['converged']}")
            results.append(latent)
        if args.no_default:
            continue
        default = _fit_in_process(case, "default", args.sampler, save=save)
        Path(save).unlink(missing_ok=True)
        print(_row(default), flush=True)
        print(
            f"    settings: {default['settings']}; slowest: {default['worst']}; centred blocks: {default['partition']}"
        )
        results.append(default)
        if not args.no_baseline:
            base = _fit_in_process(case, "baseline", args.sampler)
            print(_row(base), flush=True)
            print(f"    slowest: {base['worst']}")

            def ratio(key, default=default, base=base):
                return default[key] / base[key] if base[key] > 0 else float("inf")

            print(
                f"    default / baseline: ESS/s {ratio('ess_per_s'):.1f}x, min bulk ESS {ratio('min_ess_bulk'):.1f}x, "
                f"sampling time {ratio('sampling_s'):.1f}x, wall time {ratio('wall_s'):.1f}x, "
                f"peak RSS {ratio('peak_rss_mib'):.1f}x"
            )
            results.append(base)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    print(json.dumps(results, default=float))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        case, par, sampler, out, save = sys.argv[2:7]
        if par.startswith("latent:"):
            _latent_child(case, int(par.split(":")[1]), out, save or None)
        else:
            _child(case, par, sampler or None, out, save or None)
    else:
        main()
