"""Clickstream data: the synthetic generator's story holds, event logs are read, ordered and labelled
without leaks, bad logs are named, and sessions become padded sequences."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from intent_edge.clickstream.events import COVEO, PLAIN, encode_sessions, fit_sequence_spec, read_event_log
from intent_edge.clickstream.synth import generate_clickstream
from intent_edge.errors import DataError
from intent_edge.runtime.sequence import SequenceSpec


@pytest.fixture(scope="module")
def log_frame():
    return generate_clickstream(600, seed=3)


def test_generator_is_deterministic_and_follows_its_funnel(log_frame):
    pd.testing.assert_frame_equal(log_frame, generate_clickstream(600, seed=3))
    assert not log_frame.equals(generate_clickstream(600, seed=4))
    bought = log_frame.groupby("session_id", sort=False)["event"].apply(lambda s: "purchase" in set(s))
    assert 0.08 < bought.mean() < 0.25
    for _, session in log_frame.groupby("session_id", sort=False):
        events = session["event"].tolist()
        assert "purchase" not in events[:-1]  # a purchase ends the session
        assert session["timestamp"].is_monotonic_increasing
        for before, event in zip(events, events[1:], strict=False):
            if event == "cart":
                assert before in ("product", "cart")
        if "checkout" in events:
            assert "cart" in events[:events.index("checkout")]
        if events[-1] == "purchase":
            assert events[-2] == "checkout"


def test_reading_derives_labels_and_removes_the_purchase(log_frame, tmp_path):
    path = tmp_path / "events.csv"
    log_frame.to_csv(path, index=False)
    log = read_event_log(path)
    bought = log_frame.groupby("session_id", sort=False)["event"].apply(lambda s: "purchase" in set(s))
    assert list(log.session_ids) == list(bought.index)
    np.testing.assert_array_equal(log.labels, bought.to_numpy().astype(np.int8))
    assert "purchase" not in set(log.events)
    assert log.lengths().sum() == (log_frame["event"] != "purchase").sum()
    assert log.notes == []


def test_events_out_of_order_are_sorted_and_reported(log_frame, tmp_path):
    shuffled = log_frame.sample(frac=1.0, random_state=0)
    path = tmp_path / "shuffled.parquet"
    shuffled.to_parquet(path)
    log = read_event_log(path)
    assert any("out of time order" in note for note in log.notes)
    first = log.session(0)
    expected = log_frame[log_frame["session_id"] == first["session_id"]]
    assert first["events"] == [e for e in expected["event"] if e != "purchase"]
    assert first["timestamps_ms"] == sorted(first["timestamps_ms"])


def test_coveo_layout_refines_event_type_with_the_product_action(tmp_path):
    frame = pd.DataFrame({
        "session_id_hash": ["a", "a", "a", "a", "b", "b", "c"],
        "event_type": ["pageview", "event", "event", "event", "search", "pageview", "event"],
        "product_action": [None, "detail", "add", "purchase", None, None, "purchase"],
        "product_skus_hash": [None, "x1", "x1", "x1", None, None, "y"],
        "server_timestamp_epoch_ms": [1000, 2000, 3000, 4000, 1500, 9000, 100],
        "hashed_url": ["u"] * 7,
    })
    path = tmp_path / "browsing.csv"
    frame.to_csv(path, index=False)
    log = read_event_log(path)
    assert list(log.session_ids) == ["a", "b"]  # c held only a purchase: dropped, and said so
    assert log.session(0) == {"session_id": "a", "events": ["pageview", "detail", "add"],
                              "timestamps_ms": [1000.0, 2000.0, 3000.0], "products": ["", "x1", "x1"], "label": 1}
    assert log.session(1)["events"] == ["search", "pageview"] and log.session(1)["label"] == 0
    assert any("no events left" in note for note in log.notes)


@pytest.mark.parametrize("change, label, message", [
    (lambda f: f.assign(timestamp=f["timestamp"].astype(object)).pipe(_set, 4, "timestamp", "yesterday"), None,
     r"row 5 \(line 6\), column 'timestamp': expected a numeric timestamp .* got 'yesterday'"),
    (lambda f: _set(f.astype({"session_id": object}), 2, "session_id", None), None,
     r"row 3 \(line 4\), column 'session_id': is empty"),
    (lambda f: f.drop(columns=["event"]), None, r"column 'event': column missing"),
    (lambda f: f.assign(bought=[i % 2 for i in range(len(f))]), "bought", r"the label changes within session"),
])
def test_bad_logs_are_refused_naming_the_place(log_frame, tmp_path, change, label, message):
    path = tmp_path / "bad.csv"
    change(log_frame.head(30).copy()).to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
        read_event_log(path, dataclasses.replace(PLAIN, label=label))


def _set(frame, row, column, value):
    frame.loc[row, column] = value
    return frame


def test_sequences_pad_truncate_and_give_causal_gaps(log_frame, tmp_path):
    path = tmp_path / "events.csv"
    log_frame.to_csv(path, index=False)
    log = read_event_log(path)
    spec = fit_sequence_spec(log, max_length=8, min_count=1)
    assert set(spec.vocabulary) == set(log.events)
    assert SequenceSpec.from_spec(spec.to_spec()) == spec
    sequences = encode_sessions(spec, log)
    assert sequences.tokens.shape == (len(log), 8)
    for i in range(len(log)):
        session = log.session(i)
        n = min(len(session["events"]), 8)
        assert sequences.lengths[i] == n
        assert sequences.tokens[i, :n].tolist() == [spec.token_of(e) for e in session["events"][:n]]
        assert (sequences.tokens[i, n:] == SequenceSpec.PAD).all()
        seconds = np.diff(session["timestamps_ms"][:n], prepend=session["timestamps_ms"][0]) / 1000
        np.testing.assert_allclose(sequences.gaps[i, :n], np.log1p(seconds), rtol=1e-6)
    prefix = sequences.prefix(2)
    assert (prefix.lengths <= 2).all() and (prefix.tokens[:, 2:] == 0).all()
    assert spec.token_of("never-seen") == SequenceSpec.UNKNOWN
    assert COVEO.session == "session_id_hash"


def test_session_context_is_found_kept_per_session_and_must_not_change(log_frame, tmp_path):
    from intent_edge.clickstream.events import session_constant_columns
    from intent_edge.clickstream.synth import CONTEXT_COLUMNS

    assert session_constant_columns(log_frame, PLAIN) == CONTEXT_COLUMNS  # not dwell, which varies
    path = tmp_path / "events.csv"
    log_frame.to_csv(path, index=False)
    log = read_event_log(path, context="auto")
    assert list(log.context.columns) == list(CONTEXT_COLUMNS) and len(log.context) == len(log)
    first = log_frame.groupby("session_id", sort=False)[list(CONTEXT_COLUMNS)].first().reset_index(drop=True)
    pd.testing.assert_frame_equal(log.context, first, check_dtype=False)
    assert read_event_log(path).context is None  # only read when asked
    changed = log_frame.copy()
    changed.loc[5, "channel"] = "a different channel"  # not the first event of its session
    changed.to_csv(path, index=False)
    with pytest.raises(DataError, match="must not change within a session") as caught:
        read_event_log(path, context=("channel",))
    assert caught.value.row == 6 and caught.value.column == "channel"
