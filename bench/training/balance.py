"""Adaptive loss balancing for multi-task objectives: L = Σ_k w_k · L_k.

A balancer turns the task losses of one step into the loss to back-propagate, and may
adapt its weights per step (``combine``) or per epoch (``end_epoch``). FC+ALB uses it to
balance forgetting against recovering; another balancer is a subclass and a decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

_BALANCERS: dict[str, type["Balancer"]] = {}


def register_balancer(name: str) -> Callable[[type["Balancer"]], type["Balancer"]]:
    def decorator(cls: type["Balancer"]) -> type["Balancer"]:
        _BALANCERS[name] = cls
        return cls

    return decorator


def balancer_names() -> list[str]:
    return sorted(_BALANCERS)


def make_balancer(name: str, num_tasks: int, **options: float) -> "Balancer":
    """A balancer by name; ``options`` are passed to it (unknown ones are ignored by design
    of each balancer's signature, so one config can carry every balancer's options)."""
    cls = _BALANCERS[name]
    accepted = {k: v for k, v in options.items() if k in cls.OPTIONS}
    return cls(num_tasks, **accepted)


class Balancer(nn.Module):
    """Base: fixed weights of 1. ``parameters()`` are the balancer's learnable weights that
    join the model's optimizer (only ``uncertainty`` has any)."""

    OPTIONS: tuple[str, ...] = ()

    def __init__(self, num_tasks: int):
        super().__init__()
        self.num_tasks = num_tasks

    def weights(self) -> torch.Tensor:
        """Current weights, detached, shape ``(num_tasks,)``."""
        return torch.ones(self.num_tasks)

    def combine(self, losses: torch.Tensor, shared: Sequence[torch.Tensor]) -> torch.Tensor:
        """The loss to back-propagate for this step's task ``losses`` (shape ``(K,)``).
        ``shared`` are the parameters all tasks share (used by gradient-based balancers)."""
        return (self.weights().to(losses.device) * losses).sum()

    def end_epoch(self, epoch_losses: torch.Tensor) -> None:
        """Called with the epoch's mean task losses."""


@register_balancer("fixed")
class Fixed(Balancer):
    """Constant weights (the ablation without adaptive balance)."""

    OPTIONS = ("fixed_weights",)

    def __init__(self, num_tasks: int, fixed_weights: Sequence[float] | None = None):
        super().__init__(num_tasks)
        values = list(fixed_weights) if fixed_weights is not None else [1.0] * num_tasks
        if len(values) != num_tasks or min(values) < 0:
            raise ValueError(f"fixed_weights needs {num_tasks} non-negative values, got {values}")
        self.register_buffer("fixed", torch.tensor(values, dtype=torch.float32))

    def weights(self) -> torch.Tensor:
        return self.fixed.detach().clone()


@register_balancer("dwa")
class DynamicWeightAverage(Balancer):
    """Dynamic Weight Average (Liu, Johns & Davison 2019, "End-to-End Multi-Task Learning
    with Attention", eq. 7): w_k(t) = K·softmax_k(r_k(t−1)/T) with r_k(t−1) = L_k(t−1)/L_k(t−2),
    the ratio of the task's last two epoch losses (FC+ALB's rounds); w = 1 for the first two. T = 2
    as in the paper. A task whose loss falls more slowly gets more weight."""

    OPTIONS = ("temperature",)

    def __init__(self, num_tasks: int, temperature: float = 2.0):
        super().__init__(num_tasks)
        self.temperature = temperature
        self.history: list[torch.Tensor] = []
        self.register_buffer("current", torch.ones(num_tasks))

    def weights(self) -> torch.Tensor:
        return self.current.detach().clone()

    def end_epoch(self, epoch_losses: torch.Tensor) -> None:
        self.history.append(epoch_losses.detach().cpu().double())
        if len(self.history) >= 2:
            ratio = self.history[-1] / self.history[-2].clamp_min(1e-12)
            self.current.copy_((self.num_tasks * torch.softmax(ratio / self.temperature, dim=0)).float())


@register_balancer("uncertainty")
class Uncertainty(Balancer):
    """Homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla 2018, CVPR):
    L = Σ_k exp(−s_k)·L_k + s_k with s_k = log σ_k² learned with the model (s = 0 at start),
    the common form of their eqs. 7–10. The weights exp(−s_k) are positive by construction."""

    def __init__(self, num_tasks: int):
        super().__init__(num_tasks)
        self.log_variance = nn.Parameter(torch.zeros(num_tasks))

    def weights(self) -> torch.Tensor:
        return torch.exp(-self.log_variance.detach()).cpu()

    def combine(self, losses: torch.Tensor, shared: Sequence[torch.Tensor]) -> torch.Tensor:
        s = self.log_variance.to(losses.device)
        return (torch.exp(-s) * losses + s).sum()


@register_balancer("gradnorm")
class GradNorm(Balancer):
    """GradNorm (Chen et al. 2018, ICML): learnable weights w_k whose weighted-loss gradient
    norms G_k on the shared parameters are pulled toward mean(G)·r_k^α, where r_k is task k's
    relative inverse training rate (L_k(t)/L_k(0) over its mean across tasks); after each
    update the weights are renormalised to sum to K. α = 1.5 is within the range the paper
    explores; the weights' learning rate 0.025 and the floor of 1e-3 (so weights stay
    positive) are chosen here, not taken from the paper."""

    OPTIONS = ("alpha", "weight_lr")

    def __init__(self, num_tasks: int, alpha: float = 1.5, weight_lr: float = 0.025):
        super().__init__(num_tasks)
        self.alpha = alpha
        self.weight_lr = weight_lr
        self.register_buffer("current", torch.ones(num_tasks))
        self.initial: torch.Tensor | None = None

    def weights(self) -> torch.Tensor:
        return self.current.detach().clone().cpu()

    def combine(self, losses: torch.Tensor, shared: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.initial is None:
            self.initial = losses.detach().clone().clamp_min(1e-12)
        w = self.current.to(losses.device).clone().requires_grad_(True)
        norms = []
        for k in range(self.num_tasks):
            grads = torch.autograd.grad(w[k] * losses[k], shared, retain_graph=True, create_graph=True, allow_unused=True)
            norms.append(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None) + 1e-20))
        norms_t = torch.stack(norms)
        ratio = losses.detach() / self.initial
        target = (norms_t.mean() * (ratio / ratio.mean()) ** self.alpha).detach()
        grad_of_weights = torch.autograd.grad((norms_t - target).abs().sum(), w, retain_graph=True)[0]
        with torch.no_grad():
            updated = (self.current - self.weight_lr * grad_of_weights.to(self.current.device)).clamp_min(1e-3)
            self.current.copy_(updated * self.num_tasks / updated.sum())
        return (w.detach() * losses).sum()
