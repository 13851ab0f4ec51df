"""The tuner: every method given the same hyper-parameter budget, selected on validation data.

``local`` (the tuner's view of the data), ``studies`` (Optuna ask and tell, the race),
``trials`` (a trial's cells, seed after seed, and its verdict), ``replay`` (a stored trial
run again), ``ray`` (trials as Ray tasks) and ``command`` (``python -m bench.tune``) build
on the cell runner (``bench.running``); its rules and the ``tuned.yaml`` format are config
(``bench.config.tuning``), the ranges a method declares are the registry's
(``bench.registry.space``). Nothing below it imports it.
"""
