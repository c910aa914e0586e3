"""Real trackers' event logs are read with no mapping flags (issue 23): each layout, written from one small
generated log, reads back as the same sessions, events, times and labels as the plain layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from intent_edge.clickstream.events import read_event_log
from intent_edge.clickstream.synth import generate_clickstream
from intent_edge.errors import DataError

LAYOUT_NAMES = ["plain", "coveo", "rees46", "retailrocket", "otto", "ga4", "segment", "snowplow", "yoochoose"]


@pytest.fixture(scope="module")
def plain() -> pd.DataFrame:
    frame = generate_clickstream(60, seed=7)[["session_id", "timestamp", "event", "product"]]
    frame["timestamp"] = frame["timestamp"] // 1000 * 1000  # whole seconds: some layouts write no more
    return frame


def iso(stamps_ms, pattern: str = "%Y-%m-%dT%H:%M:%S.%fZ") -> pd.Series:
    return pd.to_datetime(stamps_ms, unit="ms", utc=True).dt.strftime(pattern)


def write_layout(name: str, plain: pd.DataFrame, directory) -> tuple:
    """The log in ``name``'s layout, and the keyword arguments reading it needs (only YooChoose's buys file)."""
    f, path, options = plain, directory / f"{name}.csv", {}
    bought = f["event"] == "purchase"
    if name == "plain":
        f.to_csv(path, index=False)
    elif name == "coveo":
        action = f["event"].where(f["event"].isin(["cart", "purchase", "product"]))
        pd.DataFrame({"session_id_hash": f["session_id"], "server_timestamp_epoch_ms": f["timestamp"],
                      "event_type": np.where(action.notna(), "event", f["event"]),
                      "product_action": action.fillna(""), "product_skus_hash": f["product"]}).to_csv(path, index=False)
    elif name == "rees46":
        pd.DataFrame({"event_time": iso(f["timestamp"], "%Y-%m-%d %H:%M:%S UTC"), "event_type": f["event"],
                      "product_id": f["product"], "user_id": "u" + f["session_id"],
                      "user_session": f["session_id"]}).to_csv(path, index=False)
    elif name == "retailrocket":  # no session column: one visitor per session, each cut back out at the gap
        pd.DataFrame({"timestamp": f["timestamp"], "visitorid": f["session_id"],
                      "event": f["event"].where(~bought, "transaction"),
                      "itemid": f["product"]}).to_csv(path, index=False)
    elif name == "otto":
        path = directory / "otto.jsonl"
        types = f["event"].where(~bought, "orders")
        with open(path, "w") as handle:
            for session, part in f.assign(type=types).groupby("session_id", sort=False):
                events = [{"aid": p, "ts": int(t), "type": e} for p, t, e in zip(part["product"], part["timestamp"],
                                                                                  part["type"], strict=True)]
                handle.write(json.dumps({"session": session, "events": events}) + "\n")
    elif name == "ga4":
        pd.DataFrame({"event_timestamp": f["timestamp"] * 1000, "event_name": f["event"],
                      "user_pseudo_id": "u" + f["session_id"], "ga_session_id": "1"}).to_csv(path, index=False)
    elif name == "segment":
        pd.DataFrame({"anonymousId": f["session_id"], "timestamp": iso(f["timestamp"]),
                      "event": f["event"].where(~bought, "Order Completed")}).to_csv(path, index=False)
    elif name == "snowplow":
        pd.DataFrame({"domain_sessionid": f["session_id"],
                      "collector_tstamp": iso(f["timestamp"], "%Y-%m-%d %H:%M:%S.%f"),
                      "event_name": f["event"].where(~bought, "transaction")}).to_csv(path, index=False)
    elif name == "yoochoose":  # no header; a session buys if the buys file has it, and its clicks stop before
        clicks = f[~bought]
        pd.DataFrame({"session": clicks["session_id"], "timestamp": iso(clicks["timestamp"]),
                      "item": clicks["product"], "category": "0"}).to_csv(path, index=False, header=False)
        buys = directory / "buys.csv"
        f.loc[bought, ["session_id", "timestamp", "product"]].to_csv(buys, index=False, header=False)
        options = {"buys": buys}
    return path, options


def sessions_of(log) -> list[tuple]:
    """Each session's events, times and label, in a form that does not depend on how ids are spelled."""
    return sorted((tuple(log.events[a:b]), tuple(log.timestamps_ms[a:b]), int(label))
                  for a, b, label in zip(log.starts[:-1], log.starts[1:], log.labels, strict=True))


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_each_layout_reads_as_the_plain_log(name, plain, tmp_path):
    expected = read_event_log(write_layout("plain", plain, tmp_path)[0])
    path, options = write_layout(name, plain, tmp_path)
    log = read_event_log(path, **options)
    assert log.reading["layout"] == name
    got = sessions_of(log)
    if name == "yoochoose":  # every event is a click there: compare times and labels
        assert sorted((t, y) for _, t, y in got) == sorted((t, y) for _, t, y in sessions_of(expected))
        assert {e for events, _, _ in got for e in events} == {"click"}
    else:
        assert got == sessions_of(expected)
    assert 0 < log.labels.mean() < 1


def test_a_user_id_alone_is_cut_into_sessions_at_the_gap(tmp_path):
    minute = 60_000
    stamps = [0, 5 * minute, 20 * minute, 90 * minute, 95 * minute, 0, 31 * minute, 200 * minute]
    users = ["a"] * 5 + ["b"] * 3
    path = tmp_path / "events.csv"
    pd.DataFrame({"visitorid": users, "timestamp": np.array(stamps) + 1_700_000_000_000,
                  "event": ["view", "view", "addtocart", "view", "transaction", "view", "view", "view"],
                  "itemid": 1}).to_csv(path, index=False)
    log = read_event_log(path)
    assert sorted(log.session_ids) == ["a#1", "a#2", "b#1", "b#2", "b#3"]
    assert dict(zip(log.session_ids, log.labels.tolist(), strict=True))["a#2"] == 1
    assert len(read_event_log(path, session_gap=3600)) == 4  # an hour's gap joins b's first two


def test_an_unknown_layout_lists_the_columns_layouts_and_options(tmp_path):
    path = tmp_path / "log.csv"
    pd.DataFrame({"visit": ["a", "a"], "when": [1, 2], "what": ["x", "purchase"]}).to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        read_event_log(path)
    message = str(caught.value)
    assert "(visit, when, what)" in message and "rees46 (user_session within user_id" in message
    assert "--session-column, --event-column, --timestamp-column" in message
    mapped = read_event_log(path, mapping={"session": "visit", "timestamp": "when", "event": "what"})
    assert len(mapped) == 1 and mapped.labels.tolist() == [1] and mapped.reading["layout"] == "custom"


@pytest.mark.parametrize("spelling, bought", [("purchase", 1), ("Purchases", 1), ("ORDER", 1), ("order_completed", 1),
                                              ("Order Completed", 1), ("buy", 1), ("transactions", 1),
                                              ("Order Viewed", 0), ("add_to_order", 0), ("buying_guide", 0)])
def test_purchase_events_are_whole_words_with_plurals(spelling, bought):
    from intent_edge.clickstream.layouts import is_purchase

    assert is_purchase(spelling, None) == bool(bought)
    assert is_purchase("checkout_done", ("checkout_done",)) and not is_purchase("purchase", ("checkout_done",))


def test_a_bad_timestamp_names_its_row(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame({"user_session": ["s", "s", "s"], "user_id": 1, "event_type": "view",
                  "event_time": ["2019-10-01 00:00:00 UTC", "yesterday", "2019-10-01 00:00:09 UTC"]}).to_csv(
        path, index=False)
    with pytest.raises(DataError, match=r"row 2 \(line 3\), column 'event_time': expected a timestamp .*'yesterday'"):
        read_event_log(path)


@pytest.mark.parametrize("value, unit, expected", [
    (1_700_000_000, "auto", 1_700_000_000_000.0), (1_700_000_000_123, "auto", 1_700_000_000_123.0),
    (1_700_000_000_123_456, "auto", 1_700_000_000_123.456), (1_700_000_000, "s", 1_700_000_000_000.0),
    ("2023-11-14 22:13:20 UTC", "text", 1_700_000_000_000.0), ("2023-11-14T22:13:20.5Z", "text", 1_700_000_000_500.0),
    ("2023-11-14T23:13:20+01:00", "text", 1_700_000_000_000.0)])
def test_one_timestamp_and_a_column_agree(value, unit, expected):
    from intent_edge.clickstream.layouts import timestamps_ms
    from intent_edge.runtime.events import timestamp_ms

    assert timestamp_ms(value, unit) == pytest.approx(expected, abs=1e-3)
    column = timestamps_ms(pd.Series([value, value]), unit, "x.csv", "t")
    assert column[0] == pytest.approx(expected, abs=1e-3)


def test_a_rees46_log_trains_a_gru_and_streams_with_no_flags(plain, tmp_path):
    """Date-time text with "UTC" and user_session: train and stream read the layout on their own."""
    from typer.testing import CliRunner

    from intent_edge.cli import app
    from intent_edge.runtime.bundle import read_manifest

    bigger = generate_clickstream(300, seed=8)[["session_id", "timestamp", "event", "product"]]
    path, _ = write_layout("rees46", bigger, tmp_path)
    bundle = tmp_path / "gru"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(path), "--model", "gru", "--out", str(bundle), "--max-epochs", "1",
                                 "--max-length", "16"])
    assert result.exit_code == 0, result.output
    assert "layout rees46: session user_session, user user_id, time event_time (text)" in result.output
    assert read_manifest(bundle)["events"]["layout"] == "rees46"
    lines = [{"event_time": "2019-10-01 00:00:00 UTC", "event_type": "view", "user_id": 1, "user_session": "a"},
             {"event_time": "2019-10-01 00:00:05 UTC", "event_type": "view", "user_id": 2, "user_session": "b"},
             {"event_time": "2019-10-01 00:01:00 UTC", "event_type": "cart", "user_id": 1, "user_session": "a"}]
    result = runner.invoke(app, ["stream", str(bundle)], input="".join(json.dumps(x) + "\n" for x in lines))
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert [a["session_id"] for a in answers] == ["1/a", "2/b", "1/a"]
    from intent_edge.runtime.streaming import SessionScorer

    scorer = SessionScorer.load(bundle)
    expected = [scorer.update("1/a", {"event": "view", "timestamp": 1569888000000.0}),
                scorer.update("2/b", {"event": "view", "timestamp": 1569888005000.0}),
                scorer.update("1/a", {"event": "cart", "timestamp": 1569888060000.0})]
    assert [a["probability"] for a in answers] == pytest.approx(expected, abs=1e-6)
    result = runner.invoke(app, ["stream", str(bundle)], input=json.dumps({**lines[0], "event_time": "soon"}) + "\n")
    assert result.exit_code == 2 and "field 'event_time'" in result.output
    assert "event layout rees46 (what stream reads)" in runner.invoke(app, ["info", str(bundle)]).output


def test_the_stream_router_cuts_a_users_sessions_as_training_did():
    from intent_edge.runtime.events import EventRouter

    router = EventRouter.from_reading({"layout": "retailrocket", "time_unit": "ms", "session_gap_seconds": 1800,
                                       "columns": {"session": None, "user": "visitorid", "event": "event",
                                                   "timestamp": "timestamp"}})
    minute = 60_000
    keys = [router.route({"visitorid": user, "event": "view", "timestamp": t})[0]
            for user, t in (("a", 0), ("a", 20 * minute), ("b", 21 * minute), ("a", 60 * minute), ("a", 61 * minute))]
    assert keys == ["a#1", "a#1", "b#1", "a#2", "a#2"]
