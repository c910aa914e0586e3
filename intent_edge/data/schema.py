"""Which columns are features, of which kind, and which one is the label.

Each column gets a role, inferred from the data unless a schema file forces it, and in this order:

* ``constant``: one value in every row (empty counts as a value): dropped, with a note.
* ``identifier``: a column named exactly ``id``, ``uuid`` or ``key`` (any case), or a text or integer
  column of at least 20 values of which at least 95% are distinct: ignored, with a note. An identifier
  would only teach the model to memorise rows. This rule comes before the code-word rule below, so an
  integer ``ID`` with a distinct value per row is not taken as a code.
* ``date``: text in which at least 90% of the values are dates or date-times (ISO 8601, day-first or
  month-first with ``-``, ``/`` or ``.``), or numbers whose name says date or time and whose values are
  epoch seconds, milliseconds or microseconds (from 1973 on): ignored this round, with a note. The
  runtime never parses dates; derived calendar features can come later.
* otherwise a feature, of a kind:

  * ``categorical``: text columns and boolean columns; integer columns whose name ends in a code-like
    word (``type``, ``code``, ``id``, ``region``, ``browser``, ``system(s)``, ``os``, ``category``,
    ``channel``, ``source``, ``country``, ``store``, ``device``, ``segment``). An integer column is a
    count (numeric) unless its name says it is a code, because a wrong "numeric" guess still trains
    while a wrong "categorical" guess cannot order its values at all; force the kind when the name
    misleads.
  * ``numeric``: every other integer or floating-point column. A text column whose non-empty values
    are at least 90% numbers is numeric with stray text in it, which is an error naming the first bad row.
  * ``ignore``: text columns with over half their values distinct (at least 100 rows), which a
    vocabulary cannot learn from.

The UCI Online Shoppers layout is recognised by its column names and gets :data:`UCI_SCHEMA`.

A schema file is JSON::

    {"label": "Revenue",
     "columns": {"Browser": "categorical", "PageValues": {"kind": "numeric", "transform": "log1p"},
                 "session_id": "identifier", "signup": "date", "notes": "ignore"}}

Columns it does not name are inferred as above; ``transform`` is ``auto``, ``log1p`` or ``identity``;
``identifier``, ``date`` and ``ignore`` all leave the column out, with that reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("numeric", "categorical", "ignore", "identifier", "date")
FEATURE_KINDS = ("numeric", "categorical")
IDENTIFIER_NAMES = {"id", "uuid", "key"}
IDENTIFIER_MIN_VALUES = 20
IDENTIFIER_DISTINCT_SHARE = 0.95
DATE_SHARE = 0.9
_DATE_NAME = re.compile(r"date|time|timestamp|(^|_)(at|ts|epoch)$", re.IGNORECASE)
_DATE_SHAPE = re.compile(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?$")
# the text layouts tried, each over the whole column at once; the one that reads the most values wins
_DATE_FORMATS = ("ISO8601", *(f"{day}{time}" for day in ("%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y", "%m-%d-%Y")
                              for time in ("", " %H:%M", " %H:%M:%S")))
_EPOCH_FROM_SECONDS = 1e8  # 1973-03-03 in epoch seconds: smaller numbers are durations, not instants
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
    reasons: dict[str, str] = field(default_factory=dict)  # why each ignored column was left out

    @property
    def features(self) -> list[str]:
        return list(self.kinds)

    def to_json(self) -> dict:
        return {"label": self.label, "kinds": self.kinds, "transforms": self.transforms,
                "ignored": list(self.ignored), "reasons": self.reasons}

    @classmethod
    def from_json(cls, data: dict) -> Schema:
        return cls(data["label"], dict(data["kinds"]), dict(data.get("transforms", {})),
                   tuple(data.get("ignored", ())), dict(data.get("reasons", {})))


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


def infer_role(name: str, values) -> tuple[str, str | None]:
    """A column's kind (see :data:`KINDS`) and, for one left out, why (see the module docstring)."""
    import pandas as pd

    present = values.dropna()
    if values.nunique(dropna=False) <= 1:
        shown = "empty" if present.empty else repr(present.iloc[0])
        return "ignore", f"constant: {shown} in every row"
    if name.strip().lower() in IDENTIFIER_NAMES:
        return "identifier", f"an identifier by its name ({name})"
    integral = pd.api.types.is_integer_dtype(values) or (
        pd.api.types.is_float_dtype(values) and len(present) > 0 and bool((present == present.round()).all()))
    text = not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if text and guess_kind(name, values) == "numeric":
        return "numeric", None  # numbers written as text (with stray text, which the loader reports)
    if (integral or text) and len(present) >= IDENTIFIER_MIN_VALUES:
        distinct = present.astype(str).nunique() if text else present.nunique()
        if distinct >= IDENTIFIER_DISTINCT_SHARE * len(present):
            return "identifier", f"an identifier: {distinct:,} distinct values in {len(present):,}"
    if text:
        layout = _date_layout(present.astype(str))
        if layout is not None:
            return "date", f"dates ({layout}); the runtime does not parse dates"
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) \
            and _DATE_NAME.search(name) and len(present) and float(present.median()) >= _EPOCH_FROM_SECONDS:
        return "date", "epoch times by its name and magnitude; the runtime does not parse dates"
    kind = guess_kind(name, values)
    if kind == "ignore":
        return kind, f"text with {present.astype(str).nunique():,} distinct values in {len(present):,}: too many " \
                     "for a vocabulary"
    return kind, None


def _date_layout(text) -> str | None:
    """The date layout that reads at least :data:`DATE_SHARE` of ``text``'s values, or None."""
    import warnings

    import pandas as pd

    shaped = text[text.str.match(_DATE_SHAPE)]
    if len(shaped) < DATE_SHARE * len(text) or len(text) == 0:
        return None
    best, read = None, 0
    for layout in _DATE_FORMATS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = pd.to_datetime(shaped.str.strip(), format=layout, errors="coerce")
        if int(parsed.notna().sum()) > read:
            best, read = layout, int(parsed.notna().sum())
    return best if read >= DATE_SHARE * len(text) else None


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
