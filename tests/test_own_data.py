"""Bring your own data (issue 23): real tables with empty values train and score, in every column kind,
under pandas' string dtype and under object columns alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intent_edge.data.synth import generate_sessions

STRING_DTYPES = ["str", "object"]  # pandas 3's string dtype, and the object columns older code and files give


def with_blanks(frame: pd.DataFrame, columns, share: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """``frame`` with ``share`` of each of ``columns`` made empty (missing), at seeded rows."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    for name in columns:
        rows = rng.choice(len(frame), size=max(1, int(share * len(frame))), replace=False)
        if pd.api.types.is_bool_dtype(frame[name]):
            frame[name] = frame[name].astype(object)  # True/False with gaps, as a file's TRUE/FALSE/"" reads
        elif not pd.api.types.is_float_dtype(frame[name]) and pd.api.types.is_numeric_dtype(frame[name]):
            frame[name] = frame[name].astype(np.float64)
        frame.loc[rows, name] = None
    return frame


def text_columns_as(frame: pd.DataFrame, dtype: str) -> pd.DataFrame:
    return frame.astype({name: dtype for name in frame.columns
                         if pd.api.types.is_string_dtype(frame[name]) or frame[name].dtype == object})


@pytest.mark.parametrize("dtype", STRING_DTYPES)
@pytest.mark.parametrize("model", ["lightgbm", "catboost"])
def test_the_teacher_takes_empty_categories(dtype, model):
    """CatBoost refused a missing category (pandas 3 keeps it missing through astype(str)): the traceback
    'Invalid type for cat_feature[...] = nan' stopped `train` on every table with an empty category."""
    from intent_edge.data.schema import UCI_SCHEMA
    from intent_edge.train.teacher import EMPTY_CATEGORY, catboost_frame, out_of_fold_probabilities, teacher_frame

    frame = generate_sessions(400, seed=2)
    labels = frame.pop("Revenue").to_numpy().astype(int)
    frame = text_columns_as(with_blanks(frame, ["VisitorType", "Month"]), dtype)
    assert frame["VisitorType"].isna().sum() == 20
    # an empty category is missing to LightGBM and one category of its own to CatBoost, whatever the dtype
    assert teacher_frame(frame, UCI_SCHEMA.kinds)["VisitorType"].isna().sum() == 20
    assert (catboost_frame(frame, UCI_SCHEMA.kinds)["VisitorType"] == EMPTY_CATEGORY).sum() == 20
    probabilities = out_of_fold_probabilities(frame, labels, UCI_SCHEMA.kinds, folds=2, seed=0, model=model)
    assert np.isfinite(probabilities).all() and ((0 < probabilities) & (probabilities < 1)).all()


def fitted_with_blanks(dtype: str):
    """An encoder fitted on a synthetic table whose VisitorType, Month, PageValues and ExitRates are 5% empty."""
    from intent_edge.data.schema import UCI_SCHEMA
    from intent_edge.runtime.encoder import Encoder

    frame = generate_sessions(600, seed=4).drop(columns=["Revenue"])
    frame = text_columns_as(with_blanks(frame, ["VisitorType", "Month", "PageValues", "ExitRates"]), dtype)
    return Encoder.fit(frame, UCI_SCHEMA.kinds, UCI_SCHEMA.transforms), frame


@pytest.mark.parametrize("dtype", STRING_DTYPES)
def test_fields_learn_whether_they_may_be_empty(dtype):
    from intent_edge.errors import RecordError
    from intent_edge.runtime.encoder import Encoder

    encoder, frame = fitted_with_blanks(dtype)
    spec = encoder.to_spec()
    fractions = {f["name"]: f["empty_fraction"] for f in spec["features"]}
    assert fractions["VisitorType"] == fractions["PageValues"] == pytest.approx(0.05)
    assert fractions["Browser"] == fractions["Administrative"] == 0.0
    assert Encoder.from_spec(spec).to_spec() == spec
    by_name = dict(zip(encoder.names, zip(encoder.features, encoder.offsets, strict=True), strict=True))
    pages, pages_at = by_name["PageValues"]
    visitor, visitor_at = by_name["VisitorType"]
    assert pages.width == 2 and visitor.width == len(visitor.vocabulary) + 2

    # strict mode takes an empty value where the field may be empty: imputed and flagged
    record = frame.iloc[0].to_dict() | {"PageValues": None, "VisitorType": None}
    row = encoder.encode_record(record, np.zeros(encoder.width, dtype=np.float32))
    filled = encoder.encode_record(record | {"PageValues": pages.fill}, np.zeros(encoder.width, dtype=np.float32))
    assert row[pages_at] == filled[pages_at] and row[pages_at + 1] == 1.0 and filled[pages_at + 1] == 0.0
    block = row[visitor_at:visitor_at + visitor.width]
    assert block[visitor.empty_index] == 1.0 and block.sum() == 1.0 and visitor.empty_index != visitor.unknown_index
    unseen = encoder.encode_record(record | {"VisitorType": "Robot"}, np.zeros(encoder.width, dtype=np.float32))
    assert unseen[visitor_at + visitor.unknown_index] == 1.0
    assert np.array_equal(row, encoder.encode_record(record | {"VisitorType": "  "},
                                                     np.zeros(encoder.width, dtype=np.float32)))
    # a field never empty in training is still refused when empty, by name
    with pytest.raises(RecordError, match="field 'Browser'.*empty"):
        encoder.encode_record(record | {"Browser": None}, np.zeros(encoder.width, dtype=np.float32))
    with pytest.raises(RecordError, match="field 'Administrative'.*empty"):
        encoder.encode_columns(frame.assign(Administrative=np.nan))
    # the batch path, the checked per-record path and the compiled fast path agree on the same rows
    batch = encoder.encode_columns(frame)
    assert np.array_equal(batch, encoder.encode_records(frame.to_dict("records")))
    assert batch[:, pages_at + 1].sum() == 30 and batch[frame["PageValues"].isna().to_numpy(), pages_at + 1].all()


def test_an_old_spec_keeps_todays_behaviour():
    """A version-1 spec has no empty_fraction: no field may be empty in strict mode, and the widths stay."""
    from intent_edge.errors import RecordError
    from intent_edge.runtime.encoder import Encoder

    encoder, frame = fitted_with_blanks("str")
    old = Encoder.fit(frame.dropna(), *fitted_kinds()).to_spec()
    old["spec_version"] = 1
    for feature in old["features"]:
        del feature["empty_fraction"]
    reread = Encoder.from_spec(old)
    assert reread.width == sum(len(f.get("vocabulary", ())) + 1 for f in old["features"])
    with pytest.raises(RecordError, match="field 'PageValues'"):
        reread.encode_record(frame.iloc[0].to_dict() | {"PageValues": None}, np.zeros(reread.width, np.float32))
    lenient = reread.encode_record(frame.iloc[0].to_dict() | {"VisitorType": None},
                                   np.zeros(reread.width, np.float32), strict=False)
    visitor_at = reread.offsets[reread.names.index("VisitorType")]
    visitor = reread.features[reread.names.index("VisitorType")]
    assert lenient[visitor_at + visitor.unknown_index] == 1.0  # lenient: the out-of-vocabulary bucket, as before


def fitted_kinds():
    from intent_edge.data.schema import UCI_SCHEMA

    return UCI_SCHEMA.kinds, UCI_SCHEMA.transforms


@pytest.mark.parametrize("dtype", STRING_DTYPES)
def test_the_raw_field_graph_follows_the_empty_buckets(dtype, tmp_path):
    """The raw-field graph encodes empty values as the runtime does, in strict mode."""
    pytest.importorskip("onnx", reason="building raw-field graphs needs the onnx package (the train extra)")
    from intent_edge.raw_graph import encoder_model, field_table, input_names, raw_feeds
    from intent_edge.runtime.backends import load_runner

    encoder, frame = fitted_with_blanks(dtype)
    import onnx

    names = input_names(encoder.names)
    model = encoder_model(encoder, names, "features", opset=17, ir_version=8)
    onnx.save(model, tmp_path / "encoder.onnx")
    records = [{k: None if pd.isna(v) else v for k, v in r.items()} for r in frame.iloc[:200].to_dict("records")]
    assert any(r["VisitorType"] is None for r in records) and any(r["PageValues"] is None for r in records)
    graph = load_runner("onnxruntime", tmp_path / "encoder.onnx")
    encoded = graph.run(raw_feeds(records, field_table(encoder, names)))[0]
    np.testing.assert_allclose(encoded, encoder.encode_records(records), rtol=0, atol=1e-6)


CATEGORICAL = ["Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType", "Weekend"]


def test_a_table_with_empty_values_goes_through_every_command(tmp_path):
    """5% of every categorical column and of two numeric ones empty: train, evaluate, compress, score,
    predict and serve work with no extra flag, and the strict runtime takes the empties."""
    import json

    from typer.testing import CliRunner

    from intent_edge.cli import app
    from intent_edge.runtime import Predictor
    from intent_edge.runtime.bundle import read_manifest

    def invoke(*args):
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result

    blanks = [*CATEGORICAL, "PageValues", "ExitRates"]
    data, new = tmp_path / "sessions.csv", tmp_path / "new.csv"
    with_blanks(generate_sessions(1500, seed=1), blanks).to_csv(data, index=False)
    new_frame = with_blanks(generate_sessions(200, seed=2), blanks, seed=3)
    new_frame.to_csv(new, index=False)
    bundle = tmp_path / "bundle"
    invoke("train", data, "--label", "Revenue", "--out", bundle, "--max-epochs", 2)
    spec = {f["name"]: f for f in read_manifest(bundle)["encoder"]["features"]}
    assert all(spec[name]["empty_fraction"] > 0 for name in blanks)
    assert spec["Administrative"]["empty_fraction"] == 0
    invoke("evaluate", new, "--bundle", bundle)
    invoke("compress", bundle, "--data", data, "--methods", "litert-int8")
    invoke("score", bundle, new, "--output", tmp_path / "scored.csv")
    assert len(pd.read_csv(tmp_path / "scored.csv")) == 200
    records = [{k: None if pd.isna(v) else v for k, v in r.items()}
               for r in new_frame.drop(columns=["Revenue"]).to_dict("records")]
    empty_record = next(r for r in records if r["VisitorType"] is None or r["PageValues"] is None)
    answer = json.loads(invoke("predict", bundle, json.dumps(empty_record)).output)
    predictor = Predictor.load(bundle)
    assert answer["probability"] == pytest.approx(predictor.predict(empty_record), abs=1e-6)
    assert np.isfinite(predictor.predict_batch(records)).all()
    from intent_edge.errors import RecordError

    with pytest.raises(RecordError, match="field 'Administrative'"):
        predictor.predict(empty_record | {"Administrative": None})
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    from starlette.testclient import TestClient

    from intent_edge.serve import Service, create_app

    with TestClient(create_app(Service(bundle))) as client:
        reply = client.post("/v1/predict", json={"record": empty_record})
        assert reply.status_code == 200, reply.text
        assert reply.json()["probability"] == pytest.approx(answer["probability"], abs=1e-6)


def table_with_roles(rows: int = 600, seed: int = 5) -> pd.DataFrame:
    """A synthetic session table with an integer ID, day-first dates, epoch seconds, a store code, a
    constant column and a column written after the purchase."""
    frame = generate_sessions(rows, seed=seed)
    rng = np.random.default_rng(seed)
    frame.insert(0, "ID", rng.permutation(100 * rows)[:rows] + 1000)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D")
    frame["visit_date"] = days.strftime("%d-%m-%Y")
    frame["created_at"] = (days - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    frame["store_id"] = rng.integers(1, 6, rows)
    frame["channel"] = "web"
    frame["order_total"] = np.where(frame["Revenue"], rng.uniform(10, 200, rows), 0.0)
    return frame


@pytest.mark.parametrize("dtype", STRING_DTYPES)
def test_identifiers_dates_and_constants_are_left_out_with_their_reason(tmp_path, dtype):
    from intent_edge.data.io import load_dataset, resolve_schema

    frame = text_columns_as(table_with_roles(), dtype)
    frame["ID"] = frame["ID"].astype(np.int64)
    schema = resolve_schema(frame, "t.csv", "Revenue", None)
    assert set(schema.ignored) == {"ID", "visit_date", "created_at", "channel"}
    assert schema.reasons["ID"].startswith("an identifier")
    assert schema.reasons["visit_date"] == "dates (%d-%m-%Y); the runtime does not parse dates"
    assert schema.reasons["created_at"].startswith("epoch times")
    assert schema.reasons["channel"] == "constant: 'web' in every row"
    assert schema.kinds["store_id"] == "categorical" and schema.kinds["order_total"] == "numeric"
    # an integer ID that is not named id is still an identifier: 95% of its values are distinct
    renamed = resolve_schema(frame.rename(columns={"ID": "visitor_no"}), "t.csv", "Revenue", None)
    assert renamed.reasons["visitor_no"] == "an identifier: 600 distinct values in 600"
    # the schema file's new kinds force a role, and a forced feature stays a feature
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    (tmp_path / "schema.json").write_text('{"columns": {"store_id": "identifier", "ID": "categorical", '
                                          '"order_total": "date"}}')
    forced = load_dataset(path, "Revenue", schema_file=tmp_path / "schema.json").schema
    assert forced.reasons["store_id"] == "identifier, as the schema file says"
    assert forced.reasons["order_total"] == "date, as the schema file says"
    assert forced.kinds["ID"] == "categorical"


@pytest.mark.parametrize("layout", ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y", "%d.%m.%Y %H:%M"])
def test_date_layouts_are_recognised(layout):
    from intent_edge.data.schema import infer_role

    days = pd.Timestamp("2023-05-01") + pd.to_timedelta(np.arange(200) % 90, unit="D")
    assert infer_role("when", pd.Series(days.strftime(layout)))[0] == "date"
    assert infer_role("Month", pd.Series(["Feb", "Mar", "Nov"] * 50))[0] == "categorical"
    durations = pd.Series(np.arange(200) * 3.5)  # a duration named after time is not an instant
    assert infer_role("time_on_page", durations)[0] == "numeric"


def test_train_reports_data_quality_and_warns_of_a_leaking_column(tmp_path, tiny_recipe):
    from intent_edge.data.io import load_dataset
    from intent_edge.train.pipeline import train_bundle

    frame = with_blanks(table_with_roles(800), ["VisitorType", "PageValues"])
    frame = pd.concat([frame, frame.iloc[:7]], ignore_index=True)  # 7 duplicate rows
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    steps = []
    manifest = train_bundle(load_dataset(path, "Revenue"), tmp_path / "bundle", recipe=tiny_recipe, seed=0,
                            on_step=steps.append)
    quality = manifest["data_quality"]
    assert quality["rows"] == 807 and quality["duplicate_rows"] == 7
    assert quality["columns"]["PageValues"] == {"kind": "numeric", "role": "feature", "empty": 40,
                                                "distinct": frame["PageValues"].nunique()}
    assert quality["columns"]["ID"]["role"] == "ignored" and "ID" in quality["ignored"]
    assert len(quality["warnings"]) == 1 and "'order_total' alone reaches ROC-AUC" in quality["warnings"][0]
    assert "data: 807 rows, 7 duplicate rows" in steps and any(s.startswith("warning: column 'order_total'")
                                                               for s in steps)
