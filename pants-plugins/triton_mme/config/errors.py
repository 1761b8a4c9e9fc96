"""The one error type of config checks, and the one "did you mean" helper."""

from __future__ import annotations

import difflib
from typing import Iterable


class ModelConfigError(ValueError):
    """A config.pbtxt problem, phrased for the person who wrote the file: `file:line: message`."""

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        location = f"{path}:{line}" if line else path
        super().__init__(f"{location}: {message}")
        self.path = path
        self.line = line


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """` Did you mean `a` or `b`?` for the candidates close to `name`; empty when none is."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3)
    return f" Did you mean {' or '.join(f'`{c}`' for c in close)}?" if close else ""
