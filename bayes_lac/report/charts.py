"""Finishing touches the board report gives the analyses' charts.

The analyses draw their charts (`bayes_lac.analysis`); the report makes them readable in
print: the comparison authorities named at the ends of their lines (and the ones a reader asks
about drawn boldly), axes from zero where a level or a bar is compared, and line styles and
band outlines that stay distinct when printed in greyscale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Line styles given to a chart's series in turn, so no two series differ by colour alone.
LINE_STYLES: tuple = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
#: Smallest vertical gap between two line-end labels, as a share of the axis height.
LABEL_GAP = 0.045


def axes_from_zero(fig) -> None:
    """Start every value axis of `fig` at zero when its data are all positive, so bars and
    levels are compared against zero rather than against a cut-off axis."""
    for ax in fig.axes:
        low, high = ax.get_ylim()
        if 0 < low < high:
            ax.set_ylim(0, high)


def greyscale_safe(fig) -> None:
    """Give each series of every axes its own line style and each band an outline in the
    style of its series, so overlapping translucent bands stay apart in greyscale."""
    from matplotlib.collections import PolyCollection

    for ax in fig.axes:
        lines = [ln for ln in ax.get_lines() if not str(ln.get_label()).startswith("_") and len(ln.get_xdata()) > 1]
        styles = {}
        for i, line in enumerate(lines):
            style = LINE_STYLES[i % len(LINE_STYLES)]
            line.set_linestyle(style)
            styles[_colour_key(line.get_color())] = style
        for band in (c for c in ax.collections if isinstance(c, PolyCollection)):
            face = band.get_facecolor()
            if not len(face):
                continue
            colour = tuple(face[0][:3])
            # the band's transparency moves into its fill colour, so its outline can be opaque
            alpha = band.get_alpha() if band.get_alpha() is not None else face[0][3]
            band.set_alpha(None)
            band.set_facecolor((*colour, alpha))
            band.set_edgecolor((*colour, 1.0))
            band.set_linewidth(0.9)
            band.set_linestyle(styles.get(_colour_key(colour), "--"))
        if ax.get_legend() is not None and lines:
            ax.legend(handles=lines, fontsize="small", title=ax.get_legend().get_title().get_text() or None)


def _colour_key(colour) -> tuple:
    from matplotlib.colors import to_rgb

    return tuple(round(c, 3) for c in to_rgb(colour))


def name_neighbours(ax, table: pd.DataFrame, measure: str, highlight: Sequence[str] = ()) -> list[str]:
    """Name each comparison authority at the end of its line on a comparison chart, and draw
    those in `highlight` (ONS codes or names) boldly in their own line styles.

    Parameters
    ----------
    ax
        The axes `bayes_lac.analysis.compare.plot_comparison` drew `measure` on.
    table
        The comparison table it drew.
    measure
        The measure on the axes.
    highlight
        Comparison authorities to draw boldly (codes or names); others stay thin and grey.

    Returns
    -------
    The names written, in the order of their label positions, top first.
    """
    t = table[(table["measure"] == measure) & ~table["group"].isin(["target", "neighbours_average", "england"])]
    t = t.dropna(subset=["rate"])
    if t.empty:
        return []
    wanted = {str(h).lower() for h in highlight}
    ends = []
    for i, (code, g) in enumerate(t.sort_values("year").groupby("group", sort=False)):
        name = str(g["la_name"].iloc[0])
        last = g.iloc[-1]
        bold = code.lower() in wanted or name.lower() in wanted
        if bold:
            ax.plot(
                g["year"],
                g["rate"],
                color="0.15",
                linewidth=1.8,
                linestyle=LINE_STYLES[(i + 1) % len(LINE_STYLES)],
                label=name,
                zorder=4,
            )
        ends.append((float(last["rate"]), float(last["year"]), name, bold))
    low, high = ax.get_ylim()
    gap = LABEL_GAP * (high - low)
    ends.sort(key=lambda e: -e[0])
    positions = _spread([e[0] for e in ends], gap)
    x_max = max(e[1] for e in ends)
    for (rate, year, name, bold), y in zip(ends, positions):
        ax.annotate(
            name,
            xy=(year, rate),
            xytext=(x_max + 0.6, y),
            textcoords="data",
            fontsize=6.5,
            color="0.1" if bold else "0.35",
            fontweight="bold" if bold else "normal",
            va="center",
            arrowprops={"arrowstyle": "-", "color": "0.7", "linewidth": 0.5},
            annotation_clip=False,
        )
    left, right = ax.get_xlim()
    # room for the names inside the axes, right of the last year; years as whole numbers
    from matplotlib.ticker import MaxNLocator

    ax.set_xlim(left, max(right, x_max + 4))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return [e[2] for e in ends]


def _spread(values: Sequence[float], gap: float) -> list[float]:
    """Label heights near `values` (sorted from highest) at least `gap` apart, in that order."""
    out: list[float] = []
    for v in values:
        out.append(min(v, out[-1] - gap) if out else v)
    # shift the whole column up if it was pushed below the lowest value by more than needed
    if out and values:
        excess = (min(values) - out[-1]) / 2
        if excess > 0:
            out = [y + excess for y in out]
    return list(np.asarray(out, dtype=float))


#: Words that describe how a chart looks rather than what it says.
STYLE_WORDS: tuple[str, ...] = (
    "black",
    "orange",
    "blue",
    "red",
    "green",
    "grey",
    "gray",
    "circles",
    "squares",
    "triangles",
    "dash-dot",
    "dashed",
    "dotted",
    "solid line",
    "thin line",
)


def alt_text_problem(alt: str) -> str:
    """Why `alt` does not state a chart's message ('' if it does): alternative text must carry
    at least one of the chart's numbers and must not describe colours, markers or line styles
    (a screen-reader user needs what the chart shows, not how it is drawn)."""
    import re

    if not alt.strip():
        return "it is empty"
    styled = [w for w in STYLE_WORDS if re.search(rf"(?<![A-Za-z]){re.escape(w)}(?![A-Za-z])", alt, re.IGNORECASE)]
    if styled:
        return f"it describes the drawing ({', '.join(styled)}) instead of the message"
    if not re.search(r"\d", alt):
        return "it states no number the chart shows"
    return ""


def plain_chart_words(fig) -> None:
    """Put the titles, axis labels and legend titles of `fig` in the board's words ("90%
    credible intervals" -> "likely ranges (90%)", "posterior means" -> "averages")."""
    from bayes_lac.report.formats import plain_words

    for ax in fig.axes:
        for loc in ("left", "center", "right"):
            title = ax.get_title(loc=loc)
            if title:
                ax.set_title(plain_words(title), loc=loc)
        ax.set_ylabel(plain_words(ax.get_ylabel()))
        legend = ax.get_legend()
        if legend is not None:
            legend.get_title().set_text(plain_words(legend.get_title().get_text()))
            for text in legend.get_texts():
                text.set_text(plain_words(text.get_text()))
    if getattr(fig, "_suptitle", None) is not None:
        fig._suptitle.set_text(plain_words(fig._suptitle.get_text()))
