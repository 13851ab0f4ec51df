"""Built-in unlearning methods, one module each; importing this package registers them."""

from methods import amnesiac, boundary, fcalb, finetune, original, retrain, unsir  # noqa: F401
