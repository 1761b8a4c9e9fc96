"""The one canonical layout of config.pbtxt (pure functions; `goals/fmt.py` runs it on targets).

- Fields in the order Triton's model_config.proto declares them, in every message.
- A repeated field written several times (two `input [...]` lists, or `dims: 1 dims: 2`) becomes
  one list, its items in the order they were written.
- Two spaces per level; messages as `name {`, repeated messages as `name [` with one `{ ... }`
  per item, repeated scalars on one line as `name: [ 1, 2 ]`, map entries (`input_map`,
  `parameters`) one per line as `name { key: ... value: ... }`; a blank line around top-level
  blocks.
- Every comment is kept: a comment above a field moves with it, one after a value on the same
  line stays after it, a comment block at the top of the file separated by a blank line stays
  at the top.
- Values are written as they were (strings keep their quotes and escapes).

The result parses into exactly the message the input parses into; `format_model_config` checks
that before it returns anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Union

from google.protobuf.descriptor import FieldDescriptor
from triton_mme.config.errors import ModelConfigError
from triton_mme.config.parse import parse_model_config
from triton_mme.proto import model_config_pb2

INDENT = "  "

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<word>[\w+\-.]+)
    |(?P<punct>[{}\[\]<>:,;])""",
    re.VERBOSE,
)
_CLOSING = {"{": "}", "<": ">"}


@dataclass(frozen=True)
class Token:
    text: str
    kind: str
    line: int


@dataclass
class Item:
    """One value of a field: a scalar as written, or a message."""

    value: Union[str, "Message"]
    comments: list[str] = field(default_factory=list)  # above it (inside a list)
    trailing: str | None = None  # after it on its line


@dataclass
class Field:
    name: str
    items: list[Item]
    comments: list[str] = field(default_factory=list)  # above the field
    written_as_list: bool = False
    end_comments: list[str] = field(default_factory=list)  # before a list's `]`


@dataclass
class Message:
    fields: list[Field] = field(default_factory=list)
    end_comments: list[str] = field(default_factory=list)  # before its closing bracket


def _tokens(path: str, text: str) -> list[Token]:
    tokens, line, position = [], 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ModelConfigError(path, f"unexpected `{text[position]}`", line=line)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(match.group(), kind, line))
        line += match.group().count("\n")
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.tokens = _tokens(path, text)
        self.position = 0

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise ModelConfigError(self.path, "the file ends inside a block")
        self.position += 1
        return token

    def trailing_comment(self) -> str | None:
        """The comment on the line of the token just taken, if any."""
        token, last = self.peek(), self.tokens[self.position - 1]
        if token is not None and token.kind == "comment" and token.line == last.line:
            self.position += 1
            return token.text
        return None

    def comments(self) -> list[str]:
        found = []
        while (token := self.peek()) is not None and token.kind == "comment":
            found.append(self.take().text)
        return found

    def message(self, closing: str | None) -> Message:
        message, comments = Message(), []
        while True:
            comments += self.comments()
            token = self.peek()
            if token is None or token.text == closing:
                if token is None and closing:
                    raise ModelConfigError(self.path, f"`{closing}` is missing at the end")
                message.end_comments = comments
                if token is not None:
                    self.take()
                return message
            if token.text in ",;":  # Optional separators between fields.
                self.take()
                continue
            message.fields.append(self.field(comments))
            comments = []

    def field(self, comments: list[str]) -> Field:
        name = self.take().text
        if (token := self.peek()) is not None and token.text == ":":
            self.take()
        if (token := self.peek()) is not None and token.text == "[":
            self.take()
            items, end_comments = self.list_items()
            return Field(name, items, comments, True, end_comments)
        value = self.value()
        return Field(name, [Item(value, trailing=self.trailing_comment())], comments)

    def list_items(self) -> tuple[list[Item], list[str]]:
        items: list[Item] = []
        while True:
            comments = self.comments()
            token = self.take()
            if token.text == "]":
                return items, comments
            if token.text == ",":
                if items and items[-1].trailing is None:
                    items[-1].trailing = self.trailing_comment()
                continue
            self.position -= 1
            value = self.value()
            items.append(Item(value, comments, self.trailing_comment()))

    def value(self) -> str | Message:
        token = self.take()
        if token.text in _CLOSING:
            return self.message(_CLOSING[token.text])
        parts = [token.text]
        while token.kind == "string" and (nxt := self.peek()) is not None and nxt.kind == "string":
            parts.append(self.take().text)  # Adjacent strings are one value.
        return " ".join(parts)


def _merged(message: Message, descriptor: Any) -> list[Field]:
    """One field per name, in the proto's order; repeated fields' items concatenated."""
    by_name: dict[str, Field] = {}
    for each in message.fields:
        if each.name not in by_name:
            by_name[each.name] = Field(each.name, [], list(each.comments), each.written_as_list)
            first = True
        else:
            first = False
        merged = by_name[each.name]
        merged.end_comments.extend(each.end_comments)
        items = list(each.items)
        if not first and each.comments and items:
            items[0] = Item(items[0].value, each.comments + items[0].comments, items[0].trailing)
        merged.items.extend(items)
    order = {f.name: f.index for f in descriptor.fields}
    return sorted(by_name.values(), key=lambda f: order.get(f.name, len(order)))


def _is_block(each: Field, descriptor: Any) -> bool:
    fd = descriptor.fields_by_name.get(each.name)
    return fd is not None and fd.type == FieldDescriptor.TYPE_MESSAGE


def _render_message(message: Message, descriptor: Any, depth: int) -> Iterator[str]:
    pad = INDENT * depth
    fields = _merged(message, descriptor)
    for index, each in enumerate(fields):
        block = _is_block(each, descriptor)
        if depth == 0 and index > 0 and (block or _is_block(fields[index - 1], descriptor)):
            yield ""
        yield from (f"{pad}{c}" for c in each.comments)
        yield from _render_field(each, descriptor.fields_by_name.get(each.name), depth)
    yield from (f"{pad}{c}" for c in message.end_comments)


def _with_trailing(line: str, trailing: str | None) -> str:
    return f"{line}  {trailing}" if trailing else line


def _render_field(each: Field, fd: Any, depth: int) -> Iterator[str]:
    pad = INDENT * depth
    repeated = fd is not None and fd.label == FieldDescriptor.LABEL_REPEATED
    if fd is not None and fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        yield from _render_map(each, fd, depth)
        return
    if fd is not None and fd.type == FieldDescriptor.TYPE_MESSAGE:
        if not repeated:
            yield from _render_block(f"{pad}{each.name} ", each.items[0], fd.message_type, depth)
            return
        yield f"{pad}{each.name} ["
        for index, item in enumerate(each.items):
            yield from (f"{pad}{INDENT}{c}" for c in item.comments)
            last = index == len(each.items) - 1
            yield from _render_block(
                f"{pad}{INDENT}", item, fd.message_type, depth + 1, "" if last else ","
            )
        yield from (f"{pad}{INDENT}{c}" for c in each.end_comments)
        yield f"{pad}]"
        return
    if not repeated and not each.written_as_list:
        yield _with_trailing(f"{pad}{each.name}: {each.items[0].value}", each.items[0].trailing)
        return
    comments = [c for item in each.items for c in item.comments] + each.end_comments
    trailing = [item.trailing for item in each.items if item.trailing]
    values = ", ".join(str(item.value) for item in each.items)
    yield from (f"{pad}{c}" for c in comments)
    yield _with_trailing(f"{pad}{each.name}: [ {values} ]", "  ".join(trailing) or None)


def _inline(message: Message) -> str | None:
    """`{ key: "a" value { string_value: "b" } }` for a message without comments, else None."""
    parts = []
    for each in message.fields:
        if each.comments or each.end_comments or len(each.items) != 1 or each.written_as_list:
            return None
        item = each.items[0]
        if item.comments or item.trailing:
            return None
        if isinstance(item.value, Message):
            inner = _inline(item.value)
            if inner is None:
                return None
            parts.append(f"{each.name} {inner}")
        else:
            parts.append(f"{each.name}: {item.value}")
    return f"{{ {' '.join(parts)} }}" if parts and not message.end_comments else None


def _render_map(each: Field, fd: Any, depth: int) -> Iterator[str]:
    """Map entries (`input_map`, `parameters`) one per line, as Triton's docs write them."""
    pad = INDENT * depth
    for item in each.items:
        assert isinstance(item.value, Message)
        yield from (f"{pad}{c}" for c in item.comments)
        inline = _inline(item.value)
        if inline is None:
            yield from _render_block(f"{pad}{each.name} ", item, fd.message_type, depth)
        else:
            yield _with_trailing(f"{pad}{each.name} {inline}", item.trailing)
    yield from (f"{pad}{c}" for c in each.end_comments)


def _render_block(
    prefix: str, item: Item, descriptor: Any, depth: int, comma: str = ""
) -> Iterator[str]:
    message = item.value
    assert isinstance(message, Message)
    body = list(_render_message(message, descriptor, depth + 1))
    if not body:
        yield _with_trailing(f"{prefix}{{ }}{comma}", item.trailing)
        return
    yield f"{prefix}{{"
    yield from body
    yield _with_trailing(f"{INDENT * depth}}}{comma}", item.trailing)


def _split_header(message: Message, text: str) -> list[str]:
    """The comment lines at the top of the file up to its last blank line before the first
    field: a file header, which stays on top whatever field comes first."""
    prefix = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        prefix.append(line.strip())
    while prefix and prefix[-1]:
        prefix.pop()  # Comments right above the first field belong to it.
    header = [line for line in prefix if line]
    if message.fields and header:
        message.fields[0].comments = message.fields[0].comments[len(header) :]
    else:
        message.end_comments = message.end_comments[len(header) :]
    text_lines = "\n".join(prefix).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text_lines).splitlines() if text_lines else []


def format_model_config(path: str, text: str) -> str:
    """config.pbtxt in the canonical layout; raises ModelConfigError for a config that does not
    parse (the formatter never guesses)."""
    before = parse_model_config(path, text).message
    message = _Parser(path, text).message(None)
    header = _split_header(message, text)
    descriptor = model_config_pb2.ModelConfig.DESCRIPTOR  # type: ignore[attr-defined]
    body = list(_render_message(message, descriptor, 0))
    lines = header + ([""] if header and body else []) + body
    formatted = "\n".join(lines).strip("\n") + "\n"
    after = parse_model_config(path, formatted).message
    if after != before:
        raise ModelConfigError(
            path, "the formatter would change what this config means; it was left as it is"
        )
    return formatted
