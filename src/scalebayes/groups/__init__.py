"""Several ladders at once: hierarchical fits over groups with partial pooling.

:class:`~scalebayes.groups.pooling.Pooling` says which parameters the groups share, pool or
keep apart; :func:`~scalebayes.groups.fitting.fit_groups` samples the model;
:class:`~scalebayes.groups.result.GroupedFit` holds the posterior and gives each group's
(or a new group's) :class:`~scalebayes.results.Fit` for every decision
(:func:`~scalebayes.groups.select.select_group`; the decision tables stack every group's). It is
saved and read back like a single fit (:mod:`scalebayes.io`) and drawn as a forest of each
group's parameters beside the population's (:func:`scalebayes.figures.forest_table`).
"""
