"""The config formats, validated before any work: ``sweep`` (a sweep's YAML: datasets,
scenarios, seeds, methods, resources; ``load_config``) and ``tuning`` (the ``tuning:``
rules and the ``tuned.yaml`` format). Imports every layer below it (core, data, training,
registry, evaluation), never the runners."""
