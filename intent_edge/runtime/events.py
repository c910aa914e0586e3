"""Live events in a tracker's own layout, routed to :class:`SessionScorer` (standard library only).

A clickstream bundle records how its training log was read (manifest key ``events``: the columns, the
timestamp unit, the session gap). :class:`EventRouter` applies the same reading to one event at a time, so
``intent-edge stream`` takes a tracker's events as the tracker writes them: a REES46 line
``{"user_session": "...", "event_type": "cart", "event_time": "2019-10-01 00:00:00 UTC"}`` needs no flags.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from intent_edge.errors import RecordError

TIME_UNITS = {"s": 1000.0, "ms": 1.0, "us": 0.001}  # each unit's factor to epoch milliseconds
_TRAILING_ZONE = re.compile(r"\s*UTC$", re.IGNORECASE)


def unit_by_magnitude(typical: float) -> str:
    """Epoch seconds, milliseconds or microseconds, told apart by size (now is about 1.8e9 seconds)."""
    return "s" if abs(typical) < 1e11 else "ms" if abs(typical) < 1e14 else "us"


def without_utc_suffix(text: str) -> str:
    return _TRAILING_ZONE.sub("", text.strip())


def timestamp_ms(value: Any, unit: str) -> float:
    """One timestamp as epoch milliseconds: a number in ``unit`` (``auto``: by magnitude), or date-time text
    (ISO 8601 with or without a zone, or a trailing "UTC"; a zone-less time is UTC). Raises ValueError."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a timestamp, got {value!r}")
    if isinstance(value, str):
        text = without_utc_suffix(value)
        try:
            value = float(text)
        except ValueError:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp() * 1000.0
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite timestamp, got {value!r}")
    return float(value) * TIME_UNITS[unit if unit in TIME_UNITS else unit_by_magnitude(float(value))]


@dataclass
class EventRouter:
    """The session and the ``{"event", "timestamp"}`` of each live event, read as the bundle's log was.

    ``session`` and ``user`` name the columns that make a session: the session column alone, the pair
    where both exist (a session id that counts within a user), or the user's events cut wherever
    ``session_gap_seconds`` pass without one. ``action`` refines ``event`` where ``event`` equals
    ``action_when`` (Coveo's product actions)."""

    event: str
    timestamp: str
    session: str | None = None
    user: str | None = None
    action: str | None = None
    action_when: str = "event"
    time_unit: str = "ms"
    session_gap_seconds: float = 1800.0
    _last: dict = field(default_factory=dict, repr=False)  # user -> (last time ms, session number)

    @classmethod
    def from_reading(cls, reading: Mapping | None) -> EventRouter:
        """The router for a bundle's ``events`` record; bundles from before it read the plain layout."""
        if not reading:
            return cls("event", "timestamp", session="session_id")
        columns = reading["columns"]
        return cls(columns["event"], columns["timestamp"], session=columns.get("session"), user=columns.get("user"),
                   action=columns.get("action"), action_when=columns.get("action_when", "event"),
                   time_unit=reading.get("time_unit", "ms"),
                   session_gap_seconds=float(reading.get("session_gap_seconds", 1800.0)))

    def fields(self) -> list[str]:
        return [name for name in (self.session, self.user, self.event, self.timestamp) if name]

    def route(self, record: Mapping[str, Any]) -> tuple[str, dict]:
        """``(session id, {"event": name, "timestamp": epoch ms})`` for one event; RecordError names the
        field that is missing or unreadable."""
        for name in self.fields():
            if record.get(name) is None or (isinstance(record[name], str) and not record[name].strip()):
                raise RecordError(name, "missing or empty")
        name = str(record[self.event]).strip()
        if self.action is not None and name == self.action_when and str(record.get(self.action) or "").strip():
            name = str(record[self.action]).strip()
        try:
            stamp = timestamp_ms(record[self.timestamp], self.time_unit)
        except (ValueError, TypeError, OverflowError) as exc:
            raise RecordError(self.timestamp, str(exc)) from None
        if self.session is not None:
            session = str(record[self.session]).strip()
            key = f"{str(record[self.user]).strip()}/{session}" if self.user else session
        else:
            user = str(record[self.user]).strip()
            last, number = self._last.get(user, (None, 0))
            if last is None or stamp - last > self.session_gap_seconds * 1000.0:
                number += 1
            self._last[user] = (stamp if last is None else max(last, stamp), number)
            key = f"{user}#{number}"
        return key, {"event": name, "timestamp": stamp}
