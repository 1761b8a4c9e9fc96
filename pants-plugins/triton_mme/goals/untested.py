"""The line `./pants test` prints for the models it was given that no `triton_test` tests.

Such a model is still loaded in Triton by the load check (`goals/test.py`), but nothing sends it
a request: the line names the models and says how to add a case.
"""

from __future__ import annotations

from typing import Iterable

from pants.engine.addresses import Address


def untested_models_message(untested: Iterable[Address]) -> str | None:
    addresses = sorted(set(untested))
    names = [str(a) for a in addresses]
    if not names:
        return None
    if len(names) == 1:
        subject = f"The model {names[0]} has no tests"
        where = f"{addresses[0].spec_path}/tests/"
    else:
        subject = f"{len(names)} models have no tests ({', '.join(names)})"
        where = "each model's tests/ folder"
    return (
        f"{subject}: put a case file (e.g. `cases.json`, see docs/testing.md) or a `test_*.py` "
        f"file in {where}, then run `./pants tailor ::` to add a `triton_test`."
    )
