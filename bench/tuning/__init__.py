"""The tuner: every method given the same hyper-parameter budget, selected on validation data.

``config`` (the ``tuning:`` rules and the ``tuned.yaml`` format) and ``space`` (the ranges a
method declares) are read by the sweep's config and the registry, so they import nothing of
the harness but ``bench.errors``. ``local`` (the tuner's view of the data), ``studies``
(Optuna ask and tell, the race), ``trials`` (a trial's cells, seed after seed, and its
verdict), ``replay`` (a stored trial run again) and ``command`` (``python -m bench.tune``)
build on the cell runner (``bench.cells``, ``bench.grid``); nothing outside this package
imports them but the Ray backend, which runs trials as tasks.
"""
