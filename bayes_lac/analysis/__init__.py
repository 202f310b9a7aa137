"""Stage 3: plain functions of a run (and the panel) that return tables and charts.

Imports only from ``bayes_lac.model``, ``bayes_lac.data`` and the base modules.
"""
