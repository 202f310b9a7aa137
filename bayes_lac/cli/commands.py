"""The work behind each ``bayes-lac`` subcommand: read inputs, call the analyses, write files, print.

Analyses return results and print nothing; everything a command says to the user is said here.

Every command first checks its output paths (`bayes_lac.files.prepare_outputs`: not an input,
not under a file, folder created), so a bad path fails in the first second, not after a fit;
every file is then written atomically, and CSV text that a spreadsheet would run as a formula
is written with a leading single quote (`bayes_lac.files.write_csv`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from bayes_lac.files import atomic_path, file_slug, prepare_outputs, write_csv


def _check_priors(priors: str | None) -> None:
    """Read and validate --priors now, so that a bad prior file fails before any fit."""
    if priors is not None:
        from bayes_lac.model.priors import load_priors

        load_priors(priors)


def _prior_file(priors: str | None, latent: bool = False) -> str | None:
    """The --priors value if it names a file (not a shipped prior set, of the 0.2 model or, with
    `latent`, of the latent model), for the input checks."""
    from bayes_lac.config import LATENT_PRIOR_SETS_DIR, PRIORS_DIR

    shipped = LATENT_PRIOR_SETS_DIR if latent else PRIORS_DIR
    if priors is None or (shipped / f"{priors}.toml").is_file():
        return None
    return priors


def _latent_sensitivity(args, results, prior_sets: list[str], out: Path) -> int:
    """``bayes-lac sensitivity`` of a latent run: its power-scaling, and refits under other beliefs
    (`bayes_lac.studies.latent_sensitivity`) if ``--prior-sets`` or ``--refits`` asks."""
    from bayes_lac.model.results import run_info
    from bayes_lac.studies import latent_sensitivity as LS
    from bayes_lac.studies.sensitivity import _bundled_unit_costs, latent_power_scaling, power_scaling_finding

    keys = [k.strip() for k in (getattr(args, "refits", "") or "").split(",") if k.strip()]
    # names and files checked before any work
    variants = [*keys, *(LS.prior_set_variant(p) for p in prior_sets)]
    LS._variants(variants)
    power = latent_power_scaling(results)
    finding = power_scaling_finding(power, converged=run_info(results, allow_latent=True).converged)
    if not variants:
        write_csv(power, out)
        print(f"Wrote {out}.")
        print(str(finding))
        return 0
    if getattr(args, "scheduler", None) or getattr(args, "workers", 2) != 2:
        print("Note: --workers and --scheduler do not apply to a latent run: its refits run one after another.")
    if getattr(args, "panel", None):
        from bayes_lac.data.panel import load_panel

        panel = LS.run_panel(results, load_panel(args.panel))
        unit_costs, note = _bundled_unit_costs(results, panel, str(args.panel))
    else:
        panel = None
        unit_costs, note = _bundled_unit_costs(results)
    study = LS.latent_refits(results, variants, panel=panel, unit_costs=unit_costs)
    power_out = out.with_name(out.stem + "_power_scaling.csv")
    write_csv(study.comparison, out)
    write_csv(power, power_out)
    print(f"Wrote {out} and {power_out}.")
    print(str(finding))
    print(str(study.finding))
    print(note)
    times = ", ".join(f"{k} {v:.0f} s" for k, v in study.fit_seconds.items())
    print(f"Refit times: {times or 'none'}; wall time {study.wall_seconds:.0f} s.")
    return 0


def backtest_command(args) -> int:
    """``bayes-lac backtest [--panel CSV] [--origins 2014-2022] [--methods model,baselines] ... --out CSV``.

    Writes the per-forecast rows to ``--out`` and, beside it, the summary, CRPS ratios, PIT
    histograms, origins' status, vintages and a manifest (`bayes_lac.studies.backtest.output_paths`);
    origins already scored in the cache folder beside ``--out`` are read back unless ``--rerun``.
    Prints the scores, the ratios, the targets, the origins that failed and where the time went.
    """
    from bayes_lac.config import CI_PROB, MEASURES
    from bayes_lac.data.panel import load_panel
    from bayes_lac.errors import BayesLacError, UnknownAuthorityError
    from bayes_lac.studies.backtest import (
        MODEL_METHOD,
        LatentModelForecaster,
        ModelForecaster,
        backtest,
        output_paths,
        parse_methods,
        parse_years,
        save_backtest,
        summary_tables,
        target_finding,
        time_table,
    )

    paths = output_paths(args.out)
    prepare_outputs(
        {
            ("--out" if k == "forecasts" else f"the {k} table (named from --out)"): p
            for k, p in paths.items()
            if k != "cache"
        },
        {"--panel": args.panel},
    )
    panel = load_panel(args.panel)
    origins = parse_years(args.origins, "origins")
    horizons = parse_years(args.horizons, "horizons") if args.horizons else None
    measures = MEASURES if args.measures == "all" else [m.strip() for m in args.measures.split(",") if m.strip()]
    las = args.las if args.las in ("all", "comparison") else [c.strip() for c in args.las.split(",") if c.strip()]
    # origins already run in parallel processes: one process per fit's chains
    workers = args.workers or (1 if args.model == "latent" else 2)
    cores = 1 if (workers > 1 or args.scheduler) else None
    common = dict(
        target=args.la,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        allow_unconverged=args.allow_unconverged,
        cores=cores,
    )
    if args.model == "latent":
        if args.max_treedepth is not None:
            raise BayesLacError(
                "--max-treedepth applies to the 0.2 model's fits (add --model default), not the latent model's"
            )
        model = LatentModelForecaster(neighbours=args.neighbours or "all", sampler=args.sampler or "nutpie", **common)
    else:
        model = ModelForecaster(
            neighbours=args.neighbours or "2021", sampler=args.sampler, max_treedepth=args.max_treedepth, **common
        )
    forecasters = parse_methods(args.methods, model=model)
    if las == "comparison" or model in forecasters:
        # refuses an unknown --la or --neighbours before any fit; baselines alone are scored on
        # the same authorities as the model would be
        try:
            fitted = model.comparison_las(panel)
        except UnknownAuthorityError as e:
            raise UnknownAuthorityError(
                f"{e} (--la {args.la} --neighbours {model.neighbours}; or score --las all)"
            ) from e
        las = fitted if las == "comparison" else las
    result = backtest(
        panel,
        forecasters,
        origins,
        horizons,
        measures,
        las,
        quantity=args.quantity,
        seed=args.seed,
        workers=workers,
        scheduler=args.scheduler,
        cache_dir=paths["cache"],
        rerun=args.rerun,
    )
    tables = summary_tables(result)
    save_backtest(result, args.out, tables)
    summary = tables["summary"]
    summary = summary[summary["outcome"] == "latest"]
    show = [
        "method",
        "horizon",
        "n_scored",
        "n_missing",
        "coverage_50",
        "coverage_80",
        "coverage_90",
        "pit_mean",
        "crps",
        "mae",
        "bias",
    ]
    ratios = tables["ratios"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        for measure in result.measures:
            print(f"== {measure}")
            print(summary.loc[summary["measure"] == measure, show].to_string(index=False))
            r = ratios[(ratios["measure"] == measure) & (ratios["split"] == "all")]
            if not r.empty:
                print(
                    f"CRPS of {r['reference'].iloc[0]} / each method (paired cells; {100 * CI_PROB:.0f}% bootstrap-over-origins interval):"
                )
                print(
                    r[["baseline", "horizon", "n_pairs", "n_origins", "ratio", "lower", "upper"]].to_string(index=False)
                )
            if MODEL_METHOD in result.methods:
                print(target_finding(result.table, measure).sentence)
            print()
        print("Where the time went (seconds):")
        print(time_table(result).to_string(index=False))
    for note in result.notes:
        print(note)
    written = ", ".join(str(p) for k, p in paths.items() if k != "cache")
    print(
        f"Wall time: {result.wall_seconds:.0f} s ({result.wall_seconds / 60:.1f} min, {result.workers}). Wrote {written}."
    )
    print(f"Per-origin results are cached in {paths['cache']} (an origin there is not run again unless --rerun).")
    return 0


def build_command(args) -> int:
    """``bayes-lac data build [--source DIR] [--out FILE]``."""
    from bayes_lac.config import BUNDLED_PANEL, DEFAULT_OFFICIAL_SOURCE, IN_CHECKOUT
    from bayes_lac.data.neighbours import build_neighbour_table, write_neighbour_table
    from bayes_lac.data.official import (
        build_all,
        la_number_table,
        la_numbers_path_for,
        neighbours_path_for,
        summary_lines,
        write_la_number_table,
        write_panel,
    )
    from bayes_lac.errors import UsageError

    if not IN_CHECKOUT:
        # The defaults are the repository's data/panel.csv and the official files beside the
        # checkout; an installed package's copy belongs to the installation and is never rewritten.
        for option, default in (("--out", "data/panel.csv"), ("--source", "../shared/data/official-raw")):
            if not getattr(args, option.removeprefix("--"), None):
                raise UsageError(
                    f"{option} is required when bayes_lac is installed from a wheel (the default, {default}, "
                    f"is a folder of a checkout of the repository)"
                )
    source = Path(args.source) if getattr(args, "source", None) else DEFAULT_OFFICIAL_SOURCE
    out = Path(args.out) if getattr(args, "out", None) else BUNDLED_PANEL
    neighbours_out = neighbours_path_for(getattr(args, "out", None))
    prepare_outputs({"--out": out, "the neighbour table (named from --out)": neighbours_out})
    panel, areas = build_all(source, progress=True)
    table = build_neighbour_table(source, areas)
    written = write_panel(panel, out)
    write_neighbour_table(table, neighbours_out)
    numbers = la_number_table(areas)
    numbers_out = write_la_number_table(numbers, la_numbers_path_for(getattr(args, "out", None)))
    print(f"built panel from {source}")
    for line in summary_lines(panel):
        print(f"  {line}")
    print(f"  written: {written}")
    print(
        f"  statistical neighbours: {len(table)} rows ({table['la_code'].nunique()} authorities, "
        f"models {', '.join(map(str, sorted(table['model'].unique())))}) written: {neighbours_out}"
    )
    print(f"  DfE LA numbers: {len(numbers)} numbers with their ONS codes written: {numbers_out}")
    return 0


def check_command(args) -> int:
    """``bayes-lac data check FILE``: validate a panel CSV and say what it holds."""
    from bayes_lac.data.panel import describe_panel, load_panel

    panel = load_panel(args.file)
    print(describe_panel(panel))
    return 0


def compare_command(args) -> int:
    """``bayes-lac compare``: chart and table of an authority against neighbours and England."""
    from bayes_lac.analysis.compare import (
        _neighbour_codes,
        comparison_findings,
        comparison_table,
        coverage_notes,
        plot_comparison,
    )
    from bayes_lac.config import ENGLAND_CODE
    from bayes_lac.data.panel import load_panel

    out = Path(args.out)
    csv_path = out / f"{args.la}_comparison.csv"
    png_path = out / f"{args.la}_comparison.png"
    prepare_outputs({"the table": csv_path, "the chart": png_path}, {"--panel": args.panel}, folders={"--out": out})
    panel = load_panel(args.panel) if args.panel else load_panel()
    notices = list(panel.attrs.get("notices", []))
    for notice in notices[:5]:
        print(f"Panel: {notice}")
    if len(notices) > 5:
        print(f"Panel: ... and {len(notices) - 5} more notices (see `bayes-lac data check {args.panel}`)")
    neighbours = _neighbour_codes(args.la, args.neighbours)
    table = comparison_table(panel, args.la, neighbours)
    write_csv(table, csv_path)
    fig = plot_comparison(table)
    import matplotlib.pyplot as plt

    try:
        with atomic_path(png_path) as temp:
            fig.savefig(temp, dpi=150, format="png")
    finally:
        plt.close(fig)
    print(f"Wrote {png_path}")
    print(f"Wrote {csv_path}")
    from bayes_lac.data.neighbours import parse_neighbours

    setting = parse_neighbours(args.neighbours)
    label = f"DfE {setting} model" if setting in ("2021", "2025") else "as given"
    names = table.drop_duplicates("la_code").set_index("la_code")["la_name"]
    listed = [f"{names.get(c) or '(not in the panel)'} ({c})" for c in neighbours]
    print(f"Statistical neighbours ({label}): {'; '.join(listed) if listed else 'none'}")
    for note in coverage_notes(table):
        print(f"Note: {note}")
    if ENGLAND_CODE not in set(panel["la_code"]):
        print(f"Note: the panel has no England row ({ENGLAND_CODE}), so England is not shown.")
    for finding in comparison_findings(table):
        print(finding.sentence + ("" if not finding.caveats else " " + " ".join(finding.caveats)))
    return 0


def costs_command(args) -> int:
    """``bayes-lac costs``: annual cost per scenario and year, the 3/5/10-year change and budget risk."""
    from bayes_lac.analysis.costs import (
        budget_risk,
        cost_change_table,
        cost_table,
        costs,
        financial_year,
        modelled_unit_costs,
        prob_cost_exceeds,
        unit_cost_history,
    )
    from bayes_lac.analysis.forecast import forecast, load_checked_run
    from bayes_lac.data.panel import load_panel
    from bayes_lac.data.prices import price_index
    from bayes_lac.errors import UnconvergedFitError
    from bayes_lac.summaries import format_money, format_percent

    prepare_outputs({"--out": args.out}, {"the run file": args.run, "--panel": args.panel, "--deflator": args.deflator})
    index = price_index(args.deflator, args.inflation)
    run = load_checked_run(args.run, allow_unconverged=args.allow_unconverged, allow_latent=True)
    fc = forecast(run, la=args.la, horizon=args.horizon, scenarios=args.scenario, seed=args.seed)
    panel = load_panel(args.panel)
    # checks the panel's unit-cost columns before anything is fitted
    history = unit_cost_history(panel, fc.la_code)
    if args.unit_cost_method == "model":
        print("Fitting the unit-cost model to every authority's s251 spend per child (under a minute)...")
        unit_costs = modelled_unit_costs(fc, panel, seed=args.seed)
        fit = unit_costs.attrs["fit"]
        if not fit.converged:
            d = fit.diagnostics
            problem = (
                f"the unit-cost model did not pass its convergence checks (largest R-hat {d['max_rhat']:.3f}, "
                f"smallest bulk ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergences; needed: R-hat < 1.01, "
                "bulk ESS > 200, none)"
            )
            if not args.allow_unconverged:
                raise UnconvergedFitError(
                    f"{problem}; --allow-unconverged uses it anyway (said in the notes), or "
                    "--unit-cost-method flat|trend prices the children with a named scenario instead"
                )
            print(f"WARNING: {problem}; used because --allow-unconverged was given.")
        co = costs(fc, unit_costs, inflation=args.inflation, seed=args.seed, prices=index)
    else:
        co = costs(fc, history, inflation=args.inflation, seed=args.seed, method=args.unit_cost_method, prices=index)
    prices = args.prices
    table = cost_table(co, ci_prob=args.ci_prob, prices=prices)
    if args.budget is not None:
        probs = [
            float((co.data["base_cost"] > args.budget).mean())
            if y == co.base_year
            else prob_cost_exceeds(co, args.budget, int(y), s, prices)
            for s, y in zip(table["scenario"], table["year"])
        ]
        table["budget_gbp_per_year"] = args.budget
        table["prob_exceeds_budget"] = probs
    write_csv(table, args.out)

    label = co.prices_label(prices)
    print(
        f"Annual cost of children looked after, {co.la_name} ({co.la_code}), base year {financial_year(co.base_year)}, "
        f"unit cost: {co.method}"
    )
    if not co.converged:
        print("WARNING: this run did not pass its convergence diagnostics; treat the numbers with caution.")
    horizons = [h for h in (3, 5, 10) if h <= fc.horizon]
    if horizons:
        change = cost_change_table(co, years_ahead=horizons, ci_prob=args.ci_prob, prices=prices)
        print(
            f"\nChange against {financial_year(co.base_year)} (£m a year, {label}, "
            f"median and {format_percent(args.ci_prob)} credible interval):"
        )
        shown = change.assign(
            base=(change["base_cost_gbp_per_year"] / 1e6).round(2),
            cost=(change["median_cost_gbp_per_year"] / 1e6).round(2),
            change=(change["median_change_gbp_per_year"] / 1e6).round(2),
            lower=(change["lower_change_gbp_per_year"] / 1e6).round(2),
            upper=(change["upper_change_gbp_per_year"] / 1e6).round(2),
        )[["scenario", "years_ahead", "financial_year", "base", "cost", "change", "lower", "upper"]]
        print(shown.to_string(index=False))
    if len(horizons) < 3:
        print(f"(changes beyond the {fc.horizon}-year horizon not shown)")
    if args.budget is not None:
        risk = budget_risk(co, args.budget, prices=prices, ci_prob=args.ci_prob)
        print(f"\nChance the annual cost exceeds {format_money(args.budget)} ({label}):")
        print(
            risk.assign(chance=(100 * risk["prob_exceeds_budget"]).round().astype(int).astype(str) + "%")[
                ["scenario", "years_ahead", "financial_year", "chance"]
            ].to_string(index=False)
        )
        for notice in risk.attrs["notices"]:
            print(f"  {notice}")
        print("P(annual cost > budget) for every year is in column prob_exceeds_budget.")
    print("\nAssumptions:")
    for a in co.assumptions:
        print(f"  - {a}")
    print(f"\nWrote {len(table)} rows (£ per year, {label}) to {args.out}")
    return 0


def decompose_command(args) -> int:
    """``bayes-lac decompose RUN --la CODE --from YEAR --to YEAR --out CSV``."""
    from bayes_lac.analysis.decompose import decompose
    from bayes_lac.model.diagnostics import require_converged
    from bayes_lac.model.results import ANALYSIS_GROUPS, load_run

    prepare_outputs({"--out": args.out}, {"the run file": args.run})
    results = load_run(args.run, groups=ANALYSIS_GROUPS, allow_latent=True)
    refit = getattr(args, "fit_to_end", False)
    if (
        not refit
        and not require_converged(results, allow_unconverged=args.allow_unconverged, allow_latent=True).converged
    ):
        print(
            "bayes-lac decompose: warning: the run failed its convergence diagnostics; "
            "the numbers are provisional (--allow-unconverged).",
            file=sys.stderr,
        )
    if refit:
        from bayes_lac.errors import BayesLacError
        from bayes_lac.model.latent_fit import is_latent_run, refit_until
        from bayes_lac.model.results import run_info

        if not is_latent_run(results):
            raise BayesLacError(f"--fit-to-end refits a latent-state run; {args.run} is a run of the 0.2 model")
        if args.to_year != run_info(results, allow_latent=True).last_year:
            print(f"Fitting the run's model again on the data up to {args.to_year} only.")
            results = refit_until(results, args.to_year, progressbar=True)
        else:
            print(f"The run is fitted on the data up to {args.to_year} already: no refit.")
        diag = require_converged(results, allow_unconverged=args.allow_unconverged, allow_latent=True)
        print(diag.summary())
    decomposition = decompose(
        results,
        la=args.la,
        from_year=args.from_year,
        to_year=args.to_year,
        ci_prob=args.ci_prob,
        allow_unconverged=args.allow_unconverged,
    )
    write_csv(decomposition.table, args.out)
    _say(decomposition.findings, args.out, notes=decomposition.caveats)
    return 0


def fit_command(args) -> int:
    """``bayes-lac fit``: fit, print notices and diagnostics, save the run."""
    from bayes_lac import load_panel
    from bayes_lac.model.fit import (
        DEFAULT_CHAINS,
        DEFAULT_DRAWS,
        DEFAULT_MAX_TREEDEPTH,
        DEFAULT_SAMPLER,
        DEFAULT_SEED,
        DEFAULT_TUNE,
        LACModel,
    )
    from bayes_lac.model.results import run_info

    # The output path is checked (and its folder made) before sampling, so a bad path never
    # costs a fit.
    if getattr(args, "model", "latent") == "latent":
        return _fit_latent(args)
    prepare_outputs({"--out": args.out}, {"--panel": args.panel, "--priors": _prior_file(args.priors)})
    _check_priors(args.priors)
    panel = load_panel(args.panel) if args.panel else load_panel()
    model = LACModel(args.la, neighbours=args.neighbours or "2021", until=args.until, priors=args.priors or "default")
    data = model.prepare(panel, source=str(args.panel or "bundled panel"))
    print(
        f"Fitting {args.la} with {len(data.la) - 1} comparison authorities ({data.comparison}), "
        f"{int(data.year[0])}-{int(data.year[-1])}, {len(data.observed_index()[0])} published counts."
    )
    _print_notices(data.imputations)
    run = model.fit(
        draws=DEFAULT_DRAWS if args.draws is None else args.draws,
        tune=DEFAULT_TUNE if args.tune is None else args.tune,
        chains=DEFAULT_CHAINS if args.chains is None else args.chains,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        sampler=getattr(args, "sampler", None) or DEFAULT_SAMPLER,
        max_treedepth=DEFAULT_MAX_TREEDEPTH if args.max_treedepth is None else args.max_treedepth,
        progressbar=True,
    )
    return _save_fitted(run, args.out, run_info(run).diagnostics)


def _print_notices(imputations) -> None:
    """Print a fit's notices about imputed and excluded inputs, if any."""
    if imputations:
        print("Notices (imputations and exclusions):")
        for line in imputations:
            print(f"  - {line}")


def _save_fitted(run, out, diag, note: str = "") -> int:
    """Print a fit's diagnostics, save the run, and warn loudly if it failed its gate."""
    from bayes_lac.model.diagnostics import convergence_warning
    from bayes_lac.model.results import save_run

    print(diag.summary())
    save_run(run, out)
    print(f"Saved the run to {out}{note}")
    if not diag.converged:
        print(convergence_warning(diag), file=sys.stderr)
    return 0


def _check_latent_settings(args) -> None:
    """Refuse the fit settings that the latent-state model does not take."""
    from bayes_lac.errors import BayesLacError

    if args.priors:
        raise BayesLacError(
            "--priors sets the 0.2 model's priors (add --model default to fit it); the latent model's are "
            "models/latent_priors.toml (bayes_lac.model.latent.LATENT_PRIORS), not yet a choice of the command line"
        )
    if args.max_treedepth is not None:
        raise BayesLacError(
            "--max-treedepth applies to the 0.2 model's fits (add --model default to fit it), not the latent model's"
        )


def _fit_latent(args) -> int:
    """``bayes-lac fit --model latent``: the latent-state model (by default on every authority)."""
    from bayes_lac import load_panel
    from bayes_lac.model.results import run_info

    _check_latent_settings(args)
    prepare_outputs({"--out": args.out}, {"--panel": args.panel})
    panel = load_panel(args.panel) if args.panel else load_panel()
    run = latent_run(args, panel)
    note = " (decompose, forecast, costs and report read it)"
    return _save_fitted(run, args.out, run_info(run, allow_latent=True).diagnostics, note)


def latent_run(args, panel):
    """Fit the latent-state model with a command's settings (``--la``, ``--neighbours``, default
    every authority, ``--until``, ``--draws``, ``--tune``, ``--chains``, ``--seed``, ``--sampler``)."""
    from bayes_lac.model import latent_fit as LF
    from bayes_lac.model.data import prepare_data

    neighbours = args.neighbours or "all"
    data = prepare_data(
        panel, args.la, neighbours=neighbours, until=args.until, source=str(args.panel or "bundled panel")
    )
    print(
        f"Fitting the latent-state model: {len(data.la)} authorities ({data.comparison}), "
        f"{int(data.year[0])}-{int(data.year[-1])}."
    )
    _print_notices(data.imputations)
    run = LF.LatentFitter(sampler=args.sampler or "nutpie").fit(
        data,
        draws=args.draws,
        tune=LF.DEFAULT_TUNE if args.tune is None else args.tune,
        chains=LF.DEFAULT_CHAINS if args.chains is None else args.chains,
        seed=0 if args.seed is None else args.seed,
        progressbar=True,
    )
    return run


def forecast_command(args) -> int:
    """``bayes-lac forecast``: write predictive-count summaries per measure, year and scenario."""
    from bayes_lac.analysis.forecast import forecast, forecast_table, load_checked_run
    from bayes_lac.summaries import format_percent

    prepare_outputs({"--out": args.out}, {"the run file": args.run, "--population": args.population})
    run = load_checked_run(args.run, allow_unconverged=args.allow_unconverged, allow_latent=True)
    fc = forecast(
        run,
        la=args.la,
        horizon=args.horizon,
        scenarios=args.scenario,
        population=args.population,
        uasc_rate=args.uasc_rate,
        uasc_path=args.uasc_path,
        seed=args.seed,
        start=args.start,
        tails=args.tails,
    )
    table = forecast_table(fc, ci_prob=args.ci_prob)
    write_csv(table, args.out)
    print(
        f"Forecast for {fc.la_name} ({fc.la_code}) from {fc.base_year}, {fc.horizon} years, "
        f"scenarios: {', '.join(fc.scenario_names)}"
    )
    if not fc.converged:
        print("WARNING: this run did not pass its convergence diagnostics; treat the numbers with caution.")
    print("Assumptions:")
    for a in fc.assumptions:
        print(f"  - {a}")
    print(f"Wrote {len(table)} rows (counts, {format_percent(args.ci_prob)} intervals) to {args.out}")
    return 0


def intervention_command(args) -> int:
    """``bayes-lac intervention FILE``: write the summary table (CSV) and print the sentence."""
    from bayes_lac.analysis.interventions import (
        evaluate_intervention,
        intervention_finding,
        intervention_table,
        load_intervention,
    )
    from bayes_lac.errors import InputFileError, UsageError

    if args.flows_run and args.draws is not None:
        raise UsageError("--draws: with --flows-run the draws are the flows run's; leave out --draws")
    if args.draws is None:
        args.draws = 4000
    if not args.no_uncertainty and args.draws < 2:
        raise InputFileError(f"--draws: expected at least 2 to give an interval, got {args.draws}")
    out = Path(args.out)
    prepare_outputs(
        {"--out": out},
        {
            "the intervention file": args.file,
            "--flows-run": args.flows_run,
            "--panel": args.panel,
            "--deflator": args.deflator,
        },
    )
    spec = load_intervention(args.file)
    if not args.flows_run and (args.horizon or args.allow_unconverged):
        raise UsageError("--horizon and --allow-unconverged go with --flows-run")
    if not args.la and (args.price_year or args.panel or args.deflator):
        raise UsageError("--price-year, --panel and --deflator go with --la")
    run = None
    if args.flows_run:
        if args.no_uncertainty or args.scenario != "central":
            raise UsageError("--flows-run: the flows give draws; leave out --no-uncertainty and --scenario")
        run = _checked_flows_run(args, "intervention", args.flows_run)
    spec = _priced_today(spec, args, run)
    if run is not None:
        from bayes_lac.analysis.interventions import evaluate_through_flows

        result = evaluate_through_flows(spec, run, la=args.la, horizon=args.horizon or 10, seed=args.seed)
    else:
        result = evaluate_intervention(
            spec,
            draws=args.draws,
            seed=args.seed,
            uncertainty=not args.no_uncertainty,
            scenario=args.scenario,
        )
    table = intervention_table(result, ci_prob=args.ci_prob)
    write_csv(table, out)
    finding = intervention_finding(result, ci_prob=args.ci_prob)
    print(finding.sentence)
    for caveat in finding.caveats:
        print(f"  - {caveat}")
    if not args.la:
        print(
            f"Priced with the file's own figures, in {spec.prices}; give --la CODE to price it in an authority's "
            "latest money and unit cost of care."
        )
    print(f"Wrote {out}")
    return 0


def _priced_today(spec, args, flows_run):
    """`spec` in the cash prices and unit cost of care of ``--la``'s analysis year (``--price-year``,
    default its latest year with a unit cost in the panel, up to the flows run's last year); `spec`
    unchanged without ``--la``. A file without ``price_year`` is refused with ``--la`` (there is no
    year to move its figures from)."""
    from bayes_lac.analysis.costs import latest_unit_cost_year
    from bayes_lac.analysis.interventions import rebase_intervention
    from bayes_lac.data.panel import load_panel
    from bayes_lac.data.prices import price_index

    if not args.la:
        return spec
    panel = load_panel(args.panel) if args.panel else load_panel()
    until = None
    if flows_run is not None:
        from bayes_lac.model.flows import flows_run_info

        until = flows_run_info(flows_run).last_year
    year = args.price_year or latest_unit_cost_year(panel, args.la, until=until)
    return rebase_intervention(spec, panel, args.la, year, prices=price_index(args.deflator))


def _report_name(panel: pd.DataFrame, la: str) -> str:
    """File-name stem of the default report: the authority's latest name in the panel, slugified
    (``Thurrock`` -> ``thurrock``), or its code if the panel does not hold it."""
    rows = panel[panel["la_code"] == la]
    if rows.empty:
        return file_slug(la)
    name = rows.sort_values("year")["la_name"].iloc[-1]
    return file_slug(str(name), fallback=la)


def _report_all_command(args, start: float) -> int:
    """`bayes-lac report --all --run RUN --out DIR`: every authority's report and the index."""
    import time

    from bayes_lac.errors import BayesLacError
    from bayes_lac.report.batch import report_all

    if not args.run:
        raise BayesLacError("--all reports from a saved national run: give it with --run RUN")
    out = Path(args.out) if args.out is not None else Path("reports") / "all"
    if out.suffix.lower() in (".html", ".htm"):
        raise BayesLacError(f"--out {out}: with --all, --out is a folder for the reports and index.html")
    index, rows = report_all(args.run, out, panel_path=args.panel, xlsx=args.xlsx, with_rows=True)
    missing = [r for r in rows if r.problem]
    print(f"Wrote {index} and {len(rows) - len(missing)} reports beside it in {time.perf_counter() - start:.0f} s.")
    if missing:
        # the batch went on; its exit status says it is incomplete
        for r in missing:
            print(f"bayes-lac report: no report for {r.la_name} ({r.la_code}): {r.problem}", file=sys.stderr)
        return 1
    return 0


def report_command(args) -> int:
    """`bayes-lac report`: fit (or load) a run and write the HTML report, optionally XLSX and PDF.

    Before any work: the output paths are checked (and folders made), the run file a fit would
    write (``<out stem>_run.nc``) is refused if it exists unless ``--overwrite``, and with
    ``--pdf`` a PDF engine is looked for. The HTML and the workbook are written together (both
    or neither), then the PDF; without a PDF engine the command says so in one line and still
    succeeds.
    """
    import time

    from bayes_lac.data.panel import load_panel
    from bayes_lac.errors import BayesLacError, OutputFileError, UnconvergedFitError
    from bayes_lac.report.board import (
        PdfEngineError,
        _convergence,
        _fit_for_report,
        build_report,
        find_chromium,
        flows_convergence,
        pdf_engine_help,
        write_pdf,
        write_report_files,
    )

    start = time.perf_counter()
    if args.run or getattr(args, "all", False):
        fit_settings = ("model", "neighbours", "draws", "tune", "chains", "seed", "sampler", "max_treedepth")
        given = [
            f"--{k.replace('_', '-')}" for k in (*fit_settings, "priors", "until") if getattr(args, k, None) is not None
        ]
        if given:
            what = f"--run {args.run} gives a fitted run" if args.run else "--all reports from a saved run"
            raise BayesLacError(
                f"{', '.join(given)} set(s) how to fit the model, but {what}; drop --run to fit now, "
                "or drop the fit settings"
            )
    if getattr(args, "all", False):
        return _report_all_command(args, start)
    if args.out is not None and Path(args.out).suffix.lower() not in (".html", ".htm"):
        raise BayesLacError(f"--out {args.out}: expected an HTML file name ending in .html")
    latent = getattr(args, "model", None) in (None, "latent")
    if latent and not args.run:
        _check_latent_settings(args)
    panel = load_panel(args.panel) if args.panel else load_panel()
    out = Path(args.out) if args.out is not None else Path("reports") / f"{_report_name(panel, args.la)}.html"
    xlsx_out = out.with_suffix(".xlsx") if args.xlsx else None
    engine = find_chromium() if args.pdf else None
    pdf_out = out.with_suffix(".pdf") if engine else None
    run_out = None if args.run else out.with_name(f"{out.stem}_run.nc")
    prepare_outputs(
        {
            "--out": out,
            "the workbook (named from --out)": xlsx_out,
            "the PDF (named from --out)": pdf_out,
            "the run file (named from --out)": run_out,
        },
        {
            "--panel": args.panel,
            "--run": args.run,
            "--flows-run": getattr(args, "flows_run", None),
            "--priors": _prior_file(args.priors),
        },
    )
    # before any fitting: the report's forecast and cost sections need these
    from bayes_lac.data.panel import COST_COLUMNS, require_columns, require_england

    require_england(panel, "the board report (its forecast shows converge-england)")
    require_columns(panel, COST_COLUMNS, for_output="the board report (its cost section)", any_of=True)
    _check_priors(args.priors)
    if run_out is not None and run_out.exists() and not args.overwrite:
        raise OutputFileError(
            f"{run_out} exists (a saved run); to report on it: --run {run_out}; to fit again and "
            "replace it: --overwrite; or choose another --out"
        )
    flows_run = None
    if getattr(args, "flows_run", None):
        from bayes_lac.model.flows import load_flows_run

        # read before any fitting: a flows run that is missing, lacks the authority or failed
        # its checks (without --allow-unconverged) fails first
        flows_run = load_flows_run(args.flows_run)
        try:
            flows_convergence(flows_run, args.la, args.allow_unconverged)
        except UnconvergedFitError as err:
            raise UnconvergedFitError(f"{args.flows_run}: {err}") from None
    if args.run:
        from bayes_lac.model.results import load_run

        results = load_run(args.run, allow_latent=True)
        run_path = Path(args.run)
    else:
        run_path = run_out
        replaced = run_out.exists()
        results = _fit_for_report(args, panel, run_path, fit_latent=latent_run if latent else None)
        if replaced:
            print(f"Replaced the earlier run in {run_path} (--overwrite)")
    try:
        _convergence(results, args.allow_unconverged)
    except UnconvergedFitError as err:
        raise UnconvergedFitError(
            f"{err} No report was written. The run is saved in {run_path}; to report on it anyway, "
            f"marked as unconverged on every page: bayes-lac report --run {run_path} --allow-unconverged "
            f"--out {out}"
        ) from None
    report = build_report(
        results,
        la=args.la,
        panel=panel,
        panel_path=args.panel,
        allow_unconverged=args.allow_unconverged,
        sensitivity_refits=getattr(args, "sensitivity_refits", False),
        run_path=str(run_path),
        progress=True,
        highlight=[h.strip() for h in (getattr(args, "highlight", None) or "").split(",") if h.strip()],
        budget=getattr(args, "budget", None),
        flows_run=flows_run,
    )
    # HTML and workbook first, together, so that a failed PDF never costs them.
    written = write_report_files(report, out, xlsx_out)
    if run_out is not None:
        written.append(run_out)
    if not report.converged:
        print(
            "WARNING: the run failed its convergence diagnostics; the report says so on every page:\n"
            + "\n".join(f"  - {p}" for p in report.problems),
            file=sys.stderr,
        )
    for path in written:
        print(f"Wrote {path}")
    what = "the HTML and the workbook were" if xlsx_out else "the HTML was"
    stale = out.with_suffix(".pdf")
    older = f" (the older {stale} is from an earlier report)" if stale.exists() else ""
    if args.pdf and engine is None:
        print(f"PDF not written: {pdf_engine_help()}; {what} written{older}.")
    elif args.pdf:
        try:
            write_pdf(out, pdf_out, engine=engine)
            print(f"Wrote {pdf_out}")
        except PdfEngineError as err:
            print(
                f"bayes-lac report: error: the PDF was not written ({' '.join(str(err).split())}); "
                f"{what} written{older}.",
                file=sys.stderr,
            )
            return 1
    print(f"Report done in {time.perf_counter() - start:.0f} s.")
    return 0


def sensitivity_command(args) -> int:
    """``bayes-lac sensitivity RUN [--prior-sets ...] [--refits ...] [--panel CSV] [--workers N]
    [--scheduler ADDR] --out CSV``.

    Writes the comparison of the refits (a 0.2 run's prior sets; a latent run's prior sets and
    structural choices, `bayes_lac.studies.latent_sensitivity`) to ``--out``, or the power-scaling
    table without refits; with refits the power-scaling table goes beside it as
    ``<out>_power_scaling.csv``.
    """
    from bayes_lac.model.results import load_run, run_info
    from bayes_lac.studies.sensitivity import _bundled_unit_costs, sensitivity

    prior_sets = [p.strip() for p in args.prior_sets.split(",") if p.strip()]
    out = Path(args.out)
    refits = bool(prior_sets or (getattr(args, "refits", "") or "").strip())
    power_out = out.with_name(out.stem + "_power_scaling.csv") if refits else None
    # a shipped name of either model's sets is no file to check (the run says which model it is)
    prior_files = {f"the prior file {p}": p for p in prior_sets if _prior_file(p) and _prior_file(p, latent=True)}
    prepare_outputs(
        {"--out": out, "the power-scaling table (named from --out)": power_out},
        {"the run file": args.run, "--panel": getattr(args, "panel", None), **prior_files},
    )
    results = load_run(args.run, allow_latent=True)
    if run_info(results, allow_latent=True).latent:
        return _latent_sensitivity(args, results, prior_sets, out)
    if getattr(args, "refits", "") or getattr(args, "panel", None):
        from bayes_lac.errors import UsageError

        raise UsageError(f"--refits and --panel are for a latent-state run; {args.run} is a run of the 0.2 model")
    unit_costs, note = (None, "")
    if prior_sets:
        unit_costs, note = _bundled_unit_costs(results)
    result = sensitivity(
        results, prior_sets=prior_sets, workers=args.workers, scheduler=args.scheduler, unit_costs=unit_costs
    )
    if result.comparison is not None:
        power_out = power_out or out.with_name(out.stem + "_power_scaling.csv")
        write_csv(result.comparison, out)
        write_csv(result.power, power_out)
        print(f"Wrote {out} and {power_out}.")
    else:
        write_csv(result.power, out)
        print(f"Wrote {out}.")
    for finding in result.findings:
        print(str(finding))
    if note:
        print(note)
    if result.fit_seconds:
        times = ", ".join(f"{k} {v:.0f} s" for k, v in result.fit_seconds.items())
        print(f"Refit times: {times}; wall time {result.wall_seconds:.0f} s.")
    return 0


def fit_flows_command(args) -> int:
    """``bayes-lac fit-flows``: fit the flows model of an authority and its comparison set."""
    from bayes_lac import load_panel
    from bayes_lac.model import flows

    prepare_outputs({"--out": args.out}, {"--panel": args.panel})
    panel = load_panel(args.panel) if args.panel else load_panel()
    model = flows.FlowsModel(args.la, neighbours=args.neighbours)
    data = model.prepare(panel)
    print(
        f"Fitting the flows of {args.la} with {len(data.la) - 1} comparison authorities ({data.comparison}), "
        f"{int(data.year[0])}-{int(data.year[-1])}: {int(data.entry_mask().sum())} entry counts, "
        f"{int(data.exit_mask().sum())} exit counts, {int(data.route_mask().sum())} route counts."
    )
    for notice in data.notices:
        print(f"  - {notice}")
    run = model.fit(
        panel,
        draws=args.draws or flows.DEFAULT_DRAWS,
        tune=args.tune or flows.DEFAULT_TUNE,
        chains=args.chains or flows.DEFAULT_CHAINS,
        seed=flows.DEFAULT_SEED if args.seed is None else args.seed,
        sampler=args.sampler or flows.DEFAULT_SAMPLER,
        max_treedepth=flows.DEFAULT_MAX_TREEDEPTH if args.max_treedepth is None else args.max_treedepth,
        progressbar=True,
        source=str(args.panel or "bundled panel"),
    )
    info = flows.flows_run_info(run)
    print(
        f"Diagnostics: max R-hat {info.max_rhat:.3f} (need <= {flows.MAX_RHAT}), min bulk ESS "
        f"{info.min_ess_bulk:.0f} (need >= {flows.MIN_ESS}), {info.divergences} divergences."
    )
    flows.save_flows_run(run, args.out)
    print(f"Saved the flows run to {args.out}")
    if not info.converged:
        print(
            "bayes-lac fit-flows: warning: the run failed its convergence diagnostics; "
            "`bayes-lac flows` refuses it unless given --allow-unconverged.",
            file=sys.stderr,
        )
    return 0


def flows_command(args) -> int:
    """``bayes-lac flows RUN --la CODE --from Y0 --to Y1 --out CSV``."""
    from bayes_lac.analysis.flows import flows_split

    prepare_outputs({"--out": args.out}, {"the run file": args.run})
    run = _checked_flows_run(args, "flows")
    split = flows_split(run, la=args.la, from_year=args.from_year, to_year=args.to_year, ci_prob=args.ci_prob)
    write_csv(split.table, args.out)
    _say(split.findings, args.out, notes=split.caveats)
    return 0


def _say(findings, out, notes=(), assumptions=()) -> None:
    """Print each finding (title, then its sentence), the notes and assumptions, and the file written."""
    for finding in findings:
        print(f"{finding.title}\n  {finding.sentence}\n")
    for note in notes:
        print(f"Note: {note}")
    for assumption in assumptions:
        print(f"Assumption: {assumption}")
    print(f"Wrote {out}")


def _checked_flows_run(args, command: str, path=None):
    """The flows run of `path` (default ``args.run``), refused when unconverged unless
    --allow-unconverged."""
    from bayes_lac.errors import UnconvergedFitError
    from bayes_lac.model.flows import flows_run_info, load_flows_run

    path = args.run if path is None else path
    run = load_flows_run(path)
    info = flows_run_info(run)
    if not info.converged:
        if not args.allow_unconverged:
            raise UnconvergedFitError(f"{path}: {info.problem}; refit with more draws, or pass --allow-unconverged")
        print(
            f"bayes-lac {command}: warning: the run failed its convergence diagnostics; the numbers are "
            "provisional (--allow-unconverged).",
            file=sys.stderr,
        )
    return run


def flows_forecast_command(args) -> int:
    """``bayes-lac flows-forecast RUN [--la CODE] [--horizon 10] [--scenario ...] --out CSV``."""
    from bayes_lac.analysis.flows_forecast import FlowScenario, flows_forecast

    prepare_outputs({"--out": args.out}, {"the run file": args.run})
    scenarios = [FlowScenario.parse(s) for s in args.scenario.split(",") if s.strip()]
    run = _checked_flows_run(args, "flows-forecast")
    fc = flows_forecast(
        run, la=args.la, horizon=args.horizon, scenarios=scenarios, ci_prob=args.ci_prob, seed=args.seed
    )
    write_csv(fc.table, args.out)
    _say(fc.findings, args.out, assumptions=fc.assumptions)
    return 0


def flows_reconcile_command(args) -> int:
    """``bayes-lac flows-reconcile --la CODE --out CSV``: stock change against started - ceased."""
    from bayes_lac import load_panel
    from bayes_lac.analysis.flows import reconciliation_finding, reconciliation_table
    from bayes_lac.config import ENGLAND_CODE
    from bayes_lac.model.data import comparison_set

    prepare_outputs({"--out": args.out}, {"--panel": args.panel})
    panel = load_panel(args.panel) if args.panel else load_panel()
    codes, _, notices = comparison_set(panel, args.la, args.neighbours)
    if ENGLAND_CODE in set(panel["la_code"].astype(str)):
        codes = [*codes, ENGLAND_CODE]
    table = reconciliation_table(panel, codes)
    write_csv(table, args.out)
    for notice in notices:
        print(f"Note: {notice}")
    print(reconciliation_finding(table, args.la).sentence)
    print(f"Wrote {args.out}")
    return 0
