"""Stage 4: studies that repeat fits and analyses (backtests, prior sensitivity).

Imports from the stages before it, never from ``bayes_lac.report.board`` or the CLI.
"""
