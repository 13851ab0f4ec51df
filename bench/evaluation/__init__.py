"""What a cell is judged by: ``metrics`` (pure functions of arrays), ``evaluate`` (a model's
logits on the forget, retain and test sets and every standard metric), ``costly`` (the
forget-quality tier over retrained replicas), ``reference`` (the reference models' logits)
and ``config`` (the ``evaluation:`` options). Imports the layers below it: core, data,
training, registry."""
