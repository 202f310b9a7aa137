"""Stage 1 of the flow: official files and user CSVs become a validated panel.

Imports only from the package's base modules (config, errors, summaries, style).
"""
