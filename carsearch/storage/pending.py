"""The writes of one running trial that a buffered storage holds until they matter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import BaseDistribution


@dataclass
class Pending:
    """Writes of one running trial not yet in the database."""

    params: list[tuple[str, float, BaseDistribution]] = field(default_factory=list)
    values: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    heartbeat: bool = False

    def clear(self) -> None:
        self.params.clear()
        self.values.clear()
        self.user_attrs.clear()
        self.system_attrs.clear()
        self.heartbeat = False
