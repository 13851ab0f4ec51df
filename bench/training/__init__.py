"""The one training loop and what methods compose it with: ``loop`` (``fit`` and ``train``,
recipes, preprocessing, cached trainings), ``budget`` (epochs scaled to a setting),
``balance`` (multi-task loss balancers), ``gradients`` and ``update_record`` (the original
training's per-batch updates). Imports ``bench.core`` and ``bench.data``."""
