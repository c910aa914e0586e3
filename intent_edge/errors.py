"""Errors a user can act on. Each names the file, row, column or field it is about."""

from __future__ import annotations


class IntentEdgeError(Exception):
    """Base class for every error intent-edge raises on purpose."""


class DataError(IntentEdgeError):
    """A data file cannot be used as it is. The message names the file and, where known, row and column."""

    def __init__(self, path: str, message: str, *, row: int | None = None, column: str | None = None,
                 line: int | None = None):
        self.path, self.row, self.column, self.line = str(path), row, column, line
        where = [self.path]
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(", ".join(where) + ": " + message)


class SchemaError(IntentEdgeError):
    """A schema file or a forced column kind is malformed or does not fit the data."""


class RecordError(IntentEdgeError, ValueError):
    """A record handed to the runtime is missing a field or has a value of the wrong type."""

    def __init__(self, field: str, message: str, *, row: int | None = None):
        self.field, self.row, self.detail = field, row, message
        prefix = f"record at index {row}: " if row is not None else ""
        super().__init__(f"{prefix}field '{field}': {message}")


class BundleError(IntentEdgeError):
    """A bundle is missing, damaged, from an unsupported version, or lacks the asked-for variant."""


class BackendUnavailable(IntentEdgeError):
    """The inference library a backend needs is not installed; the message says which extra to add."""


class UsageError(IntentEdgeError, ValueError):
    """An argument or option that cannot be used as given: an unknown name, a value out of range, or one
    that does not apply to the data or bundle it is used with. (A ValueError too, for callers that
    catch that.)"""


class ExportError(IntentEdgeError):
    """A trained model cannot be exported as asked (a layer or setting the export does not support)."""


class SpecError(IntentEdgeError, ValueError):
    """An encoder or sequence spec is malformed or cannot be fitted (a ValueError too, as it was)."""
