"""Built-in unlearning methods, one module each; importing this package registers them."""

from methods import (  # noqa: F401
    amnesiac,
    bad_teacher,
    boundary,
    fcalb,
    finetune,
    ga,
    l1_sparse,
    neggrad_plus,
    original,
    retrain,
    rl,
    scrub,
    ssd,
    unsir,
)
