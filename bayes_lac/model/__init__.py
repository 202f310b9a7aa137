"""Stage 2: the panel becomes a fitted run (an ``xarray.DataTree``).

Imports only from ``bayes_lac.data`` and the base modules.
"""
