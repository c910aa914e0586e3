"""Soft targets from gradient-boosted teachers, for the default recipe's distillation.

The MLP learns from a mix of the hard labels (0.3) and a teacher's probabilities (0.7). The default
teacher is the mean of two: LightGBM and CatBoost (300 trees), each with its own native handling of
categorical columns. Neither alone guides the MLP well on both data sets the recipe was chosen on:
LightGBM helps on the UCI file and, weighted 0.7, misleads on the synthetic data, where it is weaker than
the MLP; CatBoost is the reverse (`benchmarks/results/recipe-ablation-*.md`). Each training row's
teacher probability comes from models fitted on the other folds of the training rows (out of fold):
in-sample probabilities of a boosted model are overconfident where it has memorised rows, and on the UCI
file the out-of-fold targets were worth +0.0015 ROC-AUC and +0.007 PR-AUC over in-sample ones. The first
network's teacher never sees the validation rows that choose the epoch, the threshold and (none is
needed here) the calibration; the refitted network's teacher is fitted anew on all training rows, the
same way; no teacher sees a test row. LightGBM and CatBoost come with the ``train`` extra; the shipped
model is still the Keras MLP alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EMPTY_CATEGORY = "<empty>"  # CatBoost's stand-in for an empty category: it takes no missing text


def teacher_frame(features: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The raw columns as LightGBM takes them: numbers as they are, categories as pandas categories of
    their text (so 2, 2.0 and "2" are one category, as in the encoder). An empty value stays missing,
    which LightGBM handles natively, whether the column holds pandas strings or Python objects (whose
    ``astype(str)`` would make None the category "None")."""
    frame = pd.DataFrame(index=range(len(features)))
    for name, kind in kinds.items():
        column = features[name].reset_index(drop=True)
        frame[name] = (pd.Categorical(column.astype(str).where(column.notna()).astype(object))
                       if kind == "categorical" else pd.to_numeric(column, errors="coerce").astype(np.float64))
    return frame


def catboost_frame(features: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """:func:`teacher_frame` with the categories as their text, an empty one as :data:`EMPTY_CATEGORY`:
    CatBoost takes text, not pandas categories, and refuses a missing category."""
    frame = teacher_frame(features, kinds)
    for name, kind in kinds.items():
        if kind == "categorical":
            frame[name] = frame[name].astype(object).where(frame[name].notna(), EMPTY_CATEGORY).astype(str)
    return frame


def _lightgbm(seed: int, kinds: dict[str, str]):
    import lightgbm as lgb

    return lgb.LGBMClassifier(random_state=seed, verbose=-1, deterministic=True, force_row_wise=True)


# 300 trees (CatBoost picks the learning rate for the count): a third of its default's fit time on UCI.
CATBOOST_TREES = 300


def _catboost(seed: int, kinds: dict[str, str]):
    from catboost import CatBoostClassifier

    return CatBoostClassifier(iterations=CATBOOST_TREES, random_seed=seed, verbose=0, allow_writing_files=False,
                              cat_features=[name for name, kind in kinds.items() if kind == "categorical"])


MODELS = {"lightgbm": (_lightgbm, teacher_frame), "catboost": (_catboost, catboost_frame)}  # (model, its frame)


def out_of_fold_probabilities(features: pd.DataFrame, labels: np.ndarray, kinds: dict[str, str], *,
                              folds: int, seed: int, model: str = "lightgbm") -> np.ndarray:
    """Each row's probability from a ``model`` (default parameters) fitted on the other ``folds - 1`` folds."""
    from sklearn.model_selection import StratifiedKFold

    members = model.split("+")  # "lightgbm+catboost": the mean of both models' probabilities
    frames = {member: MODELS[member][1](features, kinds) for member in members}
    probabilities = np.zeros(len(labels))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train, held_out in splitter.split(np.zeros(len(labels)), labels):
        for member in members:
            fitted = MODELS[member][0](seed, kinds)
            fitted.fit(frames[member].iloc[train], labels[train])
            probabilities[held_out] += fitted.predict_proba(frames[member].iloc[held_out])[:, 1] / len(members)
    return probabilities
