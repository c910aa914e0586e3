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
        if not pd.api.types.is_float_dtype(frame[name]) and pd.api.types.is_numeric_dtype(frame[name]):
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
