"""Which loaded models to unload so a new one fits: least recently used first, as MME does.

SageMaker MME unloads the least recently used models when an instance runs out of memory.
Locally the budget is explicit: a maximum number of loaded models and/or a maximum number of
bytes of extracted model directories (0 means no limit).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


class BudgetError(ValueError):
    """A model that cannot fit even when every other model is unloaded."""


@dataclass(frozen=True)
class Budget:
    max_models: int = 0
    max_bytes: int = 0

    def describe(self) -> str:
        models = f"{self.max_models} model(s)" if self.max_models else "any number of models"
        size = f"{self.max_bytes} bytes" if self.max_bytes else "no byte limit"
        return f"{models}, {size}"


class LruModels:
    """Loaded models in least- to most-recently-used order, with their extracted size."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._sizes: OrderedDict[str, int] = OrderedDict()

    def __contains__(self, name: object) -> bool:
        return name in self._sizes

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def names(self) -> list[str]:
        """Least recently used first."""
        return list(self._sizes)

    def touch(self, name: str) -> None:
        self._sizes.move_to_end(name)

    def add(self, name: str, size: int) -> None:
        self._sizes[name] = size
        self._sizes.move_to_end(name)

    def remove(self, name: str) -> None:
        self._sizes.pop(name, None)

    def victims_for(self, name: str, size: int) -> list[str]:
        """The models to unload, least recently used first, so that `name` of `size` fits."""
        if self.budget.max_bytes and size > self.budget.max_bytes:
            raise BudgetError(
                f"{name} needs {size} bytes once extracted, more than the whole budget of "
                f"{self.budget.max_bytes} bytes; raise max_bytes."
            )
        count = len(self._sizes) + (0 if name in self._sizes else 1)
        total = self.total_bytes - self._sizes.get(name, 0) + size
        victims: list[str] = []
        for candidate, candidate_size in self._sizes.items():
            over_count = bool(self.budget.max_models) and count > self.budget.max_models
            over_bytes = bool(self.budget.max_bytes) and total > self.budget.max_bytes
            if not (over_count or over_bytes):
                break
            if candidate == name:
                continue
            victims.append(candidate)
            count -= 1
            total -= candidate_size
        return victims
