"""The panel: one row per local authority and year, validated.

Schema (a user's CSV must follow it; the bundled panel adds extra columns):

=================  ==========================================================================
column             meaning
=================  ==========================================================================
la_code            ONS GSS code (E06/E08/E09/E10 authorities, E12 regions, E92000001 England)
la_name            name of the area
year               year of the 31 March snapshot; financial-year figures keyed by the year
                   they end (FY 2016-17 -> 2017)
population_0_17    children aged 0-17 (ONS mid-year estimate DfE uses as that year's
                   denominator)
looked_after       children looked after at 31 March
children_in_need   children in need at 31 March
child_protection   children on a child protection plan at 31 March
uasc               looked-after unaccompanied asylum-seeking children at 31 March
deprivation        a time-varying deprivation measure (bundled: % of children in relative
                   low-income families, DWP)
=================  ==========================================================================

Blank means "not available". DfE suppression markers (c, x, z, low, k, u, ..) are read as
not available and reported, never as numbers.
"""

REQUIRED_COLUMNS: tuple[str, ...] = (
    "la_code",
    "la_name",
    "year",
    "population_0_17",
    "looked_after",
    "children_in_need",
    "child_protection",
    "uasc",
    "deprivation",
)
COUNT_COLUMNS: tuple[str, ...] = ("looked_after", "children_in_need", "child_protection", "uasc")
SUPPRESSION_MARKERS: frozenset[str] = frozenset({"c", "x", "z", "low", "k", "u", "..", "-", ":"})


def load_panel(path=None):  # placeholder until the validation module lands
    raise NotImplementedError
