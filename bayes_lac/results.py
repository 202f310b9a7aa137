"""Fitted results: what a run holds, how it is saved and loaded, and the model's scales.

A run is an ``xarray.DataTree``. Everything downstream of ``fit`` (decomposition, forecasts,
costs, sensitivity, reports) is a plain function of it, so it works the same on a fit made a
minute ago and on one loaded from disk a year later.

The model (see ``bayes_lac.model``)
-----------------------------------
For measure ``m``, authority ``i`` and year ``t`` the *modelled count* is

* looked_after: children looked after **excluding UASC** (the UASC count is added back as a
  known component, so population, UASC and deprivation stay separable);
* children_in_need, child_protection: the published count.

    modelled_count[m, i, t] ~ NegBin(mean = expected[m, i, t], alpha = dispersion[m])
    log expected[m, i, t]  = log(population_0_17[i, t] / 10_000) + log_rate[m, i, t]
    log_rate[m, i, t]      = intercept[m] + la_intercept[i, m]
                             + la_trend[i, m] * (year - reference_year)
                             + year_effect[m, t]
                             + deprivation_effect[m] * (deprivation[i, t] - deprivation_centre)

``la_intercept`` and ``la_trend`` sum to zero over the authorities in the comparison set (they
are each authority's deviation from the set's common level and trend), and are correlated
across measures. ``year_effect[m, first year] = 0`` and it is a random walk after that: it
carries the comparison set's common path (national policy and shocks).

Scales (one name per scale, used everywhere)
--------------------------------------------
* ``log_rate``: link scale, log of the expected rate per 10,000 children aged 0-17 (for
  looked_after: non-UASC children).
* ``expected``: expected modelled count (no sampling noise).
* ``rate``: rate per 10,000 children aged 0-17 of the **reported** measure (looked_after
  including UASC).
* ``predicted``: predictive count with negative-binomial noise, plus UASC for looked_after.
  Intervals on counts come from ``predicted``.

Groups and variables
--------------------
``posterior`` (dims ``chain``, ``draw`` plus):
    intercept (measure); la_intercept (la, measure); la_trend (la, measure), log scale per
    year; year_effect (measure, year); year_sigma (measure), random-walk step sd;
    deprivation_effect (measure), per unit of ``deprivation``; dispersion (measure), the
    negative-binomial alpha (variance = mu + mu**2 / alpha). Further hyper-parameters may be
    present; downstream code must not rely on them.
``constant_data`` (dims la, year): population_0_17, uasc, deprivation (as used by the
    model, after any documented imputation), uasc_imputed, deprivation_imputed (bool), and
    coordinate ``la_name`` on ``la``.
``observed_data``: modelled_count (measure, la, year), NaN where not in the likelihood;
    reported_count (measure, la, year), the published count (NaN if not published).
``reference``: England's published counts and population by year, for charts and the
    converge-england scenario: count (measure, year), population_0_17 (year).
    Neighbours' average is computed from the comparison set.
``log_likelihood``, ``log_prior``: for LOO and power-scaling prior sensitivity.
``sample_stats``: from the sampler.

Root attrs (strings, JSON where structured): bayes_lac_version, target_la, comparison
(e.g. "neighbours-2021"), neighbours (JSON list of codes), until_year, reference_year,
deprivation_centre, measures (JSON list), priors (JSON), prior_set, sampler (JSON: draws,
tune, chains, seed, sampler name), panel_sha256, data_vintage, created_utc, imputations
(JSON list of human-readable notices), diagnostics (JSON), converged ("true"/"false").

Coordinates: ``la`` holds ONS codes, ``year`` integers (31 March year), ``measure`` the
names in ``bayes_lac.config.MEASURES``.
"""
