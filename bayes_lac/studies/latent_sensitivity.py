"""Refits of a latent-state run under other beliefs: does what the board reads depend on them?

Power-scaling (`bayes_lac.studies.sensitivity.latent_power_scaling`) asks how far the numbers
move when the priors are made slightly stronger or weaker. This study asks the larger question:
the run's model is fitted again with one choice changed at a time, and the conclusions a board
reads (`bayes_lac.studies.sensitivity.CONCLUSIONS`: the rates and their recent trend, the part
of the change in children looked after not explained by demand, the 5- and 10-year forecasts
and their costs) are set beside the run's own (`compare_conclusions`, the same rule as the 0.2 model's
prior-set refits: a conclusion changes when its median moves by more than a quarter of its
interval's width, or its interval becomes 1.5 times as wide or narrow).

The choices (`VARIANTS`), each a different belief, not one rescaling of every prior:

``priors``
    named prior sets in ``models/latent_prior_sets/`` (or a user's TOML file of entries that
    replace the default's): change is national (authorities keep their place), change is local
    and persists;
``deprivation``
    deprivation drives nothing (both effects near 0), or no literature prior (the
    within-authority effect on looked-after children without Bennett et al. 2022's estimate);
``comparison``
    the set of authorities fitted together: every English authority, or the target and its DfE
    statistical neighbours (2021 or 2025 model);
``trend``
    no local trend for any measure (a wandering level only), or a local trend for every measure;
``national``
    a national path whose yearly steps carry over (damped) rather than a drift;
``uasc``
    future UASC on a stochastic path, or at the National Transfer Scheme threshold (0.1 % of
    the child population): the forecast's assumption only, no refit.

Each refit uses the run's data (or, for another comparison set, the same panel's authorities:
the panel must be the one the run was fitted on), years and sampler settings (a refit on a
comparison set of another size takes that size's default draws if the run took its own);
a refit that fails its convergence check is said to, and its numbers are provisional. A
variant that cannot be computed (no statistical neighbours for the authority, too few UASC
for a stochastic path) is listed as not compared, with the reason; a bad prior file or the
wrong panel stops the study before any fit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from bayes_lac.analysis.forecast import NTS_SHARE
from bayes_lac.config import LATENT_PRIOR_SETS_DIR
from bayes_lac.errors import BayesLacError, InputFileError, UsageError
from bayes_lac.model.results import run_info
from bayes_lac.studies.sensitivity import (
    _FORMATTERS,
    CHANGE_SHARE,
    FORECAST_HORIZONS,
    WIDTH_CHANGE,
    _conclusion_label,
    compare_conclusions,
    conclusions,
)
from bayes_lac.summaries import Finding, format_count, format_percent

#: Label of the run itself in the comparison.
AS_FITTED = "as fitted"
_SAME = object()


@dataclass(frozen=True)
class Variant:
    """One changed choice. `prior_set` names a file of `LATENT_PRIOR_SETS_DIR` (or is a path);
    `comparison` a comparison set (`bayes_lac.model.data.prepare_data`'s ``neighbours``);
    `trend_measures` the measures with a local trend (None: every one); `national` the national
    path's design; `uasc_path` and `uasc_rate` the forecast's future UASC. What is not given is
    the run's own."""

    key: str
    kind: str
    belief: str
    prior_set: str | None = None
    comparison: str | None = None
    trend_measures: object = _SAME
    national: str | None = None
    uasc_path: str = "hold"
    uasc_rate: float | None = None

    @property
    def refits(self) -> bool:
        """Whether the model is fitted again (the UASC variants only change the forecast)."""
        return any(
            (self.prior_set is not None, self.comparison is not None, self.trend_measures is not _SAME, self.national)
        )


#: The shipped variants, by key.
VARIANTS: dict[str, Variant] = {
    v.key: v
    for v in (
        Variant(
            "national-change",
            "priors",
            "change is national: authorities keep their place, their own trends are small and brief",
            prior_set="national",
        ),
        Variant(
            "local-change",
            "priors",
            "change is local: an authority's own trend is large and lasts, the national path moves little",
            prior_set="local",
        ),
        Variant(
            "no-deprivation",
            "deprivation",
            "deprivation drives nothing: both its effects held near 0 for every measure",
            prior_set="no-deprivation",
        ),
        Variant(
            "vague-deprivation",
            "deprivation",
            "no literature prior: the within-authority effect on children looked after centred on 0, wide",
            prior_set="vague-deprivation",
        ),
        Variant("comparison-all", "comparison", "fitted with every English authority", comparison="all"),
        Variant(
            "comparison-2021", "comparison", "fitted with its DfE statistical neighbours (2021)", comparison="2021"
        ),
        Variant(
            "comparison-2025", "comparison", "fitted with its DfE statistical neighbours (2025)", comparison="2025"
        ),
        Variant(
            "no-trend",
            "trend",
            "no local trend: each authority's level wanders, nothing carries it on",
            trend_measures=(),
        ),
        Variant("trend-all", "trend", "a local trend for every measure", trend_measures=None),
        Variant(
            "national-damped", "national", "the national path's yearly steps carry over (damped)", national="damped"
        ),
        Variant(
            "uasc-stochastic",
            "uasc",
            "future UASC on a stochastic path around the last count, no refit",
            uasc_path="stochastic",
        ),
        Variant(
            "uasc-nts",
            "uasc",
            f"future UASC at the National Transfer Scheme threshold, {NTS_SHARE:.1%} of the child population, no refit",
            uasc_rate=NTS_SHARE,
        ),
    )
}


def prior_set_file(name_or_path: str) -> Path:
    """The file of a latent prior set: a shipped name (`LATENT_PRIOR_SETS_DIR`) or a TOML path."""
    shipped = LATENT_PRIOR_SETS_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    path = Path(name_or_path)
    if path.is_file() and path.suffix.lower() == ".toml":
        return path
    names = ", ".join(sorted(p.stem for p in LATENT_PRIOR_SETS_DIR.glob("*.toml")))
    what = "a .toml file is expected" if path.is_file() else "no such file"
    raise InputFileError(f"latent prior set {name_or_path!r}: not a shipped set ({names}), and {what}")


def load_prior_set(name_or_path: str) -> dict:
    """The priors a latent prior set replaces (`bayes_lac.model.latent.load_latent_priors` of its
    file), checked against the default file: each entry must be one of the default's, of the
    same family. An `InputFileError` names the file and the entry."""
    import tomllib

    from bayes_lac.model.latent import LATENT_PRIORS_FILE, load_latent_priors

    path = prior_set_file(name_or_path)
    priors = load_latent_priors(path)
    defaults = tomllib.loads(LATENT_PRIORS_FILE.read_text(encoding="utf-8"))
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    for name, table in raw.items():
        if name not in defaults:
            raise InputFileError(
                f"{path} [{name}]: not a prior of the latent model; its priors are {', '.join(defaults)} "
                f"({LATENT_PRIORS_FILE.name})"
            )
        if table["family"] != defaults[name]["family"]:
            raise InputFileError(
                f"{path} [{name}]: family {table['family']!r}, but the model's {name} has a "
                f"{defaults[name]['family']} prior"
            )
    return priors


def prior_set_variant(name_or_path: str) -> Variant:
    """The variant of a latent prior set (a shipped name or a user's TOML file)."""
    for v in VARIANTS.values():
        if v.prior_set == name_or_path:
            return v
    path = prior_set_file(name_or_path)
    return Variant(path.stem, "priors", f"the priors of {path}", prior_set=str(path))


def _own_choice(run: xr.DataTree, variant: Variant) -> bool:
    """Whether `variant` is what the run already is (nothing to compare)."""
    from bayes_lac.model.latent_fit import trend_measures_of

    info = run_info(run, allow_latent=True)
    if variant.comparison is not None:
        return info.comparison in (variant.comparison, f"neighbours-{variant.comparison}")
    if variant.trend_measures is not _SAME:
        wanted = info.measures if variant.trend_measures is None else tuple(variant.trend_measures)
        return set(wanted) & set(info.measures) == set(trend_measures_of(run))
    if variant.national is not None:
        return info.sampler.get("national", "drift") == variant.national
    return False


def _variants(variants: Sequence[str | Variant] | None) -> list[Variant]:
    """`variants` as `Variant` objects, each once; ``"all"`` stands for every one of `VARIANTS`."""
    out: dict[str, Variant] = {}
    for v in VARIANTS.values() if variants is None else variants:
        group = [v]
        if isinstance(v, str):
            if v == "all":
                group = list(VARIANTS.values())
            elif v in VARIANTS:
                group = [VARIANTS[v]]
            else:
                prior_sets = ", ".join(k for k, x in VARIANTS.items() if x.prior_set)
                raise UsageError(
                    f"unknown refit {v!r}; known: {', '.join(VARIANTS)} (or all); a prior set's name or file "
                    f"goes to --prior-sets (the shipped sets are the refits {prior_sets})"
                )
        for variant in group:
            if variant.key in out and out[variant.key] != variant:
                raise UsageError(f"two refits are both called {variant.key!r}; rename one of the prior files")
            out[variant.key] = variant
    return list(out.values())


def applicable(run: xr.DataTree, variants: Sequence[str | Variant] | None = None) -> list[Variant]:
    """The variants to compare for `run`: `variants` (keys, ``"all"``, `Variant` objects;
    default every one of `VARIANTS`), each once, less those that are the run's own choice (e.g.
    its own comparison set)."""
    return [v for v in _variants(variants) if not _own_choice(run, v)]


def refit_variant(
    run: xr.DataTree, variant: Variant, panel: pd.DataFrame | None = None, priors: dict | None = None
) -> xr.DataTree:
    """`run`'s model fitted again with `variant`'s choice (the run itself for a forecast-only
    variant). Another comparison set is drawn from `panel` (default the bundled panel), cut at
    the run's last year; `priors`, the variant's prior set already loaded (`load_prior_set`)."""
    if variant.refits and variant.comparison is not None:
        panel = run_panel(run, panel)
    return _refit(run, variant, panel, priors)


def _refit(run: xr.DataTree, variant: Variant, panel: pd.DataFrame | None, priors: dict | None) -> xr.DataTree:
    """`refit_variant` with `panel` already checked to be the run's (`run_panel`) when the
    variant needs it."""
    from bayes_lac.model import latent_fit as LF

    if not variant.refits:
        return run
    info = run_info(run, allow_latent=True)
    data = None
    if variant.comparison is not None:
        from bayes_lac.model.data import prepare_data

        data = prepare_data(
            panel,
            info.target_la,
            neighbours=variant.comparison,
            until=info.last_year,
            measures=info.measures,
            source="the panel of the comparison-set refit",
        )
    if priors is None and variant.prior_set:
        priors = load_prior_set(variant.prior_set)
    kwargs = {} if variant.trend_measures is _SAME else {"trend_measures": variant.trend_measures}
    return LF.refit(run, data=data, priors=priors, national=variant.national, **kwargs)


def run_panel(run: xr.DataTree, panel: pd.DataFrame | None = None) -> pd.DataFrame:
    """`panel` (default the bundled panel) if it is the one `run` was fitted on
    (`bayes_lac.model.results.fitted_on`), else a `UsageError` that says to pass that panel. A run
    that records no panel takes only a panel given explicitly."""
    from bayes_lac.data.panel import load_panel
    from bayes_lac.model.results import fitted_on

    info = run_info(run, allow_latent=True)
    which = "the bundled panel" if panel is None else "the panel given"
    given = panel
    panel = load_panel() if panel is None else panel
    same = fitted_on(run, panel)
    if same is None and given is None:
        raise UsageError(
            "a comparison-set refit takes its authorities from the panel the run was fitted on, and the run "
            "records no panel: pass it (--panel)"
        )
    if same is False:
        raise UsageError(
            f"a comparison-set refit takes its authorities from the panel the run was fitted on, and {which} is "
            f"not that panel (the run records {info.panel_name or 'another panel'}, SHA-256 "
            f"{info.panel_sha256[:12]}...): pass it (--panel)"
        )
    return panel


@dataclass(frozen=True)
class Refits:
    """Conclusions of a latent run beside refits under other beliefs.

    Attributes
    ----------
    comparison
        `bayes_lac.studies.sensitivity.compare_conclusions` of every variant against the run as
        fitted, its column ``prior_set`` named ``choice`` (the variant's key, `AS_FITTED` for the
        run), plus ``kind`` and ``belief``.
    finding
        Its sentence (`refits_finding`).
    variants
        The variants compared, in order.
    skipped
        Variants that could not be computed, by key: why (also a caveat of the finding).
    fit_seconds
        Wall time of each refit, by key.
    wall_seconds
        Wall time of the whole study.
    """

    comparison: pd.DataFrame = field(repr=False)
    finding: Finding
    variants: tuple[Variant, ...] = ()
    skipped: dict = field(default_factory=dict)
    fit_seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0


def latent_refits(
    run: xr.DataTree,
    variants: Sequence[str | Variant] | None = None,
    *,
    panel: pd.DataFrame | None = None,
    unit_costs=None,
    horizons: Sequence[int] = FORECAST_HORIZONS,
    seed: int = 0,
    progress: bool = True,
) -> Refits:
    """Refit a latent run under each of `variants` (`applicable`) and compare the conclusions.

    Parameters
    ----------
    run
        A latent-state run.
    variants
        Keys of `VARIANTS` or `Variant` objects (`prior_set_variant` for a prior file); default
        every shipped one that differs from the run's own choices.
    panel
        The panel the run was fitted on, for comparison-set refits (default the bundled panel).
    unit_costs
        Unit-cost history, number or fitted model (`bayes_lac.studies.sensitivity.conclusions`);
        None leaves costs out.
    horizons, seed
        Forecast horizons compared, and the seed of the predictive draws (the same for every variant).
    progress
        A progress bar over the refits.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    info = run_info(run, allow_latent=True)
    if not info.latent:
        raise UsageError("latent_refits compares refits of a latent-state run; this run is the 0.2 model's")
    asked = _variants(variants)
    chosen = applicable(run, asked)
    skipped = {}
    if variants is not None:
        skipped.update({v.key: "the run's own choice" for v in asked if v not in chosen})
    if not chosen:
        raise UsageError("no refit to compare: every choice asked for is the run's own")
    # input errors stop the study before any fit: a bad prior file, the wrong panel
    priors = {v.key: load_prior_set(v.prior_set) for v in chosen if v.prior_set}
    if any(v.comparison is not None for v in chosen):
        panel = run_panel(run, panel)

    def summarise(fitted, label, variant=None):
        table = conclusions(
            fitted,
            unit_costs=unit_costs,
            horizons=horizons,
            seed=seed,
            prior_set=label,
            uasc_path=variant.uasc_path if variant else "hold",
            uasc_rate=variant.uasc_rate if variant else None,
        )
        table["kind"] = variant.kind if variant else ""
        table["belief"] = variant.belief if variant else "the run as fitted"
        return table

    tables = [summarise(run, AS_FITTED)]
    seconds, done = {}, []
    for variant in tqdm(chosen, desc="refits", disable=not progress):
        t0 = time.perf_counter()
        try:
            # the panel was checked above, once for every comparison-set refit
            fitted = _refit(run, variant, panel, priors.get(variant.key))
            if variant.refits:
                seconds[variant.key] = time.perf_counter() - t0
            tables.append(summarise(fitted, variant.key, variant))
        except (InputFileError, UsageError):
            raise
        except BayesLacError as err:
            # e.g. no statistical neighbours for a simulated code, too few UASC for a stochastic path
            skipped[variant.key] = str(err)
            continue
        done.append(variant)
    if not done:
        raise UsageError("no refit could be compared: " + "; ".join(f"{key}: {why}" for key, why in skipped.items()))
    comparison = compare_conclusions(pd.concat(tables, ignore_index=True), AS_FITTED).rename(
        columns={"prior_set": "choice"}
    )
    return Refits(
        comparison=comparison,
        finding=refits_finding(comparison, skipped=skipped),
        variants=tuple(done),
        skipped=skipped,
        fit_seconds=seconds,
        wall_seconds=time.perf_counter() - start,
    )


def refits_finding(
    comparison: pd.DataFrame,
    change_share: float = CHANGE_SHARE,
    width_change: float = WIDTH_CHANGE,
    skipped: dict | None = None,
) -> Finding:
    """A plain sentence: which of the board's conclusions change under which other belief
    (`skipped`: variants not computed, by key: why)."""
    others = comparison[comparison["choice"] != AS_FITTED]
    caveats = [f"Not compared: {key} ({why})." for key, why in (skipped or {}).items()]
    unconverged = list(dict.fromkeys(others.loc[~others["converged"].astype(bool), "choice"]))
    if unconverged:
        caveats.append(
            f"The refit(s) {', '.join(unconverged)} failed their convergence check; their numbers are provisional."
        )
    rule = (
        f"(a conclusion counts as changed when its median moves by more than {format_percent(change_share)} of the "
        f"width of its {format_percent(comparison['ci_prob'].iloc[0])} credible interval as fitted, or the interval "
        f"becomes more than {width_change:g} times as wide or narrow)"
    )
    variants = list(dict.fromkeys(others["choice"]))
    changed = others[others["changes"]]
    if changed.empty:
        which = "the other choice" if len(variants) == 1 else f"any of the {len(variants)} other choices"
        sentence = f"No conclusion changes under {which} {rule}."
        if len(others):
            largest = others.loc[others["shift_share"].abs().idxmax()]
            fmt = _FORMATTERS.get(largest["conclusion"], format_count)
            sentence += (
                f" The largest move is in {_conclusion_label(largest)} under {largest['choice']}: "
                f"{fmt(largest['median'])} against {fmt(largest['median'] - largest['shift'])}."
            )
    else:
        moved = []
        for key in variants:
            rows = changed[changed["choice"] == key].sort_values("shift_share", key=abs, ascending=False)
            if rows.empty:
                continue
            row = rows.iloc[0]
            fmt = _FORMATTERS.get(row["conclusion"], format_count)
            more = f" and {len(rows) - 1} more" if len(rows) > 1 else ""
            if row["median_moves"]:
                what = (
                    f"moves {_conclusion_label(row)} to {fmt(row['median'])} from {fmt(row['median'] - row['shift'])}"
                )
            else:
                ratio = row["width_ratio"]
                how = f"{ratio:.1f} times as wide" if ratio >= 1 else f"{1 / ratio:.1f} times narrower"
                what = (
                    f"makes the interval of {_conclusion_label(row)} {how} "
                    f"({fmt(row['lower'])} to {fmt(row['upper'])}; median {fmt(row['median'])})"
                )
            moved.append(f"{key} ({row['belief']}) {what}{more}")
        steady = [k for k in variants if k not in set(changed["choice"])]
        sentence = (
            f"{len(set(changed['choice']))} of the {len(variants)} other choices change a conclusion {rule}: "
            + "; ".join(moved)
            + "."
            + (f" None changes under {', '.join(steady)}." if steady else "")
            + " Read the changed numbers as depending on that choice."
        )
    return Finding(title="Refits under other beliefs", sentence=sentence, table=comparison, caveats=tuple(caveats))
