from __future__ import annotations

import pytest

from triton_mme.scripts.local_mme.budget import Budget, BudgetError, LruModels


def _loaded(budget: Budget, *models: tuple[str, int]) -> LruModels:
    lru = LruModels(budget)
    for name, size in models:
        lru.add(name, size)
    return lru


def test_no_limits_never_evicts() -> None:
    lru = _loaded(Budget(), ("a", 10), ("b", 10))
    assert lru.victims_for("c", 10**12) == []


def test_model_count_evicts_least_recently_used() -> None:
    lru = _loaded(Budget(max_models=2), ("a", 1), ("b", 1))
    assert lru.victims_for("c", 1) == ["a"]
    lru.touch("a")
    assert lru.victims_for("c", 1) == ["b"]
    assert lru.victims_for("a", 1) == [], "reloading a loaded model needs no room"


def test_bytes_evict_as_many_as_needed() -> None:
    lru = _loaded(Budget(max_bytes=100), ("a", 40), ("b", 30), ("c", 30))
    assert lru.victims_for("d", 50) == ["a", "b"]
    assert lru.victims_for("d", 30) == ["a"]
    assert lru.victims_for("d", 0) == []


def test_both_limits() -> None:
    lru = _loaded(Budget(max_models=3, max_bytes=100), ("a", 10), ("b", 80), ("c", 5))
    assert lru.victims_for("d", 5) == ["a"]
    assert lru.victims_for("d", 20) == ["a", "b"]


def test_model_bigger_than_the_budget() -> None:
    with pytest.raises(BudgetError, match="c needs 200 bytes once extracted"):
        _loaded(Budget(max_bytes=100)).victims_for("c", 200)


def test_order_and_totals() -> None:
    lru = _loaded(Budget(), ("a", 1), ("b", 2), ("c", 3))
    lru.touch("a")
    lru.remove("b")
    assert lru.names() == ["c", "a"]
    assert lru.total_bytes == 4 and len(lru) == 2 and "a" in lru and "b" not in lru
