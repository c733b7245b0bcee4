"""Optimizer steps on stacked parameters, each member with its own hyperparameters.

One torch optimizer over a ``(K, ...)`` tensor would give every member the same learning
rate, so the updates of Adam (L2 weight decay), SGD (momentum, Nesterov) and RMSprop (the
searched ones) are written here on the stacked tensors, with each hyperparameter a ``(K,)``
tensor broadcast over the member's slice: torch's formulas, the same maths to float rounding.
Learning-rate schedules come from a lone torch scheduler per member, so each member follows
exactly the schedule a lone fit would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from carsearch.exceptions import TrainingError
from carsearch.training.schedulers import make_scheduler

#: An optimizer's per-parameter state, or per-member hyperparameters, by name.
State = dict[str, Tensor]

#: Each family's (learning-rate key, other per-member keys and their defaults).
FAMILIES: dict[str, tuple[str, dict[str, float]]] = {
    "adam": ("adam_lr", {"adam_weight_decay": 0.0}),
    "sgd": ("sgd_lr", {"sgd_momentum": 0.0, "sgd_nesterov": 0.0}),
    "rmsprop": ("rmsprop_lr", {"rmsprop_alpha": 0.99, "rmsprop_momentum": 0.0}),
}


class LearningRates:
    """Each member's learning rate epoch by epoch, from a lone scheduler on a dummy
    optimizer: the very floats a lone fit's param group holds."""

    def __init__(self, rates: Sequence[float], scheduler: str, max_epochs: int) -> None:
        self.optimizers = [
            torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=r) for r in rates
        ]
        self.schedulers = [make_scheduler(scheduler, opt, max_epochs) for opt in self.optimizers]

    def current(self) -> list[float]:
        return [float(opt.param_groups[0]["lr"]) for opt in self.optimizers]

    def step(self) -> None:
        for optimizer, scheduler in zip(self.optimizers, self.schedulers, strict=True):
            if scheduler is not None:
                optimizer.step()  # no gradients: only tells the scheduler a step happened
                scheduler.step()

    def keep(self, members: Sequence[int]) -> None:
        self.optimizers = [self.optimizers[k] for k in members]
        self.schedulers = [self.schedulers[k] for k in members]


class StackedOptimizer:
    """Adam, SGD or RMSprop over a module's stacked parameters (leading dimension K)."""

    def __init__(
        self,
        module: nn.Module,
        family: str,
        params: Sequence[dict[str, Any]],
        *,
        scheduler: str = "none",
        max_epochs: int = 1,
    ) -> None:
        if family not in FAMILIES:
            raise TrainingError(f"no batched optimizer {family!r}; use one of {sorted(FAMILIES)}")
        self.module, self.family = module, family
        lr_key, others = FAMILIES[family]
        self.lrs = LearningRates([float(p[lr_key]) for p in params], scheduler, max_epochs)
        self.hyper = {
            key: [float(p.get(key, default)) for p in params] for key, default in others.items()
        }
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.n_steps = 0

    def zero_grad(self) -> None:
        for param in self.module.parameters():
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.n_steps += 1
        lr = self.lrs.current()
        for name, param in self.module.named_parameters():
            if param.grad is None:
                continue
            state = self.state.setdefault(name, {})
            shape = (-1,) + (1,) * (param.dim() - 1)
            values = {key: _column(v, param, shape) for key, v in self.hyper.items()}
            values["lr"] = _column(lr, param, shape)
            getattr(self, f"_{self.family}")(param, param.grad, state, values)

    def keep(self, members: Sequence[int]) -> None:
        """Keep ``members``' state (call after the module's own ``keep``)."""
        index = torch.tensor(list(members), dtype=torch.long)
        for state in self.state.values():
            for key, tensor in state.items():
                state[key] = tensor[index.to(tensor.device)]
        self.hyper = {key: [values[k] for k in members] for key, values in self.hyper.items()}
        self.lrs.keep(members)

    def _adam(self, param: Tensor, grad: Tensor, state: State, values: State) -> None:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        grad = grad + values["adam_weight_decay"] * param
        if not state:
            state["m"], state["v"] = torch.zeros_like(param), torch.zeros_like(param)
        m, v = state["m"], state["v"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        correction1 = 1 - beta1**self.n_steps
        correction2 = math.sqrt(1 - beta2**self.n_steps)
        denom = (v.sqrt() / correction2).add_(eps)
        param.sub_(values["lr"] / correction1 * m / denom)

    def _sgd(self, param: Tensor, grad: Tensor, state: State, values: State) -> None:
        momentum = values["sgd_momentum"]
        if not state:
            state["buffer"] = grad.clone()
        else:
            state["buffer"].mul_(momentum).add_(grad)
        buffer = state["buffer"]
        nesterov = (values["sgd_nesterov"] > 0) & (momentum > 0)
        direction = torch.where(nesterov, grad + momentum * buffer, buffer)
        param.sub_(values["lr"] * direction)

    def _rmsprop(self, param: Tensor, grad: Tensor, state: State, values: State) -> None:
        alpha, momentum = values["rmsprop_alpha"], values["rmsprop_momentum"]
        if not state:
            state["square"], state["buffer"] = torch.zeros_like(param), torch.zeros_like(param)
        square, buffer = state["square"], state["buffer"]
        square.mul_(alpha).addcmul_(grad, grad * (1 - alpha))
        buffer.mul_(momentum).add_(grad / square.sqrt().add_(1e-8))
        param.sub_(values["lr"] * buffer)


def _column(values: Sequence[float], like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(shape)
