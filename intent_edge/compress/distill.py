"""Distillation: a smaller student MLP learns the teacher's probabilities.

The target is ``label_weight * label + (1 - label_weight) * teacher_probability`` under binary cross-entropy, which
is the usual mix of the hard-label loss and the soft-label loss (cross-entropy is linear in its
target). The teacher is calibrated (see :mod:`intent_edge.train.mlp`), so no class weights are used.
"""

from __future__ import annotations

import numpy as np

from intent_edge.train.mlp import MLPRecipe, build_mlp, predict_probabilities, seed_everything, train_model

#: The share of the hard label in a student's (or a pruned network's) fine-tuning target; the rest is
#: the original model's probability.
LABEL_WEIGHT = 0.3


def distill(teacher, hidden: tuple[int, ...], data, recipe: MLPRecipe, seed: int, *,
            label_weight: float = LABEL_WEIGHT):
    """Train a student of the given hidden sizes on ``data = (fit_x, fit_y, validation_x, validation_y)``."""
    fit_x, fit_y, validation_x, validation_y = data
    soft = predict_probabilities(teacher, fit_x)
    targets = label_weight * fit_y + (1.0 - label_weight) * soft
    seed_everything(seed)
    student_recipe = MLPRecipe.from_json({**recipe.to_json(), "hidden": list(hidden)})
    student = build_mlp(fit_x.shape[1], student_recipe)
    train_model(student, fit_x, fit_y, (validation_x, validation_y), student_recipe, targets=np.asarray(targets))
    return student, student_recipe
