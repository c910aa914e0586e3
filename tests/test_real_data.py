"""The shared UCI Online Shoppers file: recognised layout, and the accuracy bar of the default recipe.

The bar trains five models, each twice (the first network, then its refit) with a LightGBM and a CatBoost
teacher each time (about four minutes on two cores); it is marked
slow so `make test-fast` can skip it while developing. CI runs it.
"""

import pytest

from intent_edge.data.io import load_dataset
from intent_edge.train.evaluate import ThresholdPolicy
from intent_edge.train.mlp import MLPRecipe
from intent_edge.train.pipeline import cross_validate

from .conftest import UCI_CSV, requires_uci

pytestmark = requires_uci


def test_uci_file_is_recognised():
    dataset = load_dataset(UCI_CSV)
    assert dataset.schema.label == "Revenue" and len(dataset.labels) == 12330
    assert int(dataset.labels.sum()) == 1908
    assert {dataset.schema.kinds[c] for c in ("OperatingSystems", "Browser", "Region", "TrafficType")} == {
        "categorical"}


@pytest.mark.slow
def test_default_mlp_meets_the_bar_in_5_fold_cv():
    # 5-fold stratified CV, shuffle, random_state=0, the frozen default recipe.
    result = cross_validate(load_dataset(UCI_CSV), 5, MLPRecipe(), 0, ThresholdPolicy("max-f1"))
    summary = result["summary"]
    # measured 0.9354 / 0.7557, ECE 0.0156 (benchmarks/results/accuracy-2026-11-28.md); the bar is the
    # tabular-quality issue's, with a little margin for other hosts
    assert summary["roc_auc"]["mean"] >= 0.934
    assert summary["pr_auc"]["mean"] >= 0.75
    assert summary["calibration_error"]["mean"] <= 0.02
