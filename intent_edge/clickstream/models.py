"""Sequence models over sessions as they unfold, and the order-blind baseline they must beat.

Every model scores every prefix at once: each returns a probability after each event (recurrent
layers with ``return_sequences``, causal convolutions by construction), trained with the session's
label at every real position, so that the output after event k is P(buy | first k events), what a
live scorer needs after each click. Padding (after a session's last event) is masked for the
recurrent models (``mask_zero`` on the event embedding), never seen by the causal CNN at a real
position, and left out of the loss by sample weights.

The ``hybrid`` model is the GRU joined with the session's context (visitor type, channel, device...,
encoded by the same declarative encoder as the session MLP): the context sets the GRU's initial
state through one tanh layer, so before the first click the model already leans on who is shopping,
and streaming stays one cell step per event (the context is read once, when the session starts).

Bundles, the streaming step export and prefix metrics: :mod:`intent_edge.clickstream.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from intent_edge.clickstream.events import Sequences
from intent_edge.errors import UsageError

KINDS = ("gru", "lstm", "cnn", "hybrid")


@dataclass(frozen=True)
class SequenceRecipe:
    embedding: int = 16
    units: int = 32
    learning_rate: float = 3e-3
    batch_size: int = 128
    max_epochs: int = 30
    patience: int = 4


def build_sequence_model(kind: str, tokens: int, max_length: int, recipe: SequenceRecipe = SequenceRecipe(),
                         context_width: int = 0):
    """Inputs ``events`` (int32 token ids, 0 = padding) and ``gaps`` (float32 log1p seconds since the
    previous event), both ``(batch, max_length)``, and for ``hybrid`` ``context`` (float32, the encoded
    session context, ``(batch, context_width)``); output ``(batch, max_length, 1)`` probabilities, one
    per prefix (the trailing axis makes the loss per position). ``cnn`` uses causal convolutions, so
    position k also sees only events 1..k."""
    import keras
    from keras import layers

    if kind not in KINDS:
        raise UsageError(f"unknown sequence model {kind!r}; choose one of {', '.join(KINDS)}")
    if (kind == "hybrid") != (context_width > 0):
        raise UsageError("the hybrid model, and only it, takes session context (context_width > 0)")
    events = keras.Input((max_length,), dtype="int32", name="events")
    gaps = keras.Input((max_length,), dtype="float32", name="gaps")
    # Causal convolutions never look past position k, so the CNN needs no mask (Conv1D would drop it).
    embedded = layers.Embedding(tokens, recipe.embedding, mask_zero=kind != "cnn", name="event_embedding")(events)
    x = layers.Concatenate(name="event_features")([embedded, layers.Reshape((max_length, 1))(gaps)])
    inputs = [events, gaps]
    if kind == "gru":
        # use_cudnn=False: a cuDNN kernel traced on a GPU host exports as CudnnRNNV3, which tf2onnx cannot convert.
        x = layers.GRU(recipe.units, return_sequences=True, use_cudnn=False, name="encoder")(x)
    elif kind == "hybrid":
        context = keras.Input((context_width,), dtype="float32", name="context")
        inputs.append(context)
        initial = layers.Dense(recipe.units, activation="tanh", name="context_state")(context)
        x = layers.GRU(recipe.units, return_sequences=True, use_cudnn=False, name="encoder")(x, initial_state=initial)
    elif kind == "lstm":
        x = layers.LSTM(recipe.units, return_sequences=True, use_cudnn=False, name="encoder")(x)
    else:
        x = layers.Conv1D(recipe.units, 3, padding="causal", activation="relu", dilation_rate=1)(x)
        x = layers.Conv1D(recipe.units, 3, padding="causal", activation="relu", dilation_rate=2, name="encoder")(x)
    probabilities = layers.Dense(1, activation="sigmoid", name="probability")(x)  # (batch, max_length, 1)
    return keras.Model(inputs, probabilities, name=f"clickstream_{kind}")


def fit_sequence_model(kind: str, train: Sequences, validation: Sequences, tokens: int, *, seed: int = 0,
                       recipe: SequenceRecipe = SequenceRecipe(), verbose: int = 0):
    """Train with the session label at every real position; early stopping on validation loss."""
    import keras

    from intent_edge.train.mlp import seed_everything

    seed_everything(seed)
    max_length = train.tokens.shape[1]
    context_width = 0 if train.context is None else train.context.shape[1]
    model = build_sequence_model(kind, tokens, max_length, recipe, context_width)
    model.compile(optimizer=keras.optimizers.Adam(recipe.learning_rate), loss="binary_crossentropy",
                  weighted_metrics=[])

    def arrays(data: Sequences):
        mask = (np.arange(max_length) < data.lengths[:, None]).astype(np.float32)
        targets = np.repeat(data.labels[:, None].astype(np.float32), max_length, axis=1)[..., None]
        return data.inputs(), targets, mask

    x, y, weights = arrays(train)
    vx, vy, vweights = arrays(validation)
    model.fit(x, y, sample_weight=weights, validation_data=(vx, vy, vweights), epochs=recipe.max_epochs,
              batch_size=recipe.batch_size, shuffle=True, verbose=verbose,
              callbacks=[keras.callbacks.EarlyStopping(patience=recipe.patience, restore_best_weights=True)])
    return model


def probabilities_by_position(model, data: Sequences) -> np.ndarray:
    """The model's P(buy) after every position of every session, ``(sessions, max_length)``."""
    return np.asarray(model.predict(data.inputs(), batch_size=1024, verbose=0))[..., 0]


def prefix_probabilities(model, data: Sequences, k: int | None) -> np.ndarray:
    """P(buy) after the first ``k`` events of each session (after its last event for ``k=None``)."""
    out = probabilities_by_position(model, data)
    position = (data.lengths if k is None else np.minimum(data.lengths, k)) - 1
    return out[np.arange(len(out)), position]


def bag_features(data: Sequences, k: int | None, tokens: int) -> np.ndarray:
    """The order-blind baseline's view of the first ``k`` events: log counts of each event, of each
    bigram, the last event one-hot, the mean gap before each event type, and the prefix length."""
    lengths = data.lengths if k is None else np.minimum(data.lengths, k)
    n = len(lengths)
    counts = np.zeros((n, tokens), dtype=np.float32)
    bigrams = np.zeros((n, tokens * tokens), dtype=np.float32)
    last = np.zeros((n, tokens), dtype=np.float32)
    gap_sum = np.zeros((n, tokens), dtype=np.float32)
    rows = np.arange(n)
    for position in range(int(lengths.max(initial=0))):
        live = lengths > position
        token = data.tokens[rows[live], position]
        np.add.at(counts, (rows[live], token), 1.0)
        np.add.at(gap_sum, (rows[live], token), data.gaps[rows[live], position])
        if position > 0:
            previous = data.tokens[rows[live], position - 1]
            np.add.at(bigrams, (rows[live], previous * tokens + token), 1.0)
    last[rows, data.tokens[rows, np.maximum(lengths - 1, 0)]] = 1.0
    mean_gap = np.divide(gap_sum, counts, out=np.zeros_like(gap_sum), where=counts > 0)
    return np.hstack([np.log1p(counts), np.log1p(bigrams), last, mean_gap, np.log1p(lengths)[:, None]])
