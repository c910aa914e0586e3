import json
from dataclasses import replace

import numpy as np
import pytest

from intent_edge.data.io import load_dataset, write_table
from intent_edge.data.synth import generate_sessions
from intent_edge.errors import UsageError
from intent_edge.runtime.bundle import read_manifest, sha256_of
from intent_edge.train.evaluate import ThresholdPolicy
from intent_edge.train.mlp import MLPRecipe, predict_probabilities
from intent_edge.train.pipeline import cross_validate, fit_model, split_for_test, train_bundle


def test_bundle_holds_every_artifact_with_checksums(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    files = [manifest["source_model"]["file"], manifest["golden"]["file"], manifest["variants"]["fp32"]["file"],
             manifest["variants"]["fp32"]["raw"]["file"], manifest["variants"]["fp32"]["native"],
             manifest["explain"]["background"]["file"], manifest["monitor"]["file"]]
    assert sorted(p.name for p in tiny_bundle.iterdir()) == ["background.json", "fp32.native.npz", "golden.json",
                                                              "manifest.json", "model.keras", "model.onnx",
                                                              "model.raw.onnx", "monitor.json"]
    for entry in files:
        path = tiny_bundle / entry["path"]
        assert entry["bytes"] == path.stat().st_size and entry["sha256"] == sha256_of(path)
    assert set(manifest["metrics"]["test"]) >= {"roc_auc", "pr_auc", "f1", "brier", "calibration_error"}
    assert 0 < manifest["threshold"]["value"] < 1
    assert {"tensorflow-cpu", "keras", "tf2onnx", "onnxruntime", "numpy"} & set(manifest["libraries"])
    assert not list(tiny_bundle.parent.glob(".*partial"))  # nothing half-written left beside it


def test_parity_is_recorded_on_at_least_1000_raw_rows(tiny_bundle):
    parity = read_manifest(tiny_bundle)["variants"]["fp32"]["parity"]
    assert parity["rows"] >= 1000
    assert parity["max_abs_diff"] <= parity["tolerance"]["max"] == 1e-5 and parity["passed"]


def test_golden_vectors_reproduce_with_the_runtime_encoder(tiny_bundle):
    from intent_edge.runtime import Predictor

    golden = json.loads((tiny_bundle / "golden.json").read_text())
    predictor = Predictor.load(tiny_bundle)
    records = [row["record"] for row in golden["rows"]]
    assert len(records) >= 200
    encoded = predictor.encoder.encode_records(records)
    assert np.array_equal(encoded, np.array([row["encoded"] for row in golden["rows"]], dtype=np.float32))
    np.testing.assert_allclose(predictor.predict_batch(records), [row["probability"] for row in golden["rows"]],
                               atol=1e-6)


def test_encoder_is_fitted_on_training_rows_only(synthetic_csv, tiny_recipe):
    dataset = load_dataset(synthetic_csv)
    train, test, _ = split_for_test(dataset, 0.2, seed=0)
    # Mark the held-out rows with a category and a numeric range that no training row has.
    features = dataset.features.copy()
    features.loc[test, "Month"] = "HeldOutMonth"
    features.loc[test, "BounceRates"] = 1000.0
    fitted = fit_model(features.iloc[train], dataset.labels[train], dataset.schema, tiny_recipe, 0,
                       ThresholdPolicy("max-f1"))
    month = fitted.encoder.features[fitted.encoder.names.index("Month")]
    bounce = fitted.encoder.features[fitted.encoder.names.index("BounceRates")]
    assert "HeldOutMonth" not in month.vocabulary
    assert bounce.center < 1.0  # the 1000s of the test rows would have dragged the mean far up
    # and only on the part of the training rows not carved off for validation
    assert fitted.rows["fit"] + fitted.rows["validation"] == len(train)


def test_same_seed_gives_the_same_model(synthetic_csv, tiny_recipe):
    dataset = load_dataset(synthetic_csv)
    policy = ThresholdPolicy("max-f1")
    first = fit_model(dataset.features, dataset.labels, dataset.schema, tiny_recipe, 7, policy)
    second = fit_model(dataset.features, dataset.labels, dataset.schema, tiny_recipe, 7, policy)
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    other = fit_model(dataset.features, dataset.labels, dataset.schema, tiny_recipe, 8, policy)
    assert not np.array_equal(first.model.get_weights()[0], other.model.get_weights()[0])


def test_failed_write_leaves_the_previous_bundle(tmp_path, synthetic_csv, tiny_recipe, monkeypatch):
    dataset = load_dataset(synthetic_csv)
    out = tmp_path / "bundle"
    train_bundle(dataset, out, recipe=tiny_recipe, seed=0)
    before = (out / "manifest.json").read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("intent_edge.train.pipeline.write_manifest", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        train_bundle(dataset, out, recipe=tiny_recipe, seed=1)
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_out_of_time_split_holds_out_the_latest_months(tmp_path):
    path = tmp_path / "s.csv"
    write_table(generate_sessions(3000, seed=5), path)
    dataset = load_dataset(path)
    train, test, split = split_for_test(dataset, 0.2, seed=0, time_column="Month")
    order = ["Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    latest_train = max(order.index(m) for m in dataset.frame["Month"].iloc[train])
    earliest_test = min(order.index(m) for m in dataset.frame["Month"].iloc[test])
    assert latest_train < earliest_test
    assert len(test) >= 0.2 * len(dataset.labels)
    assert split["kind"] == "out-of-time" and split["train_periods"][0] == "Feb" and split["test_periods"][-1] == "Dec"


def test_cross_validation_reports_each_fold_and_the_spread(synthetic_csv, tiny_recipe):
    result = cross_validate(load_dataset(synthetic_csv), 3, tiny_recipe, 0, ThresholdPolicy("max-f1"))
    assert [f["fold"] for f in result["folds"]] == [1, 2, 3]
    assert sum(f["rows"] for f in result["folds"]) == 1500
    aucs = [f["roc_auc"] for f in result["folds"]]
    assert result["summary"]["roc_auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert result["summary"]["roc_auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))


def test_killed_training_leaves_the_previous_bundle_loadable(tiny_bundle, synthetic_csv, tmp_path):
    """SIGKILL a real `train_bundle` process while it writes over an existing bundle: the old bundle stays."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    from intent_edge.runtime import Predictor

    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    before = (out / "manifest.json").read_bytes()
    code = (
        "from intent_edge.data.io import load_dataset\n"
        "from intent_edge.train.mlp import MLPRecipe\n"
        "from intent_edge.train import pipeline\n"
        "import time\n"
        "real = pipeline.export_onnx\n"
        "def slow(*args, **kwargs):\n"
        "    real(*args, **kwargs)\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"  # hold the process inside the write, where the kill lands
        "pipeline.export_onnx = slow\n"
        f"pipeline.train_bundle(load_dataset({str(synthetic_csv)!r}), {str(out)!r},\n"
        "                      recipe=MLPRecipe(hidden=(8,), max_epochs=2, patience=1, teacher='lightgbm'), seed=5)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        assert child.stdout.readline().strip() == "writing"
        staging = list(tmp_path.glob(".bundle.*.partial"))
        assert staging and (staging[0] / "model.onnx").exists()  # the new bundle is half-written
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert (out / "manifest.json").read_bytes() == before
    assert 0 < Predictor.load(out).predict(
        load_dataset(synthetic_csv).features.iloc[0].to_dict()) < 1
    # the next write to the same place clears the leftover
    train_bundle(load_dataset(synthetic_csv), out, recipe=MLPRecipe(hidden=(8,), max_epochs=2, patience=1,
                                                                       teacher="lightgbm"), seed=5)
    assert not list(tmp_path.glob(".bundle.*.partial"))


def test_an_old_bundles_recipe_keeps_the_behaviour_it_was_trained_with():
    """Recipes written before class weights changed and the teacher came in lack those fields: they
    must read back as they trained (balanced weights, no teacher), not as today's defaults."""
    old = {"hidden": [64, 32], "dropout": 0.2, "l2": 1e-4, "learning_rate": 1e-3, "batch_size": 256,
           "max_epochs": 200, "patience": 20, "validation_fraction": 0.2, "class_weight": "balanced"}
    recipe = MLPRecipe.from_json(old)
    assert (recipe.class_weight, recipe.teacher, recipe.teacher_weight, recipe.refit) == ("balanced", "none", 0.0,
                                                                                          False)
    assert MLPRecipe.from_json({k: v for k, v in old.items() if k != "class_weight"}).class_weight == "balanced"
    today = MLPRecipe()
    assert MLPRecipe.from_json(today.to_json()) == today and today.teacher == "lightgbm+catboost"
    with pytest.raises(UsageError, match=r"teacher must be one of lightgbm, catboost, lightgbm\+catboost, none"):
        MLPRecipe(teacher="xgboost")


def test_refit_ships_a_network_trained_on_every_training_row_for_the_chosen_epochs(synthetic_csv):
    """The selection network picks the epoch count and the threshold on validation rows it never fitted;
    the shipped network, encoder included, then learns from all training rows for exactly that many epochs."""
    from intent_edge.runtime.encoder import Encoder

    dataset = load_dataset(synthetic_csv)
    policy = ThresholdPolicy("max-f1")
    recipe = MLPRecipe(hidden=(8,), max_epochs=6, patience=2, teacher="none")
    selected = fit_model(dataset.features, dataset.labels, dataset.schema, replace(recipe, refit=False), 0, policy)
    epochs_seen = []
    refitted = fit_model(dataset.features, dataset.labels, dataset.schema, recipe, 0, policy,
                         on_epoch=lambda epoch, total, logs: epochs_seen.append((epoch, total, "val_auc" in logs)))
    assert refitted.rows == {**selected.rows, "refit": len(dataset.labels)}
    assert refitted.threshold == selected.threshold and refitted.epochs == selected.epochs
    refit_calls = [call for call in epochs_seen if not call[2]]  # no validation rows while refitting
    assert refit_calls == [(e, selected.epochs, False) for e in range(1, selected.epochs + 1)]
    assert refitted.encoder.to_spec() == Encoder.fit(dataset.features, dataset.schema.kinds,
                                                     dataset.schema.transforms).to_spec()
    assert refitted.encoder.to_spec() != selected.encoder.to_spec()
    x = refitted.encoder.encode_columns(dataset.features, strict=False)
    assert not np.allclose(predict_probabilities(refitted.model, x),
                           predict_probabilities(selected.model, selected.encoder.encode_columns(dataset.features,
                                                                                                strict=False)))


def test_train_model_takes_validation_rows_or_an_epoch_count_not_both():
    from intent_edge.train.mlp import build_mlp, train_model

    x, y = np.zeros((8, 3), np.float32), np.array([0, 1] * 4)
    recipe = MLPRecipe(hidden=(4,))
    for validation, epochs in (((x, y), 2), (None, None)):
        with pytest.raises(UsageError, match="validation rows .* or a number of epochs"):
            train_model(build_mlp(3, recipe), x, y, validation, recipe, epochs=epochs)


def test_the_teacher_sees_fit_rows_only_and_scores_each_out_of_fold(synthetic_csv, monkeypatch):
    from intent_edge.train import teacher

    dataset = load_dataset(synthetic_csv)
    seen = []
    real = teacher.out_of_fold_probabilities

    def spy(features, labels, kinds, *, folds, seed, model):
        seen.append(len(features))
        return real(features, labels, kinds, folds=folds, seed=seed, model=model)

    monkeypatch.setattr(teacher, "out_of_fold_probabilities", spy)
    recipe = MLPRecipe(hidden=(8,), max_epochs=2, patience=1, refit=False)
    fitted = fit_model(dataset.features, dataset.labels, dataset.schema, recipe, 0, ThresholdPolicy("max-f1"))
    assert seen == [fitted.rows["fit"]]  # not the validation rows
    seen.clear()
    steps = []
    refitted = fit_model(dataset.features, dataset.labels, dataset.schema, MLPRecipe(hidden=(8,), max_epochs=2,
                         patience=1), 0, ThresholdPolicy("max-f1"), on_step=steps.append)
    assert steps[0] == f"fitting the lightgbm+catboost teacher on {refitted.rows['fit']} rows (5 folds, out of fold)"
    assert seen == [refitted.rows["fit"], len(dataset.labels)]  # the refit's own teacher, on every training row
    probabilities = real(dataset.features, dataset.labels, dataset.schema.kinds, folds=5, seed=0)
    assert probabilities.shape == (len(dataset.labels),) and 0 < probabilities.min() and probabilities.max() < 1
    assert np.array_equal(probabilities, real(dataset.features, dataset.labels, dataset.schema.kinds, folds=5,
                                              seed=0))  # deterministic
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(dataset.labels, probabilities) > 0.75  # out of fold, and still informative


def test_a_blended_teacher_averages_its_members_out_of_fold_probabilities(synthetic_csv):
    from intent_edge.train.teacher import out_of_fold_probabilities

    dataset = load_dataset(synthetic_csv)
    args = (dataset.features, dataset.labels, dataset.schema.kinds)
    members = [out_of_fold_probabilities(*args, folds=3, seed=1, model=m) for m in ("lightgbm", "catboost")]
    blend = out_of_fold_probabilities(*args, folds=3, seed=1, model="lightgbm+catboost")
    assert not np.allclose(members[0], members[1])  # two different teachers
    np.testing.assert_allclose(blend, (members[0] + members[1]) / 2, rtol=0, atol=1e-12)
    assert np.array_equal(members[1], out_of_fold_probabilities(*args, folds=3, seed=1, model="catboost"))
