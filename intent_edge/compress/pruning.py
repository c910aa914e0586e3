"""Pruning on Keras 3, written as a small callback rather than with tensorflow-model-optimization.

tensorflow-model-optimization only works with legacy tf_keras and switches ``tf.keras`` to it for the
whole process when imported; the project's models are Keras 3, so the two would not mix. Magnitude
pruning of a few Dense layers is a mask and a schedule, which this module implements directly.

* **Unstructured** (:func:`magnitude_prune`): the smallest-magnitude weights of every Dense kernel are
  zeroed on a polynomial schedule (Zhu and Gupta, 2017: ``s_t = s (1 - (1 - t/T)^3)``) while the model
  fine-tunes; zeros stay zero after every batch. The saved model has the same shape with zeros in it.
* **Structured** (:func:`prune_units`): whole hidden units are ranked by importance (mean |activation|
  on training rows times the L2 norm of the unit's outgoing weights), the least important are removed
  and smaller Dense layers are rebuilt from the kept rows and columns, then fine-tuned. The saved model
  is truly smaller, and so are its exports.
"""

from __future__ import annotations

import numpy as np

from intent_edge.compress.distill import LABEL_WEIGHT
from intent_edge.errors import UsageError
from intent_edge.train.mlp import MLPRecipe, build_mlp, predict_probabilities, seed_everything, train_model


def _dense_layers(model):
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def sparsity(model) -> float:
    """Share of exact zeros across all Dense kernels."""
    kernels = [layer.get_weights()[0] for layer in _dense_layers(model)]
    return float(sum((k == 0).sum() for k in kernels) / sum(k.size for k in kernels))


def clone_model(model):
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def magnitude_prune(model, target_sparsity: float, data, recipe: MLPRecipe, seed: int, *,
                    ramp_epochs: int | None = None):
    """Fine-tune a copy of ``model`` while zeroing its smallest kernel weights up to ``target_sparsity``.

    ``data`` is ``(fit_x, fit_y, validation_x, validation_y)``. Early stopping only starts once the
    schedule has reached its target, so the restored best epoch is always fully sparse."""
    import keras

    if not 0.0 < target_sparsity < 1.0:
        raise UsageError(f"target sparsity must lie strictly between 0 and 1, got {target_sparsity}")
    fit_x, fit_y, validation_x, validation_y = data
    ramp_epochs = ramp_epochs or min(10, recipe.max_epochs)
    seed_everything(seed)
    pruned = clone_model(model)
    layers = _dense_layers(pruned)
    steps_per_epoch = int(np.ceil(len(fit_x) / recipe.batch_size))
    ramp_steps = max(1, ramp_epochs * steps_per_epoch)

    class MagnitudeMask(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step, self.masks = 0, [np.ones_like(layer.get_weights()[0], dtype=bool) for layer in layers]

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            progress = min(1.0, self.step / ramp_steps)
            current = target_sparsity * (1.0 - (1.0 - progress) ** 3)
            for index, layer in enumerate(layers):
                kernel, bias = layer.get_weights()
                if self.step % 10 == 0 or progress >= 1.0:  # re-rank now and then; masks only ever grow
                    cut = np.quantile(np.abs(kernel), current) if current > 0 else -np.inf
                    self.masks[index] &= np.abs(kernel) > cut
                layer.set_weights([kernel * self.masks[index], bias])

    fine_tune = MLPRecipe.from_json({**recipe.to_json(), "max_epochs": ramp_epochs + min(40, recipe.max_epochs),
                                     "patience": min(10, recipe.patience)})
    train_model(pruned, fit_x, fit_y, (validation_x, validation_y), fine_tune, callbacks=[MagnitudeMask()],
                monitor_from_epoch=ramp_epochs + 1)
    return pruned


def unit_importance(model, features: np.ndarray) -> list[np.ndarray]:
    """Importance of each hidden unit of each hidden Dense layer (see module docstring)."""
    import keras

    dense = _dense_layers(model)
    hidden = dense[:-1]
    probe = keras.Model(model.inputs[0], [layer.output for layer in hidden])
    activations = probe(features, training=False)
    activations = activations if isinstance(activations, (list, tuple)) else [activations]
    # dense[i + 1]'s kernel has one row per unit of hidden layer i: that unit's outgoing weights.
    return [np.abs(np.asarray(activation)).mean(axis=0) * np.linalg.norm(following.get_weights()[0], axis=1)
            for activation, following in zip(activations, dense[1:], strict=True)]


def prune_units(model, keep_fraction: float, data, recipe: MLPRecipe, seed: int, *, label_weight: float = LABEL_WEIGHT,
                importance_rows: int = 4096):
    """A smaller MLP holding the most important ``keep_fraction`` of each hidden layer's units, fine-tuned."""
    if not 0.0 < keep_fraction < 1.0:
        raise UsageError(f"keep fraction must lie strictly between 0 and 1, got {keep_fraction}")
    fit_x, fit_y, validation_x, validation_y = data
    dense = _dense_layers(model)
    sample = fit_x[np.random.default_rng(seed).permutation(len(fit_x))[:importance_rows]]
    kept = [np.sort(np.argsort(-score)[:max(1, int(round(keep_fraction * score.size)))])
            for score in unit_importance(model, sample)]
    seed_everything(seed)
    smaller_recipe = MLPRecipe.from_json({**recipe.to_json(), "hidden": [len(k) for k in kept]})
    smaller = build_mlp(fit_x.shape[1], smaller_recipe)
    rows = np.arange(fit_x.shape[1])
    for layer, (kernel, bias), columns in zip(_dense_layers(smaller), [d.get_weights() for d in dense],
                                              kept + [np.arange(1)], strict=True):
        layer.set_weights([kernel[np.ix_(rows, columns)], bias[columns]])
        rows = columns
    # A tenth of the training learning rate: Adam's first steps move every weight by about the learning
    # rate whatever its gradient, which at full rate knocks a pruned network further off than pruning did.
    fine_tune = MLPRecipe.from_json({**smaller_recipe.to_json(), "learning_rate": recipe.learning_rate / 10,
                                     "max_epochs": min(100, recipe.max_epochs), "patience": min(15, recipe.patience)})
    # Fine-tuned towards the original's own probabilities (mixed with the labels, as in distillation):
    # the pruned network only has to recover what the original knew.
    targets = label_weight * fit_y + (1.0 - label_weight) * predict_probabilities(model, fit_x)
    train_model(smaller, fit_x, fit_y, (validation_x, validation_y), fine_tune, targets=targets)
    return smaller, smaller_recipe
