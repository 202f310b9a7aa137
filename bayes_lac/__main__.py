"""``python -m bayes_lac``: the same command line as ``bayes-lac``."""

import sys

from bayes_lac.cli import main

sys.exit(main())
