"""Choose FC+ALB's default learning rate and step budget on a validation split of the training data.

    python scripts/select_fcalb_defaults.py

On digits, the training set alone is used: class 3 is the forget set, 20% of the other
classes' training samples (stratified, seed 0) are held out as validation, and the original
model is trained on the rest plus the forget set with the quick profile's recipe. For each
(lr, step_share) of a small grid, FC+ALB unlearns and we read the forget-set accuracy (training
data) and the validation accuracy. The rule: the highest validation accuracy among the
settings whose forget accuracy is at most 5% (a retrained model's is 0 for a whole class),
ties going to fewer steps; where none is, the lowest forget accuracy. No test data is read.
"""

from __future__ import annotations

import itertools

import torch
from sklearn.model_selection import train_test_split

from bench.data.datasets import load_dataset
from bench.evaluation.evaluate import predict_logits
from bench.evaluation.metrics import accuracy
from bench.data.models import build_model
from bench.registry import UnlearnTask, get_method, load_plugins
from bench.data.splits import parse_scenario
from bench.training.loop import Preprocess, Recipe, train

LRS = (0.1, 0.3, 1.0)
SHARES = (0.02, 0.05, 0.1)


def main() -> None:
    load_plugins()
    data = load_dataset("digits")
    y = data.train_y
    forget = torch.nonzero(y == 3).flatten()
    others = torch.nonzero(y != 3).flatten()
    keep, val = train_test_split(others.numpy(), test_size=0.2, stratify=y[others].numpy(), random_state=0)
    keep, val = torch.from_numpy(keep), torch.from_numpy(val)
    fit = torch.cat([keep, forget])
    pre = Preprocess(*data.channel_stats(), None)
    recipe = Recipe(epochs=30, batch_size=64, lr=0.05)
    original = build_model("cnn", 1, 10, 8, seed=0)
    train(original, data.train_x[fit], y[fit], recipe, pre, torch.Generator().manual_seed(0))
    fcalb = get_method("fcalb")
    print(f"{'lr':>6} {'share':>6} {'forget_acc':>10} {'val_acc':>8}")
    rows = []
    for lr, share in itertools.product(LRS, SHARES):
        model = build_model("cnn", 1, 10, 8, seed=0)
        model.load_state_dict(original.state_dict())
        task = UnlearnTask(
            forget_x=data.train_x[forget], forget_y=y[forget], retain_x=data.train_x[keep], retain_y=y[keep],
            num_classes=10, scenario=parse_scenario("class:3", 10), new_model=lambda s: build_model("cnn", 1, 10, 8, s),
            device=torch.device("cpu"), generator=torch.Generator().manual_seed(1), preprocess=pre, recipe=recipe, seed=0,
        )
        model = fcalb(fcalb.Config(lr=lr, step_share=share)).unlearn(model, task)
        forget_acc = accuracy(predict_logits(model, data.train_x[forget], pre), y[forget].numpy())
        val_acc = accuracy(predict_logits(model, data.train_x[val], pre), y[val].numpy())
        rows.append((lr, share, forget_acc, val_acc))
        print(f"{lr:>6} {share:>6} {forget_acc:>10.4f} {val_acc:>8.4f}")
    eligible = [r for r in rows if r[2] <= 0.05]
    if eligible:
        best = max(eligible, key=lambda r: (r[3], -r[1]))
    else:
        print("no setting forgets (forget accuracy ≤ 5%): the lowest forget accuracy is chosen")
        best = min(rows, key=lambda r: (r[2], r[1]))
    print(f"chosen: lr={best[0]}, step_share={best[1]} (forget {best[2]:.4f}, validation {best[3]:.4f})")


if __name__ == "__main__":
    main()
