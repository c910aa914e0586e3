"""Which columns are features, of which kind, and which one is the label.

Kinds are inferred from the data unless a schema file forces them:

* ``categorical``: text columns and boolean columns; integer columns whose name ends in a code-like
  word (``type``, ``code``, ``id``, ``region``, ``browser``, ``system(s)``, ``os``, ``category``,
  ``channel``, ``source``, ``country``, ``store``, ``device``, ``segment``). An integer column is a
  count (numeric) unless its name says it is a code, because a wrong "numeric" guess still trains
  while a wrong "categorical" guess cannot order its values at all; force the kind when the name misleads.
* ``numeric``: every other integer or floating-point column. A text column whose non-empty values are
  at least 90% numbers is numeric with stray text in it, which is an error naming the first bad row.
* ``ignore``: columns forced so, and text columns that look like identifiers (over half the values
  distinct, at least 100 rows): a session id would only teach the model to memorise.

The UCI Online Shoppers layout is recognised by its column names and gets :data:`UCI_SCHEMA`.

A schema file is JSON::

    {"label": "Revenue",
     "columns": {"Browser": "categorical", "PageValues": {"kind": "numeric", "transform": "log1p"},
                 "session_id": "ignore"}}

Columns it does not name are inferred as above; ``transform`` is ``auto``, ``log1p`` or ``identity``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("numeric", "categorical", "ignore")
_CODE_NAME = re.compile(
    r"(type|types|code|codes|id|region|browser|systems?|os|category|channel|source|country|store|device|segment)$",
    re.IGNORECASE)


@dataclass(frozen=True)
class Schema:
    """The label and, in column order, each feature's kind and (for numeric ones) transform."""

    label: str
    kinds: dict[str, str]
    transforms: dict[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    def to_json(self) -> dict:
        return {"label": self.label, "kinds": self.kinds, "transforms": self.transforms,
                "ignored": list(self.ignored)}

    @classmethod
    def from_json(cls, data: dict) -> Schema:
        return cls(data["label"], dict(data["kinds"]), dict(data.get("transforms", {})),
                   tuple(data.get("ignored", ())))


_UCI_COUNTS = ("Administrative", "Informational", "ProductRelated")
_UCI_DURATIONS = ("Administrative_Duration", "Informational_Duration", "ProductRelated_Duration")
UCI_COLUMNS = (
    "Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
    "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues", "SpecialDay",
    "Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType", "Weekend", "Revenue",
)
#: The UCI Online Shoppers layout: page counts, durations and PageValues are heavy tailed (log1p);
#: OperatingSystems, Browser, Region and TrafficType are codes, not quantities.
UCI_SCHEMA = Schema(
    label="Revenue",
    kinds={**dict.fromkeys(UCI_COLUMNS[:10], "numeric"),
           **dict.fromkeys(UCI_COLUMNS[10:17], "categorical")},
    transforms={**dict.fromkeys(_UCI_COUNTS + _UCI_DURATIONS + ("PageValues",), "log1p"),
                "BounceRates": "identity", "ExitRates": "identity", "SpecialDay": "identity"},
)


def is_uci_layout(columns) -> bool:
    return set(UCI_COLUMNS[:17]) <= set(columns)


def load_schema_file(path: str | Path) -> dict:
    """Read and check a schema file; returns ``{"label": str | None, "columns": {name: (kind, transform)}}``."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        from intent_edge.errors import SchemaError
        raise SchemaError(f"schema file {path}: cannot read it as JSON ({exc})") from None
    return _check_schema_overrides(raw, str(path))


def _check_schema_overrides(raw, source: str) -> dict:
    from intent_edge.errors import SchemaError
    if not isinstance(raw, dict) or not isinstance(raw.get("columns", {}), dict):
        raise SchemaError(f"schema file {source}: expected an object with a 'columns' object")
    columns = {}
    for name, entry in raw.get("columns", {}).items():
        kind, transform = ((entry, "auto") if isinstance(entry, str)
                           else (entry.get("kind"), entry.get("transform", "auto")))
        if kind not in KINDS:
            raise SchemaError(f"schema file {source}: column '{name}': kind must be one of {KINDS}, got {kind!r}")
        if transform not in ("auto", "log1p", "identity"):
            raise SchemaError(f"schema file {source}: column '{name}': transform must be auto, log1p or identity, "
                              f"got {transform!r}")
        columns[name] = (kind, transform)
    return {"label": raw.get("label"), "columns": columns}


def guess_kind(name: str, values) -> str:
    """Infer one column's kind from its name and a pandas Series of its values (see module docstring)."""
    import pandas as pd

    series = values
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_integer_dtype(series):
        return "categorical" if _CODE_NAME.search(name) else "numeric"
    if pd.api.types.is_float_dtype(series):
        present = series.dropna()
        integral = len(present) > 0 and bool((present == present.round()).all())
        return "categorical" if integral and _CODE_NAME.search(name) else "numeric"
    present = series.dropna().astype(str).str.strip()
    present = present[present != ""]
    if len(present) and pd.to_numeric(present, errors="coerce").notna().mean() >= 0.9:
        return "numeric"  # numbers with stray text: the loader reports the first bad row
    if len(present) >= 100 and present.nunique() > 0.5 * len(present):
        return "ignore"
    return "categorical"
