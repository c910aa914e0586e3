import json

import numpy as np
import pandas as pd
import pytest

from intent_edge.data.io import load_dataset, read_records, read_table, sniff_delimiter, write_table
from intent_edge.data.schema import UCI_COLUMNS
from intent_edge.data.synth import generate_sessions
from intent_edge.errors import DataError, SchemaError

from .conftest import UCI_CSV, requires_uci


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


GENERIC = "session_id;pages;seconds;device_type;channel;bought\n" + "".join(
    f"s{i};{i % 7};{(i * 37) % 500}.5;{i % 3};{['web', 'app'][i % 2]};{['yes', 'no'][i % 3 == 0]}\n"
    for i in range(150))


def test_generic_csv_trains_with_label_alone(tmp_path):
    dataset = load_dataset(write(tmp_path, GENERIC), "bought")
    assert sniff_delimiter(tmp_path / "data.csv") == ";"
    assert dataset.schema.kinds == {"pages": "numeric", "seconds": "numeric", "device_type": "categorical",
                                    "channel": "categorical"}
    assert dataset.schema.ignored == ("session_id",)  # identifier-like text
    assert dataset.labels.tolist()[:4] == [0, 1, 1, 0]


@pytest.mark.parametrize("true, false", [("TRUE", "FALSE"), ("yes", "no"), ("1", "0"), ("True", "False")])
def test_label_spellings(tmp_path, true, false):
    text = "a,b,label\n" + "".join(f"{i},{i % 2},{[false, true][i % 2]}\n" for i in range(10))
    assert load_dataset(write(tmp_path, text), "label").labels.tolist() == [0, 1] * 5


def test_tab_separated_and_parquet(tmp_path):
    frame = generate_sessions(200, seed=1)
    write_table(frame, tmp_path / "s.parquet")
    (tmp_path / "s.tsv").write_text(pd.read_csv(_csv(frame, tmp_path)).to_csv(sep="\t", index=False))
    from_parquet = load_dataset(tmp_path / "s.parquet")
    from_tsv = load_dataset(tmp_path / "s.tsv")
    assert from_parquet.schema == from_tsv.schema
    assert np.array_equal(from_parquet.labels, from_tsv.labels)


def _csv(frame, tmp_path):
    path = tmp_path / "s.csv"
    write_table(frame, path)
    return path


def test_uci_layout_gets_the_builtin_schema(tmp_path):
    dataset = load_dataset(_csv(generate_sessions(300, seed=2), tmp_path))  # no --label: Revenue
    assert dataset.schema.label == "Revenue"
    for code in ("OperatingSystems", "Browser", "Region", "TrafficType"):
        assert dataset.schema.kinds[code] == "categorical"
    assert dataset.schema.transforms["PageValues"] == "log1p"


def test_schema_file_forces_kinds(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"columns": {"pages": "categorical", "seconds": {"kind": "numeric",
                                                                                  "transform": "identity"}}}))
    dataset = load_dataset(write(tmp_path, GENERIC), "bought", schema_file=schema)
    assert dataset.schema.kinds["pages"] == "categorical"
    assert dataset.schema.transforms["seconds"] == "identity"
    schema.write_text(json.dumps({"columns": {"pages": "ordinal"}}))
    with pytest.raises(SchemaError, match="column 'pages': kind must be one of"):
        load_dataset(write(tmp_path, GENERIC), "bought", schema_file=schema)


# ---- bad input: each message names the file, and the row and column where they exist ----------------
def test_missing_label_column(tmp_path):
    with pytest.raises(DataError, match=r"data.csv: label column 'Revenue' not found; the columns are: a, b"):
        load_dataset(write(tmp_path, "a,b\n1,2\n"), "Revenue")


def test_no_label_named(tmp_path):
    with pytest.raises(DataError, match="name the label column with --label"):
        load_dataset(write(tmp_path, "a,b\n1,2\n"))


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="data.csv: the file is empty"):
        load_dataset(write(tmp_path, ""), "y")


def test_header_only_file(tmp_path):
    with pytest.raises(DataError, match="data.csv: the file has a header but no data rows"):
        load_dataset(write(tmp_path, "a,b,y\n"), "y")


def test_column_empty_in_every_row(tmp_path):
    """Inferred, an empty column is constant and left out with its reason; forced to be a feature, it is
    an error naming the column."""
    text = "a,b,y\n" + "".join(f"{i},,{i % 2}\n" for i in range(6))
    schema = load_dataset(write(tmp_path, text), "y").schema
    assert schema.ignored == ("b",) and schema.reasons["b"] == "constant: empty in every row"
    (tmp_path / "schema.json").write_text('{"columns": {"b": "numeric"}}')
    with pytest.raises(DataError, match="data.csv, column 'b': the column is empty in every row"):
        load_dataset(write(tmp_path, text), "y", schema_file=tmp_path / "schema.json")


def test_text_in_numeric_column_names_row_line_and_column(tmp_path):
    rows = [f"{i % 7},{i * 1.5},{i % 2}" for i in range(30)]
    rows[16] = "2,abc,0"
    with pytest.raises(DataError, match=r"data.csv, row 17 \(line 18\), column 'b': expected a number, got 'abc'"):
        load_dataset(write(tmp_path, "a,b,y\n" + "\n".join(rows) + "\n"), "y")


def test_bad_label_value_names_row(tmp_path):
    text = "a,y\n1,yes\n2,no\n3,maybe\n"
    with pytest.raises(DataError, match=r"row 3 \(line 4\), column 'y': the label must be TRUE/FALSE, yes/no or "
                                        r"1/0, got 'maybe'"):
        load_dataset(write(tmp_path, text), "y")


def test_single_class(tmp_path):
    text = "a,y\n1,FALSE\n2,FALSE\n"
    with pytest.raises(DataError, match=r"column 'y': every row has the same label \(FALSE\)"):
        load_dataset(write(tmp_path, text), "y")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_jsonl_records_and_bad_json_line(tmp_path):
    good = write(tmp_path, '{"a": 1}\n\n{"a": 2}\n', "r.jsonl")
    assert read_records(good)["a"].tolist() == [1, 2]
    bad = write(tmp_path, '{"a": 1}\n{"a": \n', "bad.jsonl")
    with pytest.raises(DataError, match=r"bad.jsonl, row 2 \(line 2\): not valid JSON"):
        read_records(bad)


# ---- the synthetic generator ------------------------------------------------------------------------
def test_synthetic_sessions_have_the_uci_layout_and_about_15_percent_buyers():
    frame = generate_sessions(20000, seed=0)
    assert tuple(frame.columns) == UCI_COLUMNS
    assert 0.12 <= frame["Revenue"].mean() <= 0.19
    assert set(frame["Month"]) <= {"Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
    assert set(frame["VisitorType"]) == {"Returning_Visitor", "New_Visitor", "Other"}
    assert (frame["BounceRates"] <= frame["ExitRates"]).all() and frame["ExitRates"].max() <= 0.2


def test_synthetic_sessions_are_deterministic_for_a_seed():
    pd.testing.assert_frame_equal(generate_sessions(500, seed=4), generate_sessions(500, seed=4))
    assert not generate_sessions(500, seed=4).equals(generate_sessions(500, seed=5))


@requires_uci
def test_synthetic_types_match_the_real_file(tmp_path):
    real = pd.read_csv(UCI_CSV)
    synthetic = pd.read_csv(_csv(generate_sessions(500, seed=0), tmp_path))
    assert list(synthetic.columns) == list(real.columns)
    assert synthetic.dtypes.astype(str).to_dict() == real.dtypes.astype(str).to_dict()
