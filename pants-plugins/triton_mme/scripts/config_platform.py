"""Whether a config.pbtxt is an ensemble: the `platform` it declares, read without protobuf.

This is the one place that decides it, for three kinds of callers:
- the plugin's config checks: `ModelConfigFile.is_ensemble` (`config/parse.py`) passes the
  `platform` that Triton's schema parsed to `is_ensemble_platform`;
- `tailor`, on configs that may still be half written (it must not fail on them: validation
  reports their errors);
- the local MME and `publish` (`local_mme/tarball.py`, `s3_publish.py`), which read configs in
  tarballs inside tool PEXes that have no protobuf.

The text is tokenized the way protobuf's text format is (comments, both quote styles, escapes,
adjacent strings concatenated, nested messages), and only a top-level `platform` field counts, so
a config that parses gives the answer Triton's parser gives, and a half-written one still gives
one. Standard library only, for Python 3.9 (inside Pants) and the tools' Python.
"""

from __future__ import annotations

import re
from typing import Iterator

ENSEMBLE_PLATFORM = "ensemble"
PLATFORM_FIELD = "platform"

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<word>[\w+\-.]+)
    |(?P<punct>.)""",
    re.VERBOSE,
)
_OPENING = frozenset("{<[")
_CLOSING = frozenset("}>]")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)")
_ESCAPED = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def is_ensemble_platform(platform: str | None) -> bool:
    return platform == ENSEMBLE_PLATFORM


def declares_ensemble(config_text: str) -> bool:
    """Whether config.pbtxt text says `platform: "ensemble"` (SageMaker serves that model of a
    tarball; `tailor` proposes `triton_ensemble` for it)."""
    return is_ensemble_platform(declared_platform(config_text))


def declared_platform(config_text: str) -> str | None:
    """The value of the config's top-level `platform` field (the first, if it is given twice),
    or None when it sets none or the value is not a string yet."""
    tokens = list(_tokens(config_text))
    depth = 0
    for index, (kind, value) in enumerate(tokens):
        if kind == "punct" and value in _OPENING:
            depth += 1
        elif kind == "punct" and value in _CLOSING:
            depth = max(depth - 1, 0)
        elif (
            depth == 0
            and kind == "word"
            and value == PLATFORM_FIELD
            and (index == 0 or tokens[index - 1] != ("punct", ":"))  # a name, not a value
        ):
            platform = _string_value(tokens, index + 1)
            if platform is not None:
                return platform
    return None


def _tokens(text: str) -> Iterator[tuple[str, str]]:
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        if kind not in ("space", "comment"):
            yield kind, match.group()


def _string_value(tokens: list[tuple[str, str]], index: int) -> str | None:
    """The string after a field name: an optional `:`, then one or more adjacent strings."""
    if index < len(tokens) and tokens[index] == ("punct", ":"):
        index += 1
    parts = []
    while index < len(tokens) and tokens[index][0] == "string":
        parts.append(_unescape(tokens[index][1][1:-1]))
        index += 1
    return "".join(parts) if parts else None


def _unescape(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "x" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        return _ESCAPED.get(code, code)

    return _ESCAPE.sub(one, body)
