"""Shared fixtures: small synthetic data and one tiny bundle trained once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

UCI_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_shoppers_intention.csv"
requires_uci = pytest.mark.skipif(not UCI_CSV.is_file(),
                                  reason=f"the shared UCI data file is absent ({UCI_CSV})")


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> Path:
    from intent_edge.data.io import write_table
    from intent_edge.data.synth import generate_sessions

    path = tmp_path_factory.mktemp("data") / "sessions.csv"
    write_table(generate_sessions(1500, seed=3), path)
    return path


@pytest.fixture(scope="session")
def tiny_recipe():
    from intent_edge.train.mlp import MLPRecipe

    # LightGBM alone as the teacher: CatBoost's fixed cost (about 0.8 s a fit on these rows, ten fits a
    # training) would double the suite. The default blended teacher is tested on its own and runs in the
    # CLI tests, the synthetic-difficulty test and the UCI bar.
    return MLPRecipe(hidden=(16, 8), max_epochs=4, patience=2, teacher="lightgbm")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, synthetic_csv, tiny_recipe) -> Path:
    from intent_edge.data.io import load_dataset
    from intent_edge.train.pipeline import train_bundle

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    train_bundle(load_dataset(synthetic_csv, "Revenue"), out, recipe=tiny_recipe, seed=0)
    return out
