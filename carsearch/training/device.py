"""Choosing the device, the number of CPU threads, and seeds."""

from __future__ import annotations

import random

import numpy as np
import torch

from carsearch.exceptions import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; other names must exist here.

    Raises:
        ConfigError: the device is unknown or not present on this machine.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        _check_cuda(name, device)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' asked for, but MPS is not available here")
    return device


def _check_cuda(name: str, device: torch.device) -> None:
    if torch.version.cuda is None:
        raise ConfigError(
            f"device {name!r} asked for, but the installed torch {torch.__version__} is a "
            "CPU-only build (torch.version.cuda is None); for a CUDA build, install torch "
            "without the +cpu pin from the PyTorch index of your CUDA version, e.g. pip "
            "install torch --index-url https://download.pytorch.org/whl/cu126"
        )
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (device.index or 0) >= count:
        raise ConfigError(f"device {name!r} asked for, but this machine has {count} CUDA GPUs")


def device_label(device: torch.device) -> str:
    """A readable name: ``cpu``, or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, *keys: int) -> int:
    """A well-mixed 31-bit seed for a (run seed, trial number, ...) combination."""
    state = np.random.SeedSequence([seed, *keys]).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF


def set_threads(n_threads: int) -> None:
    """Limit torch's CPU threads: more threads than free cores collapse throughput."""
    torch.set_num_threads(n_threads)
    try:
        torch.set_num_interop_threads(n_threads)
    except RuntimeError:
        pass  # only settable before the first parallel op; the intra-op limit is what matters
