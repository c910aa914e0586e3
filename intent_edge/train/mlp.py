"""The tabular model: a Keras 3 MLP on encoded session features.

Recipe (frozen as the default; chosen by ablation on repeated CV with seeds 1-3 and on the synthetic
data, never on the reported folds: `benchmarks/recipe_ablation.py`): two ReLU layers of 64 and 32 units
with dropout and a small L2 penalty, Adam, early stopping on the ROC-AUC of a stratified validation
split carved from the training rows, restoring the best epoch, and a distilled target: 0.3 x the label
+ 0.7 x the mean of out-of-fold LightGBM and CatBoost probabilities (:mod:`intent_edge.train.teacher`);
then a fresh network is refitted on all training rows for the chosen number of epochs. Without class
weights: on both data sets they cost PR-AUC and calibration. (With ``class_weight="balanced"`` the odds tilt by
``w_pos / w_neg``, and the output bias is shifted back by ``-log(w_pos / w_neg)`` after training.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from intent_edge.errors import UsageError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ log lines off the terminal
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

INPUT_NAME = "features"
OUTPUT_NAME = "probability"


TEACHERS = ("lightgbm", "catboost", "lightgbm+catboost", "none")


@dataclass(frozen=True)
class MLPRecipe:
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.2
    l2: float = 1e-4
    learning_rate: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 200
    patience: int = 20
    validation_fraction: float = 0.2
    class_weight: str = "none"  # or "balanced"
    # soft targets: out-of-fold probabilities, the mean of both models' (intent_edge.train.teacher)
    teacher: str = "lightgbm+catboost"
    teacher_weight: float = 0.7  # the fitted target: (1 - w) * label + w * teacher probability
    teacher_folds: int = 5
    # After early stopping has chosen the epoch on the validation rows, train a fresh network (and encoder
    # and teacher) on fit + validation rows for that many epochs: the shipped model learns from every
    # training row. The threshold still comes from the first network's validation predictions.
    refit: bool = True

    def __post_init__(self):
        if self.teacher not in TEACHERS:
            raise UsageError(f"teacher must be one of {', '.join(TEACHERS)}, got {self.teacher!r}")

    def to_json(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_json(cls, data: dict) -> MLPRecipe:
        """The recipe a bundle records. A field it lacks takes the value bundles were trained with before
        the field existed, never today's default: an old bundle's recipe is what trained it."""
        return cls(**{**BEFORE_FIELDS, **data, "hidden": tuple(data.get("hidden", cls.hidden))})


# Fields added to the recipe after bundles were first written, with the behaviour those bundles had.
BEFORE_FIELDS = {"class_weight": "balanced", "teacher": "none", "teacher_weight": 0.0, "teacher_folds": 5,
                 "refit": False}


def seed_everything(seed: int) -> None:
    """Same seed, same model: Python, NumPy and TensorFlow seeds, and deterministic TF kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_mlp(width: int, recipe: MLPRecipe):
    import keras

    regularizer = keras.regularizers.L2(recipe.l2) if recipe.l2 else None
    inputs = keras.Input((width,), name=INPUT_NAME, dtype="float32")
    x = inputs
    for units in recipe.hidden:
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer)(x)
        if recipe.dropout:
            x = keras.layers.Dropout(recipe.dropout)(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="intent_mlp")


def fit_mlp(features: np.ndarray, labels: np.ndarray, validation: tuple[np.ndarray, np.ndarray] | None,
            recipe: MLPRecipe, seed: int, on_epoch: Callable[[int, int, dict], None] | None = None, *,
            targets: np.ndarray | None = None, epochs: int | None = None):
    """Train a new MLP on encoded ``features`` (towards ``targets`` where given: soft labels);
    ``validation`` drives early stopping, or, without it, the MLP trains for ``epochs``. Returns (model, history)."""
    seed_everything(seed)
    model = build_mlp(features.shape[1], recipe)
    return model, train_model(model, features, labels, validation, recipe, targets=targets, on_epoch=on_epoch,
                              epochs=epochs)


def best_epoch(history: dict) -> int:
    """The epoch early stopping restored (1-based): the one with the highest validation AUC."""
    return int(np.argmax(history["val_auc"])) + 1


def train_model(model, features: np.ndarray, labels: np.ndarray, validation: tuple[np.ndarray, np.ndarray] | None,
                recipe: MLPRecipe, *, targets: np.ndarray | None = None, callbacks=(), monitor_from_epoch: int = 0,
                on_epoch: Callable[[int, int, dict], None] | None = None, epochs: int | None = None) -> dict:
    """Train a model in place (compiled here with a fresh optimizer) as the recipe says (the one training loop,
    shared by fitting, pruning and distillation). ``targets`` replaces the hard labels as the fitted target (soft labels
    for distillation; class weights are then off, since soft targets carry calibrated rates).
    Early stopping watches validation AUC from ``monitor_from_epoch`` on; without ``validation`` the model
    trains for exactly ``epochs``. Returns the history."""
    import keras

    class_weight = None
    if targets is None and recipe.class_weight == "balanced":
        positives = float(labels.mean())
        class_weight = {0: 0.5 / (1.0 - positives), 1: 0.5 / positives}
    elif recipe.class_weight not in ("balanced", "none"):
        raise UsageError(f"class_weight must be 'balanced' or 'none', got {recipe.class_weight!r}")
    if (validation is None) == (epochs is None):
        raise UsageError("train_model needs validation rows (early stopping) or a number of epochs, not both")
    callbacks = list(callbacks)
    if validation is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=recipe.patience,
                                                       restore_best_weights=True, start_from_epoch=monitor_from_epoch))
    total = recipe.max_epochs if epochs is None else epochs
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, total, logs or {})))
    model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    fitted_targets = (labels if targets is None else targets).astype("float32")
    validation_data = None if validation is None else (validation[0], validation[1].astype("float32"))
    history = model.fit(features, fitted_targets, validation_data=validation_data, epochs=total,
                        batch_size=recipe.batch_size, class_weight=class_weight,
                        shuffle=True, callbacks=callbacks, verbose=0)
    if class_weight is not None:
        output = model.get_layer(OUTPUT_NAME)
        kernel, bias = output.get_weights()
        output.set_weights([kernel, bias - math.log(class_weight[1] / class_weight[0])])
    return history.history


def predict_probabilities(model, features: np.ndarray) -> np.ndarray:
    """Keras probabilities as a flat float64 array. An eager call, not ``model.predict``: predict traces a
    new graph for every model and input size, which costs time and floods the log with retracing warnings."""
    chunks = [np.asarray(model(features[start:start + 65536], training=False))
              for start in range(0, len(features), 65536)]
    return np.concatenate(chunks).astype(np.float64).reshape(-1) if chunks else np.zeros(0)
