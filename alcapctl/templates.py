"""Templates of the TOMLs (``{data}/tree/v{version}/tree{run:05d}.root``, the job command):
which fields they use, whether their format specs suit the fields' types, and how the
job command becomes shell text.

The job command never has a value pasted into it.  Each field becomes a double-quoted
expansion of an environment variable (``{input}`` -> ``"$ALCAPCTL_INPUT"``) that the job
script exports, quoted once by ``shlex.quote``; whatever a value holds (spaces, quotes,
``$(...)``, ``;``) stays one word of data.  A field the template itself puts inside
quotes would no longer be one word, so such a template is refused with a hint.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "check_fields",
    "check_types",
    "quoted_fields",
    "shell_command",
    "template_fields",
]

_PREFIX = "ALCAPCTL_"
_FORMATTER = string.Formatter()


def _parsed(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise ValueError(f"malformed template {template!r}: {exc}") from None


def template_fields(template: str) -> set[str]:
    """The top-level field names ``template`` uses (``run`` for ``{run:05d}``)."""
    return {_root(f) for _, f, _, _ in _parsed(template) if f is not None}


def _root(field: str) -> str:
    return field.split(".")[0].split("[")[0]


def check_fields(template: str, allowed: frozenset[str] | set[str]) -> str:
    """``template`` if it uses only ``allowed`` fields; ValueError naming the others."""
    unknown = template_fields(template) - set(allowed)
    if "" in unknown:
        raise ValueError(f"template {template!r} has an empty field {{}}; name the field")
    if unknown:
        raise ValueError(
            f"template {template!r} uses unknown field(s) {sorted(unknown)}; "
            f"allowed: {sorted(allowed)}"
        )
    return template


def check_types(template: str, samples: Mapping[str, Any]) -> str:
    """``template`` if every field's format spec suits its value's type in ``samples``
    (``{run:05d}`` an integer, ``{tag:>10}`` a string); ValueError naming the field.

    A field whose sample is None is not available here (``{base}`` of an alcapana
    production)."""
    for _, name, spec, conversion in _parsed(template):
        if name is None:
            continue
        if samples.get(_root(name)) is None:
            raise ValueError(f"template {template!r}: field {{{name}}} has no value here")
        shown = "{" + name + (f"!{conversion}" if conversion else "") + f":{spec}}}"
        try:
            value, _ = _FORMATTER.get_field(name, (), samples)
            _FORMATTER.format_field(_FORMATTER.convert_field(value, conversion), spec or "")
        except (ValueError, TypeError, AttributeError, LookupError) as exc:
            kind = type(samples[_root(name)]).__name__
            raise ValueError(
                f"template {template!r}: {shown} does not fit the field, a {kind} ({exc})"
            ) from None
    return template


def _quote_states(literal: str, state: str) -> str:
    """The shell quoting state (``''``, ``"'"`` or ``'"'``) after ``literal``."""
    escaped = False
    for char in literal:
        if escaped:
            escaped = False
        elif char == "\\" and state != "'":
            escaped = True
        elif state == "" and char in "'\"":
            state = char
        elif char == state:
            state = ""
    return state


def quoted_fields(command: str) -> list[str]:
    """Fields of ``command`` that sit inside single or double quotes, as written."""
    state, inside = "", []
    for literal, name, spec, conversion in _parsed(command):
        state = _quote_states(literal, state)
        if name is not None and state:
            inside.append(
                state
                + "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
                + state
            )
    return inside


def _variable(name: str) -> str:
    return _PREFIX + re.sub(r"\W", "_", name).upper()


def _formatted(
    command: str, values: Mapping[str, Any]
) -> Iterator[tuple[str, str | None, str | None]]:
    """(literal text, variable name, its value) for each piece of ``command``."""
    variants: dict[str, list[str]] = {}
    for literal, name, spec, conversion in _parsed(command):
        if name is None:
            yield literal, None, None
            continue
        value, _ = _FORMATTER.get_field(name, (), values)
        text = _FORMATTER.format_field(_FORMATTER.convert_field(value, conversion), spec or "")
        base = _variable(name)
        if text == str(value) and "." not in name and "[" not in name:
            yield literal, base, text
            continue
        seen = variants.setdefault(base, [])
        if text not in seen:
            seen.append(text)
        yield literal, f"{base}_{seen.index(text) + 1}", text


def shell_command(command: str, values: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """``command`` with each field as ``"$ALCAPCTL_<FIELD>"``, and the variables to export:
    every value of ``values`` (None left out) and each field formatted by its spec
    (``{run:05d}`` -> ``ALCAPCTL_RUN_1``)."""
    variables = {_variable(k): str(v) for k, v in values.items() if v is not None}
    pieces = []
    for literal, name, text in _formatted(command, values):
        pieces.append(literal)
        if name is not None and text is not None:
            variables[name] = text
            pieces.append(f'"${name}"')
    return "".join(pieces), variables
