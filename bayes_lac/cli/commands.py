"""The work behind each ``bayes-lac`` subcommand: read inputs, call the analyses, write files, print.

Analyses return results and print nothing; everything a command says to the user is said here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def backtest_command(args) -> int:
    """``bayes-lac backtest [--panel CSV] --origins 2014-2022 --horizons 1-5 ... --out CSV``.

    Writes the per-forecast rows to ``--out`` and the summary by method, measure and horizon
    to ``<out>_summary.csv``; prints the summary, the CRPS ratios, the targets and the wall time.
    """
    from bayes_lac.data.panel import load_panel
    from bayes_lac.model.fit import DEFAULT_CHAINS, DEFAULT_DRAWS, DEFAULT_TUNE
    from bayes_lac.studies.backtest import (
        backtest,
        crps_ratios,
        parse_years,
        summarise_backtest,
        target_finding,
    )

    panel = load_panel(args.panel)
    origins = parse_years(args.origins, "origins")
    horizons = parse_years(args.horizons, "horizons")
    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    las = args.las if args.las == "all" else [c.strip() for c in args.las.split(",") if c.strip()]
    settings = {
        "draws": DEFAULT_DRAWS if args.draws is None else args.draws,
        "tune": DEFAULT_TUNE if args.tune is None else args.tune,
        "chains": DEFAULT_CHAINS if args.chains is None else args.chains,
    }
    result = backtest(
        panel, origins, horizons, measures, las, workers=args.workers, scheduler=args.scheduler, **settings
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out, index=False)
    summary = summarise_backtest(result.table)
    stem = out.name.removesuffix(".gz").removesuffix(".csv")
    summary_out = out.with_name(stem + "_summary.csv")
    summary.to_csv(summary_out, index=False)
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        print(summary.to_string(index=False))
        print()
        print(crps_ratios(result.table).to_string(index=False))
    print()
    for measure in result.measures:
        print(target_finding(result.table, measure).sentence)
    for note in result.notes:
        print(note)
    fits = ", ".join(f"{o}: {s:.0f} s" for o, s in result.fit_seconds.items())
    print(f"Fit time per origin ({result.workers}): {fits}.")
    print(f"Wall time: {result.wall_seconds:.0f} s ({result.wall_seconds / 60:.1f} min). Wrote {out} and {summary_out}.")
    return 0


def build_command(args) -> int:
    """``bayes-lac data build [--source DIR] [--out FILE]``."""
    from bayes_lac.config import BUNDLED_PANEL, DEFAULT_OFFICIAL_SOURCE
    from bayes_lac.data.neighbours import build_neighbour_table, write_neighbour_table
    from bayes_lac.data.official import (
        build_all,
        neighbours_path_for,
        summary_lines,
        write_panel,
    )

    source = Path(args.source) if getattr(args, "source", None) else DEFAULT_OFFICIAL_SOURCE
    out = Path(args.out) if getattr(args, "out", None) else BUNDLED_PANEL
    panel, areas = build_all(source, progress=True)
    written = write_panel(panel, out)
    table = build_neighbour_table(source, areas)
    neighbours_out = neighbours_path_for(getattr(args, "out", None))
    write_neighbour_table(table, neighbours_out)
    print(f"built panel from {source}")
    for line in summary_lines(panel):
        print(f"  {line}")
    print(f"  written: {written}")
    print(f"  statistical neighbours: {len(table)} rows ({table['la_code'].nunique()} authorities, "
          f"models {', '.join(map(str, sorted(table['model'].unique())))}) written: {neighbours_out}")
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

    panel = load_panel(args.panel) if args.panel else load_panel()
    notices = list(panel.attrs.get("notices", []))
    for notice in notices[:5]:
        print(f"Panel: {notice}")
    if len(notices) > 5:
        print(f"Panel: ... and {len(notices) - 5} more notices (see `bayes-lac data check {args.panel}`)")
    neighbours = _neighbour_codes(args.la, args.neighbours)
    table = comparison_table(panel, args.la, neighbours)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{args.la}_comparison.csv"
    png_path = out / f"{args.la}_comparison.png"
    table.to_csv(csv_path, index=False)
    fig = plot_comparison(table)
    fig.savefig(png_path, dpi=150)
    import matplotlib.pyplot as plt

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
    """``bayes-lac costs``: annual cost per scenario and year, and the 3/5/10-year change table."""
    from bayes_lac.analysis.costs import (
        cost_change_table,
        cost_table,
        costs,
        financial_year,
        unit_cost_history,
    )
    from bayes_lac.analysis.forecast import forecast, load_checked_run
    from bayes_lac.data.panel import load_panel
    from bayes_lac.summaries import format_money, format_percent

    run = load_checked_run(args.run, allow_unconverged=args.allow_unconverged)
    fc = forecast(run, la=args.la, horizon=args.horizon, scenarios=args.scenario, seed=args.seed)
    panel = load_panel(args.panel)
    history = unit_cost_history(panel, fc.la_code)
    co = costs(fc, history, inflation=args.inflation, seed=args.seed, method=args.unit_cost_method)
    table = cost_table(co, ci_prob=args.ci_prob, prices="nominal")
    if args.budget is not None:
        cost = co.data["cost_nominal"]
        probs = []
        for s, y in zip(table["scenario"], table["year"]):
            if y == co.base_year:
                probs.append(float((co.data["base_cost"] > args.budget).mean()))
            else:
                probs.append(float((cost.sel(scenario=s, year=y) > args.budget).mean()))
        table["budget_gbp_per_year"] = args.budget
        table["prob_exceeds_budget"] = probs
    table.to_csv(args.out, index=False)

    print(f"Annual cost of children looked after, {co.la_name} ({co.la_code}), base year {financial_year(co.base_year)}")
    if not co.converged:
        print("WARNING: this run did not pass its convergence diagnostics; treat the numbers with caution.")
    horizons = [h for h in (3, 5, 10) if h <= fc.horizon]
    if horizons:
        change = cost_change_table(co, years_ahead=horizons, ci_prob=args.ci_prob)
        print(f"\nChange against {financial_year(co.base_year)} (£m a year, {co.prices_label('nominal')}, "
              f"median and {format_percent(args.ci_prob)} credible interval):")
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
        print(f"\nP(annual cost > {format_money(args.budget)}) is in column prob_exceeds_budget.")
    print("\nAssumptions:")
    for a in co.assumptions:
        print(f"  - {a}")
    print(f"\nWrote {len(table)} rows (£ per year, {co.prices_label('nominal')}) to {args.out}")
    return 0


def decompose_command(args) -> int:
    """``bayes-lac decompose RUN --la CODE --from YEAR --to YEAR --out CSV``."""
    from bayes_lac.analysis.decompose import decompose
    from bayes_lac.model.diagnostics import require_converged
    from bayes_lac.model.results import ANALYSIS_GROUPS, load_run

    results = load_run(args.run, groups=ANALYSIS_GROUPS)
    if not require_converged(results, allow_unconverged=args.allow_unconverged).converged:
        print(
            "bayes-lac decompose: warning: the run failed its convergence diagnostics; "
            "the numbers are provisional (--allow-unconverged).",
            file=sys.stderr,
        )
    decomposition = decompose(
        results,
        la=args.la,
        from_year=args.from_year,
        to_year=args.to_year,
        ci_prob=args.ci_prob,
        allow_unconverged=args.allow_unconverged,
    )
    decomposition.table.to_csv(args.out, index=False)
    for finding in decomposition.findings:
        print(f"{finding.title}\n  {finding.sentence}\n")
    for caveat in decomposition.caveats:
        print(f"Note: {caveat}")
    print(f"Wrote {args.out}")
    return 0


def fit_command(args) -> int:
    """``bayes-lac fit``: fit, print notices and diagnostics, save the run."""
    from bayes_lac import load_panel
    from bayes_lac.model.diagnostics import convergence_warning
    from bayes_lac.model.fit import (
        DEFAULT_CHAINS,
        DEFAULT_DRAWS,
        DEFAULT_SAMPLER,
        DEFAULT_SEED,
        DEFAULT_TUNE,
        LACModel,
    )
    from bayes_lac.model.results import run_info, save_run

    panel = load_panel(args.panel) if args.panel else load_panel()
    model = LACModel(args.la, neighbours=args.neighbours, until=args.until, priors=args.priors or "default")
    data = model.prepare(panel, source=str(args.panel or "bundled panel"))
    print(
        f"Fitting {args.la} with {len(data.la) - 1} comparison authorities ({data.comparison}), "
        f"{int(data.year[0])}-{int(data.year[-1])}, {len(data.observed_index()[0])} published counts."
    )
    if data.imputations:
        print("Notices (imputations and exclusions):")
        for line in data.imputations:
            print(f"  - {line}")
    run = model.fit(
        draws=DEFAULT_DRAWS if args.draws is None else args.draws,
        tune=DEFAULT_TUNE if args.tune is None else args.tune,
        chains=DEFAULT_CHAINS if args.chains is None else args.chains,
        seed=DEFAULT_SEED if args.seed is None else args.seed,
        sampler=getattr(args, "sampler", None) or DEFAULT_SAMPLER,
        progressbar=True,
    )
    diag = run_info(run).diagnostics
    print(diag.summary())
    save_run(run, args.out)
    print(f"Saved the run to {args.out}")
    if not diag.converged:
        print(convergence_warning(diag), file=sys.stderr)
    return 0


def forecast_command(args) -> int:
    """``bayes-lac forecast``: write predictive-count summaries per measure, year and scenario."""
    from bayes_lac.analysis.forecast import forecast, forecast_table, load_checked_run
    from bayes_lac.summaries import format_percent

    run = load_checked_run(args.run, allow_unconverged=args.allow_unconverged)
    fc = forecast(
        run,
        la=args.la,
        horizon=args.horizon,
        scenarios=args.scenario,
        population=args.population,
        uasc_rate=args.uasc_rate,
        seed=args.seed,
    )
    table = forecast_table(fc, ci_prob=args.ci_prob)
    table.to_csv(args.out, index=False)
    print(f"Forecast for {fc.la_name} ({fc.la_code}) from {fc.base_year}, {fc.horizon} years, "
          f"scenarios: {', '.join(fc.scenario_names)}")
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
    from bayes_lac.config import interval_bounds
    from bayes_lac.errors import InputFileError

    try:
        interval_bounds(args.ci_prob)
    except ValueError as err:
        raise InputFileError(f"--ci-prob: {err}") from err
    if not args.no_uncertainty and args.draws < 2:
        raise InputFileError(f"--draws: expected at least 2, got {args.draws}")
    spec = load_intervention(args.file)
    result = evaluate_intervention(
        spec,
        draws=args.draws,
        seed=args.seed,
        uncertainty=not args.no_uncertainty,
        scenario=args.scenario,
    )
    table = intervention_table(result, ci_prob=args.ci_prob)
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True)
    table.to_csv(out, index=False)
    finding = intervention_finding(result, ci_prob=args.ci_prob)
    print(finding.sentence)
    for caveat in finding.caveats:
        print(f"  - {caveat}")
    print(f"Wrote {out}")
    return 0


def report_command(args) -> int:
    """`bayes-lac report`: fit (or load) a run and write the HTML report, optionally PDF/XLSX."""
    import time

    from bayes_lac.data.panel import load_panel
    from bayes_lac.errors import BayesLacError, UnconvergedFitError
    from bayes_lac.report.board import (
        _convergence,
        _fit_for_report,
        build_report,
        write_html,
        write_pdf,
        write_xlsx,
    )

    start = time.perf_counter()
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise BayesLacError(f"--out {out}: expected an HTML file name ending in .html")
    panel = load_panel(args.panel) if args.panel else load_panel()
    if args.run:
        given = [f"--{k}" for k in ("draws", "tune", "chains", "seed", "priors", "until") if getattr(args, k, None) is not None]
        if given:
            raise BayesLacError(
                f"{', '.join(given)} set(s) how to fit the model, but --run {args.run} gives a fitted run; "
                "drop --run to fit now, or drop the fit settings"
            )
        from bayes_lac.model.results import load_run

        results = load_run(args.run)
        run_path = Path(args.run)
    else:
        run_path = out.with_name(f"{out.stem}_run.nc")
        results = _fit_for_report(args, panel, run_path)
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
    )
    written = [write_html(report, out)]
    if args.pdf:
        written.append(write_pdf(out))
    if args.xlsx:
        written.append(write_xlsx(report, out.with_suffix(".xlsx")))
    if not report.converged:
        print(
            "WARNING: the run failed its convergence diagnostics; the report says so on every page:\n"
            + "\n".join(f"  - {p}" for p in report.problems),
            file=sys.stderr,
        )
    for path in written:
        print(f"Wrote {path}")
    print(f"Report done in {time.perf_counter() - start:.0f} s.")
    return 0


def sensitivity_command(args) -> int:
    """``bayes-lac sensitivity RUN [--prior-sets ...] [--workers N] [--scheduler ADDR] --out CSV``.

    Writes the prior-set comparison to ``--out`` (with refits) or the power-scaling table
    (without); with refits the power-scaling table goes beside it as ``<out>_power_scaling.csv``.
    """
    from bayes_lac.model.results import load_run
    from bayes_lac.studies.sensitivity import _bundled_unit_costs, sensitivity

    results = load_run(args.run)
    prior_sets = [p.strip() for p in args.prior_sets.split(",") if p.strip()]
    unit_costs, note = (None, "")
    if prior_sets:
        unit_costs, note = _bundled_unit_costs(results)
    result = sensitivity(results, prior_sets=prior_sets, workers=args.workers, scheduler=args.scheduler, unit_costs=unit_costs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if result.comparison is not None:
        result.comparison.to_csv(out, index=False)
        power_out = out.with_name(out.stem + "_power_scaling.csv")
        result.power.to_csv(power_out, index=False)
        print(f"Wrote {out} and {power_out}.")
    else:
        result.power.to_csv(out, index=False)
        print(f"Wrote {out}.")
    for finding in result.findings:
        print(str(finding))
    if note:
        print(note)
    if result.fit_seconds:
        times = ", ".join(f"{k} {v:.0f} s" for k, v in result.fit_seconds.items())
        print(f"Refit times: {times}; wall time {result.wall_seconds:.0f} s.")
    return 0


