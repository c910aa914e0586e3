import numpy as np
import pytest
from sklearn import metrics as sk

from intent_edge.train.evaluate import ThresholdPolicy, compute_metrics, expected_calibration_error

rng = np.random.default_rng(0)
LABELS = (rng.random(500) < 0.2).astype(int)
PROBS = np.clip(LABELS * 0.3 + rng.random(500) * 0.7, 0, 1)


def brute_force(score):
    candidates = np.unique(PROBS)
    return candidates[int(np.argmax([score((PROBS >= t).astype(int)) for t in candidates]))]


def test_max_f1_threshold_matches_brute_force():
    expected = brute_force(lambda d: sk.f1_score(LABELS, d))
    assert ThresholdPolicy.parse("max-f1").choose(LABELS, PROBS) == pytest.approx(expected)


def test_cost_threshold_matches_brute_force():
    def negative_cost(decisions):
        fp = ((decisions == 1) & (LABELS == 0)).sum()
        fn = ((decisions == 0) & (LABELS == 1)).sum()
        return -(1 * fp + 5 * fn)

    assert ThresholdPolicy.parse("cost:1,5").choose(LABELS, PROBS) == pytest.approx(brute_force(negative_cost))


def test_fixed_threshold_and_bad_policies():
    assert ThresholdPolicy.parse("0.4").choose(LABELS, PROBS) == 0.4
    for text, message in (("1.5", "strictly between"), ("cost:1", "cost:FP,FN"), ("best", "use max-f1")):
        with pytest.raises(ValueError, match=message):
            ThresholdPolicy.parse(text)


def test_metrics_use_the_standard_definitions():
    m = compute_metrics(LABELS, PROBS, 0.5)
    decisions = (PROBS >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(LABELS, decisions))
    assert m["f1"] == pytest.approx(2 * m["precision"] * m["recall"] / (m["precision"] + m["recall"]))
    assert m["roc_auc"] == pytest.approx(sk.roc_auc_score(LABELS, PROBS))
    assert m["pr_auc"] == pytest.approx(sk.average_precision_score(LABELS, PROBS))
    cm = m["confusion_matrix"]
    assert cm["tp"] + cm["fn"] == LABELS.sum() and sum(cm.values()) == len(LABELS)


def test_calibration_error():
    assert expected_calibration_error(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0, 0]), np.array([0.9, 0.9])) == pytest.approx(0.9)


def test_evaluate_explain_ranks_fields_by_mean_absolute_contribution(tiny_bundle, synthetic_csv, tmp_path):
    import json

    from typer.testing import CliRunner

    from intent_edge.cli import app
    from intent_edge.data.io import load_dataset
    from intent_edge.runtime import Predictor

    report, plots = tmp_path / "report.json", tmp_path / "plots"
    result = CliRunner().invoke(app, ["evaluate", str(synthetic_csv), "--bundle", str(tiny_bundle), "--explain",
                                      "--json", str(report), "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    assert "contribution" in result.output  # the table (rich wraps its title to the terminal's width)
    importance = json.loads(report.read_text())["importance"]
    ranking = [entry["mean_abs_contribution"] for entry in importance["ranking"]]
    assert ranking == sorted(ranking, reverse=True) and importance["rows"] == 1500
    # the figures are the mean |contribution| of the library's own explanations
    predictor = Predictor.load(tiny_bundle, strict=False)
    explanations = predictor.explain_batch(load_dataset(synthetic_csv).features)
    top = importance["ranking"][0]
    assert top["mean_abs_contribution"] == pytest.approx(
        np.mean([abs(e.contributions[top["field"]]) for e in explanations]), abs=1e-9)
    written = sorted(p.name for p in plots.glob("*.png"))
    assert "importance.png" in written
    assert {f"dependence-{e['field']}.png" for e in importance["ranking"][:3]} == {
        n for n in written if n.startswith("dependence-")}
    refused = CliRunner().invoke(app, ["evaluate", str(synthetic_csv), "--cv", "2", "--explain"])
    assert refused.exit_code == 2 and "--explain needs --bundle" in refused.output
