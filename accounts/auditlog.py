"""The audit log (the ``audit`` logger) as JSON lines: one record per event that no input can
split, kept for 180 days (MLPS).

Every call site stays as it is, ``audit.info("login failed user=%s ip=%s", login, ip)``: the
words before the first placeholder name the event and each ``key=%s`` becomes a field, so the
line is ``{"time": …, "level": "WARNING", "event": "login failed", "user": …, "ip": …}`` with the
keys in that order. ``json.dumps`` escapes CR, LF, NUL and the other C0 controls; ``safe_json``
then escapes what it leaves as is and a reader could still take for a line break or hide text
with (DEL, the C1 controls such as NEL U+0085, U+2028/U+2029, bidi and other format characters,
lone surrogates). ``EscapeControls`` does the same, visibly, to the message's own arguments, for
any other handler that formats the plain message (the console in development, test captures).

Nothing here imports Django: ``LOGGING`` loads it before the apps are ready.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

RESERVED = ("time", "level", "event")
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# A %-placeholder, with the ``key=`` before it when there is one; ``%%`` is a literal percent.
PLACEHOLDER = re.compile(
    r"(?:(?P<key>[A-Za-z_][\w.-]*)=)?%(?:\((?P<name>\w+)\))?[-#0 +]*\d*(?:\.\d+)?"
    r"(?P<conv>[diouxXeEfFgGcrsa%])"
)
VISIBLE = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _unsafe(char: str) -> bool:
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return True
    return code > 0x7F and unicodedata.category(char) in UNSAFE_CATEGORIES


def _json_escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # JSON escapes are UTF-16: a pair of surrogates
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def safe_json(text: str) -> str:
    """``text`` (JSON from ``json.dumps(..., ensure_ascii=False)``) with every control, format
    and line-separator character left in it written as a ``\\uXXXX`` escape. Those can only be
    inside strings (JSON's own syntax is printable ASCII), so the result is the same JSON."""
    if text.isascii() and "\x7f" not in text:
        return text
    return "".join(_json_escape(c) if _unsafe(c) else c for c in text)


def escape_controls(text: str) -> str:
    """``text`` on one line, readable: CR, LF and tab as ``\\r \\n \\t``, a backslash doubled,
    every other control, format or separator character as ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN``;
    Chinese and every other printable character as itself."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        if char in VISIBLE:
            out.append(VISIBLE[char])
        elif _unsafe(char):
            code = ord(char)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def _value(value: Any) -> Any:
    """A field's value: numbers, booleans and None as themselves, anything else as its text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def fields_of(msg: Any, args: Any) -> tuple[str, list[tuple[str, Any]], bool]:
    """The event name and the ``(key, value)`` fields of a ``"event key=%s key=%s"`` call, and
    whether the template said everything in that shape (else the whole message is kept too)."""
    template = msg if isinstance(msg, str) else str(msg)
    placeholders = [m for m in PLACEHOLDER.finditer(template) if m["conv"] != "%"]
    if isinstance(args, Mapping):
        values = [(m["key"] or m["name"] or "arg", args.get(m["name"])) for m in placeholders]
    elif not args:  # logging leaves a message without arguments as it is: all event
        return template.strip() or "message", [], True
    else:
        args = tuple(args)
        if len(placeholders) != len(args):
            return template.replace("%%", "%").strip(), [("args", list(args))], False
        values = []
        unnamed = 0
        for match, value in zip(placeholders, args, strict=True):
            key = match["key"]
            if not key:
                unnamed += 1
                key = "id" if unnamed == 1 else f"arg{unnamed}"
            values.append((key, value))
    first = placeholders[0].start() if placeholders else len(template)
    event = template[:first].replace("%%", "%").strip()
    rest = PLACEHOLDER.sub("", template[first:]).strip()
    fields: list[tuple[str, Any]] = []
    taken = set(RESERVED)
    for key, value in values:
        name = key
        if name in taken:  # e.g. "acceptance … event=%s": the acceptance's own event
            name = f"{event.replace(' ', '_') or 'field'}_{key}"
        while name in taken:
            name += "_"
        taken.add(name)
        fields.append((name, _value(value)))
    return event or "message", fields, not rest


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, local time with its offset), level, event, the
    call's fields in the order it wrote them, then an exception's traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        msg = getattr(record, "audit_msg", record.msg)
        args = getattr(record, "audit_args", record.args)
        event, fields, complete = fields_of(msg, args)
        when = datetime.fromtimestamp(record.created).astimezone()
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "event": event,
        }
        entry.update(fields)
        if not complete:
            try:
                message = str(msg) % args if args else str(msg)
            except (TypeError, ValueError, KeyError):
                message = str(msg)
            entry["message"] = message
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return safe_json(json.dumps(entry, ensure_ascii=False, default=str))


class EscapeControls(logging.Filter):
    """On the ``audit`` logger: the message and its arguments with control characters escaped
    (``escape_controls``), so that whatever handler formats ``record.getMessage()`` writes one
    line. The originals stay on the record for ``JsonLinesFormatter``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "audit_args"):  # already done (a second logger on the way)
            return True
        record.audit_msg, record.audit_args = record.msg, record.args
        if isinstance(record.msg, str):
            record.msg = escape_controls(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {k: _escaped(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(_escaped(v) for v in record.args)
        return True


def _escaped(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return escape_controls(str(value))
