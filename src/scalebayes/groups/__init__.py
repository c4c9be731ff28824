"""Several ladders at once: hierarchical fits over groups with partial pooling.

:class:`~scalebayes.groups.pooling.Pooling` says which parameters the groups share, pool or
keep apart; :func:`~scalebayes.groups.fitting.fit_groups` samples the model;
:class:`~scalebayes.groups.result.GroupedFit` holds the posterior and gives each group's
(or a new group's) :class:`~scalebayes.results.Fit` for every decision.
"""
