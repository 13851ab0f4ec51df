"""Per-parameter sums of batch gradients: the quantity SalUn's saliency mask and SSD's
importances are made of. Pure accumulation, no optimiser step: the model's weights are
left as they were, its gradients cleared and its mode restored."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.training.loop import Preprocess, autocast, batch_indices


def summed_gradients(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    preprocess: Preprocess,
    batch_size: int,
    reduce: Callable[[torch.Tensor], torch.Tensor] = lambda grad: grad,
    generator: torch.Generator | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """``({name: Σ_batches reduce(∇ mean-CE of the batch)}, number of batches)`` over
    ``images`` in eval mode (batch norm uses its running statistics and learns nothing).

    Batches follow the given order unless a ``generator`` is passed, which shuffles them and
    augments each batch as the dataset's training does (SalUn's mask reads the training
    loader; SSD reads unshuffled, unaugmented ones). ``reduce`` maps one batch's gradient
    before it is added: the identity for SalUn, the square for SSD."""
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    was_training = model.training
    model.eval()
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    sums = {name: torch.zeros_like(p) for name, p in named}
    batches = 0
    for cpu_index in batch_indices(len(labels), batch_size, generator or torch.Generator(), shuffle=generator is not None):
        index = cpu_index.to(device)
        model.zero_grad(set_to_none=True)
        with autocast(device):
            loss = F.cross_entropy(model(preprocess(images[index], generator)), labels[index])
        loss.backward()
        for name, p in named:
            if p.grad is not None:
                sums[name] += reduce(p.grad.float())
        batches += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return sums, batches
