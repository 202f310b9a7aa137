"""Chart conventions: a colour-blind-safe palette that also reads in greyscale print.

Colours are the Okabe-Ito palette (Okabe & Ito, 2008); every series also gets its own line
style and marker so it can be told apart when printed in black and white. Plot functions in
the package take an optional ``ax``, return the figure, and never call ``plt.show()``.
"""

from __future__ import annotations

# matplotlib is imported by `get_axes`, when a chart is drawn: analyses import this module
# for its names, and a command that draws nothing should not pay for matplotlib.

#: Okabe-Ito colours, in the order series are drawn.
PALETTE: tuple[str, ...] = (
    "#000000",  # black: the target authority
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow (last: weak in greyscale)
)
LINESTYLES: tuple = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")

#: Fixed roles, so the same thing has the same look in every chart.
TARGET_COLOUR = PALETTE[0]
ENGLAND_COLOUR = PALETTE[4]
NEIGHBOURS_COLOUR = PALETTE[1]
BAND_ALPHA = 0.25


def series_style(i: int) -> dict:
    """Colour, line style and marker for the i-th series of a chart."""
    return {
        "color": PALETTE[i % len(PALETTE)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "marker": MARKERS[i % len(MARKERS)],
    }


def get_axes(ax=None, figsize=(8, 4.5)):
    """The axes to draw on and their figure: `ax` if given, else a new figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax
