"""Raw event logs in, per-session event sequences out, with every bad row named.

An event log has one row per event: a session id, a numeric timestamp, an event (page or action
type), and optionally a product and a per-session label. Two layouts are recognised by their columns,
and any other is mapped with :class:`EventColumns`:

* plain: ``session_id, timestamp, event`` (+ ``product``), as :func:`generate_clickstream` writes;
* Coveo shopper intent (``browsing_train.csv``): ``session_id_hash, server_timestamp_epoch_ms,
  event_type, product_action, product_skus_hash``, where the event is ``product_action`` (detail, add,
  remove, purchase, click) for ``event_type == "event"`` rows and ``event_type`` (pageview, search)
  otherwise.

Documented handling:

* Timestamps must be numbers (epoch milliseconds by default, ``time_unit="s"`` for seconds); a value
  that is not is an error naming its row, line and column. An empty session id or event is an error too.
* Events are put in time order within each session (stable for equal times); how many sessions
  arrived out of order is reported in :attr:`EventLog.notes`, not refused, as trackers often log late.
* The label is a given per-session column (it must not change within a session), or, without one, it
  is derived: a session buys if it has a purchase event. The first purchase event and everything after
  it are removed from the inputs, so that nothing the label is made from leaks into them.
* A session left with no events is dropped and counted in the notes.
* Session context (for the hybrid model): columns named in ``EventColumns.context`` describe the
  session, not the event (visitor type, channel, device...), as trackers stamp them on every event.
  They must not change within a session (an error names the first row where one does); the log keeps
  one row of them per session in :attr:`EventLog.context`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge.clickstream.layouts import (
    COVEO,
    LAYOUTS,
    PLAIN,
    SESSION_GAP_SECONDS,
    EventColumns,
    Layout,
    detect_layout,
    purchase_mask,
    read_otto,
    read_yoochoose,
    sessionise,
    timestamps_ms,
)
from intent_edge.data.io import JSON_LINES_SUFFIXES, line_of, parse_label, read_table
from intent_edge.errors import DataError, UsageError
from intent_edge.runtime.sequence import SequenceSpec

__all__ = ["COVEO", "LAYOUTS", "PLAIN", "EventColumns", "EventLog", "event_log_from_frame", "read_event_log"]


@dataclass
class EventLog:
    """Sessions in time order: session ``i``'s events are ``events[starts[i]:starts[i + 1]]``."""

    session_ids: np.ndarray
    starts: np.ndarray
    events: np.ndarray
    timestamps_ms: np.ndarray
    products: np.ndarray
    labels: np.ndarray
    notes: list[str] = field(default_factory=list)
    context: pd.DataFrame | None = None  # one row per session, with EventColumns.context columns
    reading: dict = field(default_factory=dict)  # how the log was read: the bundle's manifest key "events"

    def __len__(self) -> int:
        return len(self.session_ids)

    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    def session(self, index: int) -> dict:
        """One session as plain lists (for inspection and tests)."""
        part = slice(self.starts[index], self.starts[index + 1])
        return {"session_id": self.session_ids[index], "events": self.events[part].tolist(),
                "timestamps_ms": self.timestamps_ms[part].tolist(), "products": self.products[part].tolist(),
                "label": int(self.labels[index])}


def read_event_log(path: str | Path, columns: EventColumns | None = None, *, sep: str | None = None,
                   time_unit: str | None = None, purchase_events: tuple[str, ...] | None = None,
                   context: tuple[str, ...] | str = (), label: str | None = None,
                   session_gap: float = SESSION_GAP_SECONDS, buys: str | Path | None = None,
                   mapping: dict[str, str] | None = None) -> EventLog:
    """Read and check an event log (CSV, Parquet or JSON lines) into time-ordered sessions with labels.

    The layout is found from the columns (:data:`LAYOUTS`) unless ``columns`` is given; ``mapping`` (keys
    ``session``, ``event``, ``timestamp``, ``user``, ``product``) names columns over the layout's, or,
    where no layout matches, instead of one. ``buys`` is YooChoose's buys file, which selects that layout.
    ``context`` names session context columns to keep (in addition to ``columns.context``), or ``"auto"``
    for every unmapped column that is constant within each session (:func:`session_constant_columns`).
    ``label`` names a per-session label column (overriding ``columns.label``)."""
    layout, frame = _read_layout(Path(path), sep, buys)
    mapping = {key: value for key, value in (mapping or {}).items() if value}
    if columns is None:
        if layout is None and mapping and not _matches_a_layout(frame.columns):
            known = set(map(str, frame.columns))
            columns = EventColumns(mapping.get("session") or (PLAIN.session if PLAIN.session in known else None),
                                   mapping.get("timestamp", PLAIN.timestamp), mapping.get("event", PLAIN.event),
                                   product=mapping.get("product"), user=mapping.get("user"))
            layout, mapping = Layout("custom", columns, "auto"), {}
        elif layout is None:
            layout = detect_layout(frame.columns, path)
        columns = replace(layout.columns, **mapping)
    else:
        layout = Layout("custom", columns, "ms")
    if label is not None:
        columns = replace(columns, label=label)
    if context == "auto":
        context = session_constant_columns(frame, columns) if columns.session in frame.columns else ()
    if context:
        columns = replace(columns, context=tuple(dict.fromkeys((*columns.context, *context))))
    return event_log_from_frame(frame, path, columns, time_unit=time_unit or layout.time_unit,
                                purchase_events=purchase_events, session_gap=session_gap, layout=layout.name)


def _matches_a_layout(columns) -> bool:
    names = set(map(str, columns))
    return any(layout.reader == "table" and layout.required() <= names for layout in LAYOUTS.values())


def _read_layout(path: Path, sep: str | None, buys) -> tuple[Layout | None, pd.DataFrame]:
    """The file as a table, with its layout where the way it is read decides it (OTTO, YooChoose)."""
    if buys is not None:
        return LAYOUTS["yoochoose"], read_yoochoose(path, buys)
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
        if '"events"' in first and '"session"' in first:
            return LAYOUTS["otto"], read_otto(path)
        return None, pd.read_json(path, lines=True, dtype=False)
    return None, read_table(path, sep)


def event_log_from_frame(frame: pd.DataFrame, path: str | Path, columns: EventColumns, *, time_unit: str = "ms",
                         purchase_events: tuple[str, ...] | None = None, session_gap: float = SESSION_GAP_SECONDS,
                         layout: str = "custom") -> EventLog:
    if session_gap <= 0:
        raise UsageError(f"--session-gap must be a positive number of seconds, got {session_gap:g}")
    if columns.session is None and columns.user is None:
        raise UsageError("an event log needs a session column or a user column to cut sessions from")
    for name in (columns.session, columns.user, columns.timestamp, columns.event, columns.label, columns.action,
                 *columns.context):
        if name is not None and name not in frame.columns:
            raise DataError(path, f"column missing; the columns are: {', '.join(map(str, frame.columns))}",
                            column=name)
    frame = frame.reset_index(drop=True)
    events = _text_column(frame, columns.event, path)
    if columns.action is not None:
        action = frame[columns.action]
        refined = (events == columns.action_when) & action.notna() & (action.astype(str).str.strip() != "")
        events = events.where(~refined, action.astype(str).str.strip())
    timestamps = timestamps_ms(frame[columns.timestamp], time_unit, path, columns.timestamp)
    if columns.session is None:
        sessions = pd.Series(sessionise(_text_column(frame, columns.user, path), timestamps, session_gap))
    elif columns.user is not None:
        sessions = _text_column(frame, columns.user, path) + "/" + _text_column(frame, columns.session, path)
    else:
        sessions = _text_column(frame, columns.session, path)
    products = (frame[columns.product].fillna("").astype(str).to_numpy(dtype=object)
                if columns.product is not None and columns.product in frame.columns
                else np.full(len(frame), "", dtype=object))
    given = parse_label(path, frame[columns.label]) if columns.label is not None else None

    # Sessions in order of first appearance, events in time order within each (stable for ties).
    codes, session_ids = pd.factorize(sessions, sort=False)
    order = np.lexsort((np.arange(len(frame)), timestamps, codes))
    notes = []
    arrival = np.argsort(codes, kind="stable")  # each session's events as they arrived
    same = codes[arrival][1:] == codes[arrival][:-1]
    backwards = same & (timestamps[arrival][1:] < timestamps[arrival][:-1])
    if backwards.any():
        count = np.unique(codes[arrival][1:][backwards]).size
        notes.append(f"{count} session(s) had events out of time order; they were put in time order")
    codes, timestamps, products = codes[order], timestamps[order], products[order]
    events = events.to_numpy(dtype=object)[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1], True])

    keep = np.ones(len(codes), dtype=bool)
    labels = np.zeros(len(starts) - 1, dtype=np.int8)
    is_purchase = purchase_mask(events, purchase_events)
    for index, (start, stop) in enumerate(zip(starts[:-1], starts[1:], strict=True)):
        if given is not None:
            session_labels = given[order[start:stop]]  # order: the original row of each sorted event
            if (session_labels != session_labels[0]).any():
                bad = int(order[start + int(np.argmax(session_labels != session_labels[0]))])
                raise DataError(path, f"the label changes within session {session_ids[codes[start]]!r}",
                                row=bad + 1, line=line_of(path, bad), column=columns.label)
            labels[index] = session_labels[0]
        hits = np.flatnonzero(is_purchase[start:stop])
        if hits.size:
            if given is None:
                labels[index] = 1
            keep[start + hits[0]:stop] = False  # the purchase and what follows it would leak the label
    if given is not None:
        keep &= ~is_purchase
    lengths = np.add.reduceat(keep, starts[:-1]) if len(codes) else np.zeros(0, dtype=int)
    empty = lengths == 0
    if empty.any():
        notes.append(f"{int(empty.sum())} session(s) had no events left once purchase events were removed; "
                     "they were dropped")
    session_codes = codes[starts[:-1]]
    kept_sessions = ~empty
    new_starts = np.r_[0, np.cumsum(lengths[kept_sessions])]
    session_names = np.asarray(session_ids, dtype=object)[session_codes]
    context = None
    if columns.context:
        context = _session_context(frame, columns.context, order, starts, session_names, path)
        context = context.loc[kept_sessions].reset_index(drop=True)
    return EventLog(session_ids=session_names[kept_sessions],
                    starts=new_starts.astype(np.int64), events=events[keep].astype(object),
                    timestamps_ms=timestamps[keep], products=products[keep], labels=labels[kept_sessions],
                    notes=notes, context=context,
                    reading={"layout": layout, "columns": columns.to_json(), "time_unit": time_unit,
                             "purchase_events": None if purchase_events is None else list(purchase_events),
                             "session_gap_seconds": float(session_gap)})


def _session_context(frame: pd.DataFrame, names: tuple[str, ...], order: np.ndarray, starts: np.ndarray,
                     session_names: np.ndarray, path) -> pd.DataFrame:
    """Each session's context (its first event's values), refusing a column that changes within a session."""
    lengths = np.diff(starts)
    first = order[starts[:-1]]  # the original row of each session's first event
    for name in names:
        values = frame[name].to_numpy()[order]
        expected = np.repeat(values[starts[:-1]], lengths)
        missing = pd.isna(values)
        differs = ~((values == expected) | (missing & pd.isna(expected)))
        if differs.any():
            at = int(np.argmax(differs))
            session = session_names[int(np.searchsorted(starts, at, side="right")) - 1]
            raise DataError(path, f"session context must not change within a session; in session {session!r} it "
                                  f"goes from {expected[at]!r} to {values[at]!r}", row=int(order[at]) + 1,
                            line=line_of(path, int(order[at])), column=name)
    return frame.loc[first, list(names)].reset_index(drop=True)


def session_constant_columns(frame: pd.DataFrame, columns: EventColumns) -> tuple[str, ...]:
    """The unmapped columns whose value is the same on every event of each session: the candidates for
    session context, in the file's order."""
    free = [str(c) for c in frame.columns if str(c) not in columns.mapped()]
    if not free:
        return ()
    groups = frame.groupby(frame[columns.session].astype(str), sort=False)[free].nunique(dropna=False)
    return tuple(name for name in free if (groups[name] <= 1).all())


def _text_column(frame: pd.DataFrame, name: str, path) -> pd.Series:
    column = frame[name]
    text = column.astype(str).str.strip()
    empty = column.isna() | (text == "")
    if empty.any():
        row = int(np.argmax(empty.to_numpy()))
        raise DataError(path, "is empty; every event needs one", row=row + 1, line=line_of(path, row), column=name)
    return text


def fit_sequence_spec(log: EventLog, *, max_length: int = 64, min_count: int = 5) -> SequenceSpec:
    """Events seen at least ``min_count`` times, most frequent first; rarer ones share UNKNOWN."""
    values, counts = np.unique(log.events.astype(str), return_counts=True)
    kept = sorted(((int(c), str(v)) for v, c in zip(values, counts, strict=True) if c >= min_count),
                  key=lambda item: (-item[0], item[1]))
    return SequenceSpec(tuple(v for _, v in kept), max_length)


def encode_sessions(spec: SequenceSpec, log: EventLog, context_encoder=None) -> Sequences:
    """Padded model input for every session of ``log`` (the first ``spec.max_length`` events of each),
    with its context encoded by ``context_encoder`` (a runtime :class:`Encoder`) for a hybrid model."""
    n, width = len(log), spec.max_length
    tokens = np.zeros((n, width), dtype=np.int32)
    gaps = np.zeros((n, width), dtype=np.float32)
    lengths = np.minimum(log.lengths(), width)
    for i in range(n):
        start = log.starts[i]
        stop = start + lengths[i]
        tokens[i, :lengths[i]] = [spec.token_of(e) for e in log.events[start:stop]]
        seconds = np.diff(log.timestamps_ms[start:stop], prepend=log.timestamps_ms[start]) / 1000.0
        gaps[i, :lengths[i]] = spec.gap_feature(seconds)
    context = None
    if context_encoder is not None:
        if log.context is None:
            raise UsageError("this model reads session context, and the event log was read without it")
        context = context_encoder.encode_columns(log.context, strict=False)
    return Sequences(tokens, gaps, lengths.astype(np.int32), log.labels.copy(), log.session_ids.copy(), context)


@dataclass
class Sequences:
    """Padded model input: ``tokens`` and ``gaps`` are ``(sessions, max_length)``; ``lengths`` says how
    many leading positions are real (the rest is padding, masked by the models)."""

    tokens: np.ndarray
    gaps: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    session_ids: np.ndarray
    context: np.ndarray | None = None  # encoded session context (sessions, width), for a hybrid model

    def inputs(self) -> dict[str, np.ndarray]:
        """The model's inputs by name."""
        named = {"events": self.tokens, "gaps": self.gaps}
        return named if self.context is None else {**named, "context": self.context}

    def take(self, index: np.ndarray) -> Sequences:
        """The sessions at ``index``, in that order."""
        return Sequences(self.tokens[index], self.gaps[index], self.lengths[index], self.labels[index],
                         self.session_ids[index], None if self.context is None else self.context[index])

    def prefix(self, k: int) -> Sequences:
        """The first ``k`` events of every session (shorter sessions whole)."""
        keep = np.arange(self.tokens.shape[1]) < k
        return Sequences(np.where(keep, self.tokens, 0), np.where(keep, self.gaps, 0.0).astype(np.float32),
                         np.minimum(self.lengths, k), self.labels, self.session_ids, self.context)
