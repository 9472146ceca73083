"""Reading TOML tables with key paths: every problem reported, none fatal.

:class:`TableReader` reads one table of a parsed TOML document. Its getters check
types, report missing and unknown keys against the key path (``phases[3].gates[0]``)
and always return a value, so a caller reads on and a user sees every problem of
a file in one run. Used for definition files and demo scenarios.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

# Ids appear on the command line and in event payloads: keep them plain.
ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SYNTAX_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_DATE_LIKE = re.compile(r"\d{4}-\d\d-\d\d")


def syntax_problem(message: str) -> str:
    # tomllib (3.11) puts the position only in the message text: move it to the front,
    # where a key path would be, so every problem reads "<where>: <what>".
    found = _SYNTAX_AT.search(message)
    if found is None:
        return f"TOML syntax error: {message}"
    line, column = found.groups()
    return f"line {line}, column {column}: TOML syntax error: {message[: found.start()]}"


def describe(value: object) -> str:
    if isinstance(value, list | dict):
        return "an array" if isinstance(value, list) else "a table"
    # tomllib builds exactly these types (no subclasses), so a lookup by type is enough.
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", date: "a date"}
    kind = kinds.get(type(value), "a date-time" if isinstance(value, datetime) else "a time")
    return f"{kind} ({repr(value) if isinstance(value, str) else str(value).lower()})"


def unknown_name(what: str, name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"unknown {what} '{name}'" + (f" (did you mean '{close[0]}'?)" if close else "")


class TableReader:
    """One TOML table being read: it knows its key path, reports problems against it, and
    remembers which keys were read so that :meth:`finish` can report the rest as unknown.

    Getters never fail: a missing or wrong value is reported and a placeholder returned, so
    the caller can go on reading and every problem of the file is found in one run.
    :meth:`ok` tells whether keys were valid, to avoid follow-on complaints about placeholders.
    """

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[str], quiet: bool = False) -> None:
        self._data = data
        self.path = path
        self._problems = problems
        self._quiet = quiet  # a table that is missing altogether was reported once already
        self._read: set[str] = set()
        self._bad: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str, message: str) -> None:
        self._bad.add(key.split("[")[0])
        self._problems.append(f"{self.at(key)}: {message}")

    def ok(self, *keys: str) -> bool:
        return not self._bad.intersection(keys)

    def _get(self, key: str, accepts: type, what: str, required: bool) -> Any:
        self._read.add(key)
        if key not in self._data:
            if required:
                self._bad.add(key)
                if not self._quiet:
                    self.problem(key, "missing required key")
            return None
        value = self._data[key]
        # bool is an int and datetime is a date in Python, not in TOML: refuse them explicitly.
        if type(value) is not accepts and (isinstance(value, bool | datetime) or not isinstance(value, accepts)):
            hint = ""
            if accepts is date and isinstance(value, str) and _DATE_LIKE.fullmatch(value):
                hint = " (write TOML dates without quotes)"
            self.problem(key, f"expected {what}, got {describe(value)}{hint}")
            return None
        return value

    def text(self, key: str, default: str | None = None) -> str:
        """A string; required unless a ``default`` is given."""
        value = self._get(key, str, "a string", required=default is None)
        return value if value is not None else (default or "")

    def optional_text(self, key: str) -> str | None:
        return cast("str | None", self._get(key, str, "a string", required=False))

    def ident(self, key: str = "id") -> str:
        value = self.text(key)
        if self.ok(key) and not ID_PATTERN.fullmatch(value):
            self.problem(key, f"'{value}' is not a valid id (lower-case letters, digits and single hyphens)")
        return value

    def choice(self, key: str, options: Sequence[str], default: str | None = None) -> str:
        value = self.text(key, default)
        if self.ok(key) and value not in options:
            self.problem(key, f"'{value}' is not one of {', '.join(repr(o) for o in options)}")
        return value

    def day(self, key: str) -> date:
        value = self._get(key, date, "a date (like 2019-10-04)", required=True)
        return value if value is not None else date.min

    def optional_day(self, key: str) -> date | None:
        return cast("date | None", self._get(key, date, "a date (like 2019-10-04)", required=False))

    def integer(self, key: str, default: int | None = None, minimum: int | None = None) -> int:
        value = self._get(key, int, "an integer", required=default is None)
        if value is not None and minimum is not None and value < minimum:
            self.problem(key, f"must be at least {minimum}, got {value}")
        return value if value is not None else (default or 0)

    def optional_integer(self, key: str, minimum: int | None = None) -> int | None:
        value = self._get(key, int, "an integer", required=False)
        if value is not None and minimum is not None and value < minimum:
            self.problem(key, f"must be at least {minimum}, got {value}")
        return cast("int | None", value)

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, bool, "true or false", required=False)
        return value if value is not None else default

    def names(self, key: str, default: tuple[str, ...] | None = None, non_empty: bool = False) -> tuple[str, ...]:
        """An array of strings without repeats; required unless a ``default`` is given."""
        value = self._get(key, list, "an array of strings", required=default is None)
        if value is None:
            return default or ()
        found: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(f"{key}[{index}]", f"expected a string, got {describe(item)}")
                item = ""  # a placeholder keeps later items at their index for key paths
            elif item in found:
                self.problem(f"{key}[{index}]", f"'{item}' is listed twice")
            found.append(item)
        if non_empty and not value:
            self.problem(key, "must not be empty")
        return tuple(found)

    def tables(self, key: str, required: bool = False) -> list[TableReader]:
        """The entries of an array of tables (``[[key]]``), one reader each, in order."""
        value = self._get(key, list, f"an array of tables ([[{self.at(key)}]])", required=required)
        if value is None:
            return []
        if required and not value:
            self.problem(key, "must have at least one entry")
        readers = []
        for index, item in enumerate(value):
            path = f"{self.at(key)}[{index}]"
            if not isinstance(item, dict):
                self._problems.append(f"{path}: expected a table, got {describe(item)}")
                # Still one reader per entry, so indices keep matching the file.
                readers.append(TableReader({}, path, self._problems, quiet=True))
            else:
                readers.append(TableReader(item, path, self._problems))
        return readers

    def table(self, key: str) -> TableReader | None:
        """An optional sub-table (``[key]`` or an inline table), or None when absent."""
        value = self._get(key, dict, f"a table ([{self.at(key)}])", required=False)
        return TableReader(value, self.at(key), self._problems) if value is not None else None

    def required_table(self, key: str) -> TableReader:
        """A sub-table that must be there; when it is not, an empty one that reports nothing more."""
        value = self._get(key, dict, f"a table ([{self.at(key)}])", required=True)
        return TableReader(value if value is not None else {}, self.at(key), self._problems, quiet=value is None)

    def finish(self) -> None:
        """Report every key that no getter asked for: usually a typo."""
        for key in self._data:
            if key not in self._read:
                self._problems.append(f"{self.at(key)}: {unknown_name('key', key, self._read)}")
