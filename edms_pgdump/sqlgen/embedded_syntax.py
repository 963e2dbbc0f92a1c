"""The syntax of ``embedded_references:``: ids written inside JSON or text.

Why a syntax of our own: the export and the import rewrite the value in place, set-based
in PostgreSQL, and PostgreSQL's jsonpath can find values but not replace them. So the
path is a small subset of SQL/JSON path that the SQL generator can walk both ways:

    path  := '$' step*
    step  := '.' name | '."quoted name"'     a member of an object
           | '[*]'                           each element of an array
           | '?' '(' cond ('&&' cond)* ')'   keep the item only if every condition holds
           | '.json()'                       a string here holds JSON: parse it
    cond  := '@' ('.' name)* '==' literal    literal: "string", number, true, false, null

A text pattern is a regular expression (PostgreSQL's) with exactly one capturing group,
the id: ``<a linktype="page" id="(\\d+)"``. It applies to a text column, or, with a JSON
path, to the strings the path selects (rich text inside a StreamField block).

This module only parses (it imports nothing of the planner, so the mapping can use it);
``sqlgen/embedded.py`` writes the SQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from edms_pgdump.catalog.names import QualifiedName

StepKind = Literal["member", "each", "filter", "parse"]


class SyntaxProblem(ValueError):
    """What is wrong with a path or a pattern (the mapping adds where it is)."""


@dataclass(frozen=True)
class Condition:
    path: tuple[str, ...]  # members under the item (@.type -> ("type",))
    value: str  # the literal as JSON text ('"image"', '12', 'true')


@dataclass(frozen=True)
class Step:
    kind: StepKind
    key: str = ""  # member
    conditions: tuple[Condition, ...] = ()  # filter


@dataclass(frozen=True)
class TextPattern:
    """``before(capture)after``: the parts around the one capturing group."""

    text: str
    before: str
    capture: str
    after: str


@dataclass(frozen=True)
class EmbeddedReference:
    """Ids of ``table`` (by ``target_column``, default its primary key) inside ``column``:
    at the places ``path`` selects (None: the whole value), each one the id itself, or,
    with a ``pattern``, the capture of each match inside the string there."""

    column: str
    table: QualifiedName
    path: str | None
    steps: tuple[Step, ...]
    pattern: TextPattern | None
    target_column: str | None = None

    @property
    def label(self) -> str:
        how = self.path or ""
        if self.pattern is not None:
            how = (how + " " if how else "") + f"pattern {self.pattern.text!r}"
        return f"{self.column} {how} -> {self.table}".replace("  ", " ")

    def to_dict(self) -> dict[str, str]:
        out = {"column": self.column, "table": str(self.table)}
        if self.path is not None:
            out["json"] = self.path
        if self.pattern is not None:
            out["pattern"] = self.pattern.text
        if self.target_column is not None:
            out["target_column"] = self.target_column
        return out


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.i)

    def take(self, token: str) -> bool:
        if self.peek(token):
            self.i += len(token)
            return True
        return False

    def expect(self, token: str, what: str) -> None:
        if not self.take(token):
            raise SyntaxProblem(f"expected {what} at character {self.i + 1} of {self.text!r}")

    def string(self) -> str:
        self.skip()
        m = re.compile(r'"(?:[^"\\]|\\.)*"').match(self.text, self.i)
        if m is None:
            raise SyntaxProblem(f"unterminated string at character {self.i + 1} of {self.text!r}")
        self.i = m.end()
        value = json.loads(m.group(0))
        assert isinstance(value, str)
        return value

    def name(self) -> str:
        self.skip()
        if self.peek('"'):
            return self.string()
        m = _NAME.match(self.text, self.i)
        if m is None:
            raise SyntaxProblem(f"expected a member name at character {self.i + 1} of {self.text!r}")
        self.i = m.end()
        return m.group(0)

    def literal(self) -> str:
        self.skip()
        if self.peek('"'):
            return json.dumps(self.string())
        for word in ("true", "false", "null"):
            if self.take(word):
                return word
        m = _NUMBER.match(self.text, self.i)
        if m is None:
            raise SyntaxProblem(
                f'expected a literal ("text", a number, true, false or null) at character {self.i + 1} '
                f"of {self.text!r}"
            )
        self.i = m.end()
        return m.group(0)


def parse_path(text: str) -> tuple[Step, ...]:
    """The steps of a JSON path (the grammar is in the module's docstring)."""
    r = _Reader(text)
    r.expect("$", "'$' (the value itself) first")
    steps: list[Step] = []
    while True:
        r.skip()
        if r.i >= len(text):
            return tuple(steps)
        if r.take("[*]"):
            steps.append(Step("each"))
        elif r.take(".json()"):
            steps.append(Step("parse"))
        elif r.take("."):
            steps.append(Step("member", r.name()))
        elif r.take("?"):
            r.expect("(", "'(' after '?'")
            conds: list[Condition] = []
            while True:
                r.expect("@", "'@' (the item) to start a condition")
                members: list[str] = []
                while r.take("."):
                    members.append(r.name())
                r.expect("==", "'==' (the only comparison)")
                conds.append(Condition(tuple(members), r.literal()))
                if r.take(")"):
                    break
                r.expect("&&", "'&&' or ')'")
            steps.append(Step("filter", conditions=tuple(conds)))
        else:
            raise SyntaxProblem(
                f"unexpected {text[r.i : r.i + 10]!r} at character {r.i + 1} of {text!r}; "
                'a step is .name, ."name", [*], ? (@.name == "value") or .json()'
            )


def split_pattern(text: str) -> TextPattern:
    """The pattern around its one capturing group; refused: no group or several, a
    backreference, an alternative ``|`` outside any group (wrap it in ``(?:…)``)."""
    if not text:
        raise SyntaxProblem("the pattern is empty")
    try:
        re.compile(text)
    except re.error as exc:
        raise SyntaxProblem(f"{text!r} is not a regular expression ({exc})") from None
    groups: list[tuple[int, int]] = []
    stack: list[tuple[int, bool]] = []
    i, depth_bar = 0, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 < len(text) and text[i + 1].isdigit() and text[i + 1] != "0":
                raise SyntaxProblem(f"{text!r}: backreferences are not allowed")
            i += 2
            continue
        if c == "[":  # a bracket expression: parentheses inside are characters
            j = i + 1
            if j < len(text) and text[j] == "^":
                j += 1
            if j < len(text) and text[j] == "]":
                j += 1
            while j < len(text) and text[j] != "]":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            capturing = not text.startswith("(?", i)
            stack.append((i, capturing))
        elif c == ")" and stack:
            start, capturing = stack.pop()
            if capturing:
                groups.append((start, i))
        elif c == "|" and not stack:
            depth_bar = True
        i += 1
    if len(groups) != 1:
        raise SyntaxProblem(
            f"{text!r} has {len(groups)} capturing groups; it needs exactly one, around the id "
            "(write other groups as (?:...))"
        )
    if depth_bar:
        raise SyntaxProblem(f"{text!r}: an alternative '|' outside a group; wrap the alternatives in (?:...)")
    start, end = groups[0]
    return TextPattern(text, text[:start], text[start + 1 : end], text[end + 1 :])
