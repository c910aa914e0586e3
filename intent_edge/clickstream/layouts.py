"""The event-log layouts of real trackers, recognised by their columns, and the pieces every layout shares:
timestamps in any unit or as date-time text, purchase events by name, and sessions cut from a user id.

Layouts (:data:`LAYOUTS`, tried in that order), as session / time / event / purchase:

* plain: ``session_id`` / ``timestamp``, ms / ``event`` / ``purchase``;
* coveo: ``session_id_hash`` / ``server_timestamp_epoch_ms`` / ``product_action`` where ``event_type`` is
  "event", else ``event_type`` / ``purchase``;
* rees46 (Kaggle eCommerce behavior): ``user_session`` of ``user_id`` / ``event_time``, text with "UTC" /
  ``event_type`` / ``purchase``;
* retailrocket (``events.csv``): none, ``visitorid`` is cut into sessions / ``timestamp``, ms / ``event`` /
  ``transaction``;
* otto (``.jsonl``, a session a line with its ``events`` list): ``session`` / ``ts``, ms / ``type`` /
  ``orders``;
* ga4 (BigQuery export, flattened): ``ga_session_id`` within ``user_pseudo_id`` / ``event_timestamp``, µs /
  ``event_name`` / ``purchase``;
* segment: ``anonymousId`` / ``timestamp``, ISO text / ``event`` / "Order Completed";
* snowplow: ``domain_sessionid`` / ``collector_tstamp``, ISO text / ``event_name`` / ``transaction``;
* yoochoose (RecSys 2015, no header): ``session`` / ISO text / every row a click / a row of the buys file
  (``--buys``).

Where a log has both a user and a session column, a session is the pair (GA4's ``ga_session_id`` counts
within a user); where it has a user and no session, the user's events are cut into sessions wherever 30
minutes (``--session-gap``) pass without one, the web analytics convention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intent_edge.data.io import line_of
from intent_edge.errors import DataError, UsageError
from intent_edge.runtime.events import TIME_UNITS, unit_by_magnitude, without_utc_suffix

SESSION_GAP_SECONDS = 30 * 60
# The default purchase events: whole event names, case and separators aside, singular or plural.
PURCHASE_WORDS = ("purchase", "transaction", "order", "buy", "order completed")
_SEPARATORS = re.compile(r"[\s_\-]+")


@dataclass(frozen=True)
class EventColumns:
    """Which columns of an event log hold what. A session is ``session``, or the pair (``user``,
    ``session``) where both are given, or ``user``'s events cut at a gap where ``session`` is None.
    ``action`` refines ``event`` where ``event`` equals ``action_when`` (the Coveo layout); ``label``
    names a per-session label column, if the log has one; ``context`` the session-level columns a
    hybrid model reads."""

    session: str | None
    timestamp: str
    event: str
    product: str | None = None
    label: str | None = None
    action: str | None = None
    action_when: str = "event"
    context: tuple[str, ...] = ()
    user: str | None = None

    def mapped(self) -> set[str]:
        """The columns this mapping gives a role other than context."""
        return {c for c in (self.session, self.user, self.timestamp, self.event, self.product, self.label,
                            self.action) if c}

    def to_json(self) -> dict:
        return {"session": self.session, "user": self.user, "timestamp": self.timestamp, "event": self.event,
                "product": self.product, "action": self.action, "action_when": self.action_when}


@dataclass(frozen=True)
class Layout:
    """A tracker's event-log layout: its columns, the unit of its timestamps (``s``, ``ms``, ``us``,
    ``text`` or ``auto``), and how its file is read (``table``; ``otto`` for nested JSON lines;
    ``yoochoose`` for two headerless files)."""

    name: str
    columns: EventColumns
    time_unit: str = "ms"
    reader: str = "table"

    def required(self) -> set[str]:
        """The columns that identify the layout in a file."""
        c = self.columns
        return {name for name in (c.session, c.user, c.timestamp, c.event) if name}

    def describe(self) -> str:
        c = self.columns
        who = f"{c.session}" + (f" within {c.user}" if c.session and c.user else "") if c.session \
            else f"{c.user} (cut into sessions)"
        return f"{self.name} ({who}, {c.timestamp}, {c.event})"


PLAIN = EventColumns("session_id", "timestamp", "event", product="product")
COVEO = EventColumns("session_id_hash", "server_timestamp_epoch_ms", "event_type", product="product_skus_hash",
                     action="product_action")
# In the order they are tried: a layout whose columns are all in the file is taken, the more specific first.
LAYOUTS = {layout.name: layout for layout in (
    Layout("coveo", COVEO),
    Layout("rees46", EventColumns("user_session", "event_time", "event_type", product="product_id", user="user_id"),
           "text"),
    Layout("ga4", EventColumns("ga_session_id", "event_timestamp", "event_name", user="user_pseudo_id"), "us"),
    Layout("snowplow", EventColumns("domain_sessionid", "collector_tstamp", "event_name"), "text"),
    Layout("segment", EventColumns("anonymousId", "timestamp", "event"), "text"),
    Layout("retailrocket", EventColumns(None, "timestamp", "event", product="itemid", user="visitorid")),
    Layout("plain", PLAIN),
    Layout("otto", EventColumns("session", "ts", "type", product="aid"), reader="otto"),
    Layout("yoochoose", EventColumns("session", "timestamp", "event", product="item", label="bought"), "text",
           reader="yoochoose"),
)}
MAPPING_OPTIONS = ("--session-column, --event-column, --timestamp-column, --user-column, --product-column "
                   "(and --time-unit, --purchase-events, --session-gap; --buys FILE for YooChoose)")


def detect_layout(columns, path) -> Layout:
    """The first table layout whose columns are all in ``columns``; otherwise an error that lists the
    columns found, the layouts known and the options that map any other."""
    names = set(map(str, columns))
    for layout in LAYOUTS.values():
        if layout.reader == "table" and layout.required() <= names:
            return layout
    known = "; ".join(layout.describe() for layout in LAYOUTS.values())
    raise DataError(path, f"no known event-log layout matches its columns ({', '.join(map(str, columns))}). "
                          f"Known layouts: {known}. Map yours with {MAPPING_OPTIONS}")


def normalised_event(name: str) -> str:
    return _SEPARATORS.sub(" ", str(name).strip().lower())


def purchase_mask(events: np.ndarray, purchase_events: tuple[str, ...] | None) -> np.ndarray:
    """Which ``events`` are purchases: those named in ``purchase_events`` (case and separators aside), or
    by default any whose whole name is one of :data:`PURCHASE_WORDS`, singular or plural."""
    names = pd.Series(events, dtype=object).astype(str).map(normalised_event)
    if purchase_events is None:
        wanted = {*PURCHASE_WORDS, *(word + "s" for word in PURCHASE_WORDS)}
    else:
        wanted = {normalised_event(name) for name in purchase_events}
    return names.isin(wanted).to_numpy()


def is_purchase(name: str, purchase_events: tuple[str, ...] | None) -> bool:
    return bool(purchase_mask(np.array([name], dtype=object), purchase_events)[0])


def timestamps_ms(column: pd.Series, unit: str, path, name: str) -> np.ndarray:
    """A timestamp column as epoch milliseconds (float64), parsed over the whole column at once: numbers
    in ``unit`` (``auto``: seconds, milliseconds or microseconds by magnitude), or date-time text (ISO 8601
    with or without a zone, or a trailing "UTC"; a zone-less time is taken as UTC). An unparseable value
    is an error naming its row."""
    if unit not in (*TIME_UNITS, "auto", "text"):
        raise UsageError(f"--time-unit must be one of s, ms, us or auto, got {unit!r}")
    if pd.api.types.is_bool_dtype(column):
        raise DataError(path, "expected timestamps, got booleans", column=name)
    numbers = pd.to_numeric(column, errors="coerce") if unit != "text" else pd.Series(np.nan, index=column.index)
    if unit != "text" and numbers.notna().mean() >= 0.5:  # numbers, with any stray text reported below
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            _refuse(path, name, column, int(np.argmax(bad)), "a numeric timestamp (epoch s, ms or µs)")
        typical = float(np.median(np.abs(values))) if len(values) else 0.0
        factor = TIME_UNITS[unit] if unit in TIME_UNITS else TIME_UNITS[unit_by_magnitude(typical)]
        return values * factor
    text = column.astype(str).map(without_utc_suffix)
    parsed = pd.to_datetime(text.where(column.notna()), utc=True, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        _refuse(path, name, column, int(np.argmax(bad)), "a timestamp (epoch number or ISO 8601 date-time text)")
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    return ((parsed - epoch) / pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.float64)


def _refuse(path, name: str, column: pd.Series, row: int, expected: str):
    raise DataError(path, f"expected {expected}, got {column.iloc[row]!r}", row=row + 1, line=line_of(path, row),
                    column=name)


def sessionise(users: pd.Series, stamps: np.ndarray, gap_seconds: float) -> np.ndarray:
    """Session ids for events of ``users`` at ``stamps`` (epoch ms): a user's events are one session until
    ``gap_seconds`` pass without one. Ids are ``user#n``, n counting from 1 in time order."""
    users = users.astype(str).to_numpy(dtype=object)
    order = np.lexsort((np.arange(len(users)), stamps, users))
    sorted_users, sorted_stamps = users[order], stamps[order]
    new_user = np.r_[True, sorted_users[1:] != sorted_users[:-1]]
    gap = np.r_[True, np.diff(sorted_stamps) > gap_seconds * 1000.0]
    starts = new_user | gap
    # n restarts at 1 for each user: sessions begun so far minus those begun before this user's first
    begun = np.cumsum(starts)
    first_of_user = np.maximum.accumulate(np.where(new_user, np.arange(len(users)), 0))
    number = begun - begun[first_of_user] + 1
    ids = np.empty(len(users), dtype=object)
    ids[order] = [f"{user}#{n}" for user, n in zip(sorted_users, number, strict=True)]
    return ids


def read_otto(path) -> pd.DataFrame:
    """OTTO's JSON lines (``{"session", "events": [{"aid", "ts", "type"}, ...]}``) as one row per event."""
    try:
        frame = pd.read_json(path, lines=True, dtype=False)
    except ValueError as exc:
        raise DataError(path, f"cannot be read as OTTO JSON lines: {exc}") from None
    if not {"session", "events"} <= set(frame.columns):
        raise DataError(path, "OTTO JSON lines need 'session' and 'events' on every line")
    exploded = frame[["session", "events"]].explode("events", ignore_index=True).dropna(subset=["events"])
    events = pd.DataFrame(exploded["events"].tolist())
    return pd.concat([exploded[["session"]].reset_index(drop=True), events], axis=1)


def read_yoochoose(clicks, buys) -> pd.DataFrame:
    """YooChoose's headerless clicks file (session, timestamp, item, category) as an event log whose
    sessions are labelled by the buys file (session, timestamp, item, price, quantity): every event a
    click, and a session buys if it appears in the buys file."""
    names = ["session", "timestamp", "item", "category"]
    try:
        frame = pd.read_csv(clicks, header=None, names=names, dtype={"session": str, "item": str, "category": str})
        bought = pd.read_csv(buys, header=None, usecols=[0], names=["session"], dtype={"session": str})
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(clicks, f"cannot be read as YooChoose clicks and buys: {exc}") from None
    frame["event"] = "click"
    frame["bought"] = frame["session"].isin(set(bought["session"]))
    return frame
