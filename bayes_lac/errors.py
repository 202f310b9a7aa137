"""The package's exceptions, in one place.

Every error a user can cause (bad file, unknown authority, unconverged fit) derives from
`BayesLacError`; the CLI turns these into a one-paragraph message and exit status 2.
"""


class BayesLacError(Exception):
    """Base class for errors a user can act on. Never raised for internal bugs."""


class PanelError(BayesLacError):
    """A panel file, or a panel DataFrame, is not usable as given.

    The message names the file, the line or local authority, the column and what was expected.
    """


class UnknownAuthorityError(BayesLacError):
    """An ONS code that is not in the panel or in the statistical-neighbour lists."""


class ScenarioError(BayesLacError):
    """A forecast scenario cannot be computed for this authority; ``scenario`` names it."""

    def __init__(self, scenario: str, message: str):
        super().__init__(message)
        self.scenario = scenario


class UnconvergedFitError(BayesLacError):
    """A fit failed its convergence diagnostics and the caller did not allow that."""


class RunFileError(BayesLacError):
    """A saved run (netCDF) is missing, unreadable or from an incompatible version."""


class InputFileError(BayesLacError):
    """A user-supplied file other than a panel (priors, intervention, population) is invalid."""


class UsageError(BayesLacError):
    """A command-line argument is missing or cannot be used as given (named in the message)."""


class OutputFileError(BayesLacError):
    """An output path cannot be written safely: it is an input, a folder, or under a file."""


class MissingDependencyError(BayesLacError):
    """An optional part of bayes_lac was asked for without the package it needs installed.

    The message names the package and the extra that installs it, e.g.
    ``pip install 'bayes_lac[dask]'``.
    """
