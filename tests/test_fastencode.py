"""The encoder's compiled single-record fast path: identical rows to the checked path, or it declines."""

import math
import shutil
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intent_edge.runtime import encoder as encoder_module
from intent_edge.runtime.encoder import Encoder

fast = encoder_module._fastencode
_COMPILER = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(fast is None and _COMPILER is None,
                                reason="no C compiler on this host, so the fast path was not built; the checked "
                                       "Python path serves alone")

COLUMNS = {
    "pages": [0, 1, 3, 10, 200, 4, 7, 2, 0, 5],
    "rate": [0.1, 0.2, 0.0, 0.05, 0.15, 0.1, 0.3, 0.02, 0.0, 0.12],
    "browser": [1, 2, 2, 2, 1, 3, 2, 1, 1, 2],
    "month": ["Aug", "May", "May", "Nov", "Aug", "May", "Nov", "Nov", "Aug", "May"],
    "weekend": [True, False, False, True, False, False, True, False, False, True],
}
ENCODER = Encoder.fit(COLUMNS, {"pages": "numeric", "rate": "numeric", "browser": "categorical",
                                "month": "categorical", "weekend": "categorical"},
                      {"pages": "log1p", "rate": "identity"}, min_category_count=1)
PLAIN = {"pages": 3, "rate": 0.1, "browser": 2, "month": "Aug", "weekend": False}


def test_fast_path_is_built_where_a_compiler_is():
    assert fast is not None, f"{_COMPILER} is present but the fast path was not built: run pip install -e . again"
    assert ENCODER.fast_path


def checked(record):
    return ENCODER._encode_record_checked(record, np.empty(ENCODER.width, dtype=np.float32))


@pytest.mark.parametrize("record", [
    PLAIN,
    {**PLAIN, "pages": 3.0, "browser": "2"},
    {**PLAIN, "weekend": "TRUE"},  # a spelling canonical_category folds onto "true"
    {**PLAIN, "weekend": "false"},
    {**PLAIN, "pages": -4, "extra": object()},  # negative counts log to 0; extra fields are ignored
    {**PLAIN, "pages": 10**30},  # a huge int within the out-of-range limit after log1p
])
def test_plain_records_take_the_fast_path_with_identical_rows(record):
    row = np.full(ENCODER.width, 7.0, dtype=np.float32)
    assert fast.encode(ENCODER.fast_plan, record, row)
    np.testing.assert_array_equal(row, checked(record))


@pytest.mark.parametrize("record", [
    {k: v for k, v in PLAIN.items() if k != "rate"},  # missing field
    {**PLAIN, "rate": None}, {**PLAIN, "rate": math.nan}, {**PLAIN, "rate": math.inf},
    {**PLAIN, "rate": np.float64(0.1)}, {**PLAIN, "rate": True}, {**PLAIN, "rate": "0.1"},
    {**PLAIN, "rate": 1e12},  # out of range: the checked path names it
    {**PLAIN, "pages": 10**400},  # too large for a float64
    {**PLAIN, "month": " Aug"}, {**PLAIN, "month": "Dec"}, {**PLAIN, "browser": 2.0}, {**PLAIN, "browser": None},
    types.MappingProxyType(PLAIN),  # a mapping that is not a dict
])
def test_everything_else_is_declined_and_nothing_is_written(record):
    row = np.full(ENCODER.width, 7.0, dtype=np.float32)
    assert not fast.encode(ENCODER.fast_plan, record, row)
    assert (row == 7.0).all()


@pytest.mark.parametrize("out", [np.zeros(ENCODER.width, dtype=np.float64), np.zeros(ENCODER.width + 1, np.float32),
                                 np.zeros((2, ENCODER.width), np.float32)[:, 0], b"\0" * (4 * ENCODER.width)])
def test_a_row_that_is_not_a_writable_float32_row_of_the_width_is_declined(out):
    assert not fast.encode(ENCODER.fast_plan, PLAIN, out)


_values = st.one_of(st.none(), st.booleans(), st.integers(-10**25, 10**25), st.integers(), st.floats(),
                    st.sampled_from(["Aug", "May", "Nov", "Dec", "TRUE", "False", "1", "2", " 2", "", "true"]),
                    st.floats(-1e6, 1e6).map(np.float64), st.integers(-3, 3).map(np.int64))

_valid = {"pages": st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)), "rate": st.floats(-1, 1),
          "browser": st.sampled_from([1, 2, 3, "1", "2"]), "month": st.sampled_from(["Aug", "May", "Nov"]),
          "weekend": st.sampled_from([True, False, "true", "FALSE", "False"])}

@st.composite
def _records(draw):
    """A valid record with at most one field replaced by anything and at most one dropped: both outcomes
    (taken, declined) come up often."""
    record = {name: draw(valid) for name, valid in _valid.items()}
    replaced = draw(st.sampled_from([None, None, None, *record]))
    if replaced is not None:
        record[replaced] = draw(_values)
    dropped = draw(st.sampled_from([None, None, None, *record]))
    record.pop(dropped, None)
    return record


@settings(max_examples=500, deadline=None)
@given(_records())
def test_fast_path_matches_the_checked_path_or_declines(record):
    row = np.full(ENCODER.width, 7.0, dtype=np.float32)
    if fast.encode(ENCODER.fast_plan, record, row):
        np.testing.assert_array_equal(row, checked(record))  # the checked path accepts it too, same row
    else:
        assert (row == 7.0).all()


def test_encode_record_gives_the_same_rows_with_and_without_the_fast_path():
    records = [{**PLAIN, "pages": p, "rate": r, "browser": b, "month": m, "weekend": w}
               for p, r, b, m, w in zip(*COLUMNS.values(), strict=True)]
    with_fast = ENCODER.encode_records(records)
    without = np.stack([checked(record) for record in records])
    np.testing.assert_array_equal(with_fast, without)
    np.testing.assert_array_equal(with_fast, ENCODER.encode_columns(COLUMNS))


def _rebuilt_keys(record):
    """The same record with key objects that are equal to, but not, the originals."""
    return {"".join(list(key)): value for key, value in record.items()}


class _Name(str):
    """A str subclass as a key: the layout is not cached for it, and the record still encodes."""


@pytest.mark.parametrize("follow", [
    lambda first: {**first, "pages": 40, "month": "Nov"},  # same key objects, new values: the cached layout
    lambda first: dict(reversed(list(first.items()))),  # same keys in another order
    _rebuilt_keys,  # equal keys that are other objects
    lambda first: {**first, "extra": 1},  # one key more
    lambda first: {_Name(key): value for key, value in first.items()},
    lambda first: {**{k: v for k, v in first.items() if k != "rate"}, "rat": 0.1},  # as many keys, one field gone
    lambda first: {k: v for k, v in first.items() if k != "month"},
])
def test_a_record_after_another_is_read_by_its_own_keys(follow):
    """The fast path caches the key layout of the last record; whatever the next record's layout, its row
    is the checked path's, or it is declined exactly when the checked path would name a missing field."""
    plan = ENCODER._make_fast_plan()
    first = dict(PLAIN)
    row = np.full(ENCODER.width, 7.0, dtype=np.float32)
    assert fast.encode(plan, first, row)
    for _ in range(2):  # the second pass meets the layout the first one cached
        record = follow(first)
        row = np.full(ENCODER.width, 7.0, dtype=np.float32)
        if all(name in record for name in _valid):
            assert fast.encode(plan, record, row)
            np.testing.assert_array_equal(row, checked(record))
        else:
            assert not fast.encode(plan, record, row)
            assert (row == 7.0).all()
    assert fast.encode(plan, first, row)  # and back to the first layout
    np.testing.assert_array_equal(row, checked(first))


def test_a_cached_layout_holds_its_keys_alive_and_lets_them_go_with_the_plan():
    plan = ENCODER._make_fast_plan()
    key = "".join(["pa", "ges"])
    record = {key: 3, **{k: v for k, v in PLAIN.items() if k != "pages"}}
    before = sys.getrefcount(key)
    assert fast.encode(plan, record, np.zeros(ENCODER.width, np.float32))
    assert sys.getrefcount(key) == before + 1  # held by the layout, so its address cannot be reused
    del plan
    assert sys.getrefcount(key) == before
