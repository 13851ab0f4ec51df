"""Built-in unlearning methods, one module each; importing this package registers them."""

from methods import finetune, original, retrain  # noqa: F401
