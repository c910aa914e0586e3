import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intent_edge.errors import RecordError
from intent_edge.runtime.encoder import CategoricalFeature, Encoder, NumericFeature, canonical_category

COLUMNS = {
    "pages": [0, 1, 3, 10, 200, 4],
    "rate": [0.1, 0.2, 0.0, 0.05, 0.15, 0.1],
    "browser": [1, 2, 2, 2, 1, 3],
    "visitor": ["new", "returning", "returning", "returning", "new", "returning"],
}
KINDS = {"pages": "numeric", "rate": "numeric", "browser": "categorical", "visitor": "categorical"}


def fitted(min_count=1, transforms=None):
    return Encoder.fit(COLUMNS, KINDS, transforms or {"pages": "log1p", "rate": "identity"},
                       min_category_count=min_count)


def records():
    return [dict(zip(COLUMNS, values, strict=True)) for values in zip(*COLUMNS.values(), strict=True)]


def test_fit_standardises_with_the_chosen_transform():
    encoder = fitted()
    pages = encoder.features[0]
    logged = np.log1p(np.array(COLUMNS["pages"], float))
    assert pages.transform == "log1p"
    assert pages.center == pytest.approx(logged.mean()) and pages.scale == pytest.approx(logged.std())
    encoded = encoder.encode_columns(COLUMNS)
    assert encoded.dtype == np.float32 and encoded.shape == (6, encoder.width)
    assert encoded[:, 0].mean() == pytest.approx(0.0, abs=1e-6)


def test_auto_transform_logs_only_skewed_non_negative_columns():
    encoder = Encoder.fit(COLUMNS, {"pages": "numeric", "rate": "numeric"})
    assert [f.transform for f in encoder.features] == ["log1p", "identity"]


def test_one_hot_layout_with_out_of_vocabulary_bucket():
    encoder = fitted(min_count=2)
    browser = encoder.features[2]
    assert browser.vocabulary == ("2", "1")  # "3" was seen once: below min_category_count, so OOV
    offset = encoder.offsets[2]
    row = encoder.encode_records([{**records()[0], "browser": 3}])[0]
    assert row[offset:offset + browser.width].tolist() == [0, 0, 1]
    row = encoder.encode_records([{**records()[0], "browser": "99"}])[0]
    assert row[offset + browser.width - 1] == 1


def test_record_and_column_paths_agree_exactly():
    encoder = fitted()
    assert np.array_equal(encoder.encode_records(records()), encoder.encode_columns(COLUMNS))


def test_spec_round_trips_through_json():
    encoder = fitted()
    rebuilt = Encoder.from_spec(json.loads(json.dumps(encoder.to_spec())))
    assert np.array_equal(rebuilt.encode_columns(COLUMNS), encoder.encode_columns(COLUMNS))
    assert rebuilt.to_spec() == encoder.to_spec()


def test_inconsistent_or_future_spec_is_refused():
    spec = fitted().to_spec()
    with pytest.raises(ValueError, match="version"):
        Encoder.from_spec({**spec, "spec_version": 99})
    with pytest.raises(ValueError, match="inconsistent"):
        Encoder.from_spec({**spec, "width": spec["width"] + 1})


@pytest.mark.parametrize("value, expected", [
    (2, "2"), (2.0, "2"), ("2", "2"), (" 2 ", "2"), (True, "true"), ("TRUE", "true"), ("False", "false"),
    (np.int64(7), "7"), ("New_Visitor", "New_Visitor"), (2.5, "2.5"),
])
def test_canonical_category(value, expected):
    assert canonical_category(value) == expected


def test_missing_field_is_named():
    record = records()[0]
    del record["rate"]
    with pytest.raises(RecordError, match="field 'rate': missing"):
        fitted().encode_records([record])


@pytest.mark.parametrize("field, value, message", [
    ("pages", "ten", "field 'pages': expected a number, got str 'ten'"),
    ("pages", True, "field 'pages': expected a number, got bool"),
    ("pages", math.inf, "field 'pages': is inf"),
    ("pages", 10**400, "field 'pages': is too large for a float64"),
    ("rate", 1.5e37, "field 'rate': 1.5e\\+37 is out of range"),
    ("rate", -2**60, "field 'rate': -1152921504606846976 is out of range"),
    ("pages", 10**308 * 10, "field 'pages': is too large for a float64"),
    ("pages", None, "field 'pages': expected a number, got None"),
    ("rate", float("nan"), "field 'rate': is NaN"),
    ("visitor", None, "field 'visitor': is empty"),
    ("visitor", [1], "field 'visitor': expected a category"),
])
def test_bad_values_are_named(field, value, message):
    with pytest.raises(RecordError, match=message.replace("(", r"\(")):
        fitted().encode_records([{**records()[0], field: value}])


def test_lenient_mode_fills_the_training_median_and_the_oov_bucket():
    encoder = fitted()
    record = {**records()[0], "rate": None, "visitor": None}
    row = encoder.encode_records([record], strict=False)[0]
    rate = encoder.features[1]
    assert row[1] == pytest.approx((rate.fill - rate.center) / rate.scale)
    visitor_offset = encoder.offsets[3]
    assert row[visitor_offset + encoder.features[3].width - 1] == 1


def test_huge_numbers_are_refused_in_columns_too():
    with pytest.raises(RecordError, match="record at index 1: field 'pages': is too large"):
        fitted().encode_columns({**COLUMNS, "pages": [1, 10**400, 3, 4, 5, 6]})


def test_column_errors_name_the_row():
    with pytest.raises(RecordError, match="record at index 2: field 'pages'"):
        fitted().encode_columns({**COLUMNS, "pages": [1, 2, "x", 4, 5, 6]})


def test_log1p_clips_negative_values_at_zero():
    encoder = Encoder([NumericFeature("d", "log1p", 0.0, 0.0, 1.0), CategoricalFeature("c", ("a",))])
    assert encoder.encode_records([{"d": -5.0, "c": "a"}])[0, 0] == 0.0


_numbers = st.one_of(st.integers(-10**6, 10**20), st.floats(-1e9, 1e12, allow_nan=False, allow_infinity=False))
_categories = st.one_of(st.integers(-5, 50), st.booleans(), st.text(max_size=8))
_rates = st.one_of(st.integers(-1000, 1000), st.floats(-1e3, 1e3))  # inside the out-of-range limit (std 0.06)
_records = st.fixed_dictionaries({"pages": _numbers, "rate": _rates, "browser": _categories,
                                  "visitor": _categories})


@settings(max_examples=200, deadline=None)
@given(st.lists(_records, min_size=1, max_size=20))
def test_any_valid_records_encode_to_finite_one_hot_rows(batch):
    encoder = fitted()
    from_records = encoder.encode_records(batch)
    assert np.isfinite(from_records).all()
    for feature, offset in zip(encoder.features, encoder.offsets, strict=True):
        if isinstance(feature, CategoricalFeature):
            assert (from_records[:, offset:offset + feature.width].sum(axis=1) == 1).all()
    columns = {name: [record[name] for record in batch] for name in encoder.names}
    np.testing.assert_array_equal(encoder.encode_columns(columns), from_records)


def _by_records(encoder, columns, strict=True):
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return encoder.encode_records(rows, strict=strict)


@pytest.mark.parametrize("browser", [
    [1, 2, 2, 2, 1, 3],                                # integers: a lookup table, no call per value
    [True, 1, 2, "2", 2.0, True],                      # True and 1 compare equal but are different categories
    ["1", " 2", "2", None, "3", "x"],                  # text with a missing value (lenient)
])
def test_columns_are_encoded_per_distinct_value_like_records(browser):
    pd = pytest.importorskip("pandas")
    encoder = fitted()
    columns = {**COLUMNS, "browser": browser}
    expected = _by_records(encoder, columns, strict=False)
    np.testing.assert_array_equal(encoder.encode_columns(columns, strict=False), expected)
    frame = pd.DataFrame(columns)
    np.testing.assert_array_equal(encoder.encode_columns(frame, strict=False), expected)
    # pandas' own categorical conversion merges True with 1 (they hash alike): not a case to compare
    if not any(value is True for value in browser):
        frame["browser"] = frame["browser"].astype("category")
        np.testing.assert_array_equal(encoder.encode_columns(frame, strict=False), expected)


def test_a_column_error_names_the_earliest_bad_row():
    pd = pytest.importorskip("pandas")
    columns = {**COLUMNS, "visitor": ["new", "new", [1], None, "returning", "new"]}
    for batch in (columns, pd.DataFrame(columns)):
        with pytest.raises(RecordError) as caught:
            fitted().encode_columns(batch)
        assert caught.value.row == 2 and caught.value.field == "visitor"
    columns["visitor"] = ["new", None, "x", "new", "new", "new"]
    with pytest.raises(RecordError, match="record at index 1: field 'visitor': is empty"):
        fitted().encode_columns(pd.DataFrame(columns))


def test_large_batches_encode_a_chunk_of_rows_at_a_time_with_the_same_result(monkeypatch):
    """Above ``_CHUNK_ROWS`` rows the batch encoder works chunk by chunk; the result and the row an error
    names must not change (chunks of 4 here, so that 6 rows make two chunks)."""
    pd = pytest.importorskip("pandas")
    from intent_edge.runtime import encoder as encoder_module

    encoder = fitted()
    whole = encoder.encode_columns(COLUMNS)
    monkeypatch.setattr(encoder_module, "_CHUNK_ROWS", 4)
    for batch in (COLUMNS, pd.DataFrame(COLUMNS), {n: np.asarray(v) for n, v in COLUMNS.items()},
                  {n: pd.Series(v, index=range(10, 16)) for n, v in COLUMNS.items()}):
        np.testing.assert_array_equal(encoder.encode_columns(batch), whole)
    bad = {**COLUMNS, "visitor": ["new", "new", "new", "new", "returning", None]}
    with pytest.raises(RecordError, match="record at index 5: field 'visitor': is empty"):
        encoder.encode_columns(pd.DataFrame(bad))
