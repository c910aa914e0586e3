"""Training out of core: a table of any size trains in bounded memory, in a fixed number of passes.

``train`` takes this path above :data:`STREAMING_ROWS` rows (counted from the Parquet footers, or the CSV's
lines), or with ``--streaming``; below it the in-memory path and its figures are unchanged.

1. **Schema** from the first chunk (:data:`CHUNK_ROWS` rows), as the in-memory path infers it from the file.
2. **Split by a hash of a row key** (``--id-column``, else the row number) with the seed: a row's hash
   decides whether it is a test, validation or training row, so no index list is kept and ``compress``
   and ``evaluate`` rebuild the split from the manifest (its test rows' sha256 proves it).
3. **Pass 1, statistics** over the training rows: exact category counts, exact moments (merged chunk by
   chunk: Pébay's formulas), and the teacher's hash sample, whose exact median fills empty numbers. The
   encoder equals the in-memory one's: the same vocabularies, means and standard deviations within 1e-9
   relative, and the median exactly where the sample holds every training row, else within the
   sample's rank bound (Dvoretzky-Kiefer-Wolfowitz at 99%: sqrt(ln(200) / (2 n)) for a sample of n, 0.36%
   of the rows at 200,000). A hash sample is a mergeable quantile sketch that is also deterministic:
   Apache DataSketches' KLL, tried first, gave a different median on every run (its compactions flip an
   unseeded coin), so the same data and seed trained different models. The pass also keeps the validation rows (about
   :data:`VALIDATION_ROWS`), a hash sample of :data:`TEACHER_ROWS` training rows for the teacher (each
   class at the same rate), and a hash sample of held-out rows for parity and golden vectors. What it
   keeps depends on the rows' keys only, so the Spark engine, reading in any order, keeps the same.
4. **The teacher** (LightGBM) is fitted on the sample: out-of-fold probabilities for the sampled rows, and
   one model on the whole sample for every other training row, which it never saw.
5. **Pass 2, encoding**: each training row is encoded, given its blended target, and appended to one of
   a few dozen shard files on disk, chosen by hash, so every shard is a random slice of the data.
6. **The network** learns from the shards through a generator (``tf.data``): shards in a new random
   order each pass, rows shuffled within a shard. It is validated every :data:`EVALUATE_ROWS` rows and
   stops early, within a budget of rows (``max_epochs`` passes at most).
7. **Pass 3, scoring**: the held-out rows are scored through the exported ONNX model, chunk by chunk.

The recipe at this size, recorded in the manifest (``training.streaming``): one teacher (LightGBM) with
:data:`TEACHER_FOLDS` folds on the sample, one network with early stopping (no refit), a batch of
:func:`batch_size` rows and the learning rate scaled by the square root of the batch's growth over the
in-memory recipe's 256 (Adam's usual rule).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from intent_edge.data.io import check_feature_columns, parse_label, resolve_schema
from intent_edge.data.schema import Schema
from intent_edge.errors import DataError
from intent_edge.parity import PARITY_ROWS
from intent_edge.runtime.encoder import (
    Encoder,
)
from intent_edge.train.hash_split import (
    HashSplit,
    add_digests,
    digest_text,
    key_hashes,
    keys_digest,
    row_uniforms,
)
from intent_edge.train.table_stream import (
    CHUNK_ROWS,
    EncoderStatistics,
    count_rows,
    median_rank_error,
    table_chunks,
)

STREAMING_ROWS = 2_000_000  # train above this many rows streams (or with --streaming)
TEACHER_ROWS = 200_000
TEACHER_FOLDS = 3
VALIDATION_ROWS = 100_000
EVALUATE_ROWS = 1_000_000  # rows between validations (or one pass, if the training rows are fewer)
STREAMING_PATIENCE = 4  # validations without a better validation ROC-AUC before training stops
SHARD_BYTES = 64 * 2**20
RECORD_EXTRA = 3  # a shard record: the encoded row, then its target and the key's hash (two float32 lanes)
GOLDEN_ROWS = 256
# rows of the teacher's sample (a hash sample, so its first rows are a random subset) that the k-means
# background is fitted on: k-means on the whole sample was the run's peak memory (1.8 GiB at 175,000 rows)
BACKGROUND_SAMPLE = 20_000
ProgressCallback = Callable[[str, int, int | None], None]  # (pass, rows done, rows in all or None)


def fit_encoder_streaming(path: str | Path, schema: Schema, *, sep: str | None = None, chunk_rows: int = CHUNK_ROWS,
                          sample_rows: int = TEACHER_ROWS, seed: int = 0) -> Encoder:
    """The encoder pass 1 fits, over every row of ``path`` (no split), with a hash sample of
    ``sample_rows`` rows for the medians."""
    plan = StreamingPlan(count_rows(path), chunk_rows=chunk_rows, teacher_rows=sample_rows)
    return first_pass(Path(path), schema, HashSplit(seed, 0.0, 0.0), plan, sep=sep,
                      progress=lambda *_: None).encoder


# ---- the recipe at scale ----------------------------------------------------------------------------
def batch_size(training_rows: int) -> int:
    """256 rows (the in-memory recipe's) up to 256k training rows, doubling with every doubling beyond,
    at most 4,096: larger data takes larger steps, so an epoch costs fewer of Keras's fixed step costs."""
    return int(min(4096, 256 * 2 ** max(0, math.floor(math.log2(max(training_rows, 1) / 262_144)))))


def learning_rate(base: float, batch: int) -> float:
    """Adam's square-root scaling from the in-memory recipe's batch of 256."""
    return base * math.sqrt(batch / 256)


@dataclass
class StreamingPlan:
    """What was chosen for this run, as the manifest records it."""

    rows: int
    chunk_rows: int = CHUNK_ROWS
    teacher_rows: int = TEACHER_ROWS
    teacher_folds: int = TEACHER_FOLDS
    validation_rows: int = VALIDATION_ROWS
    evaluate_rows: int = EVALUATE_ROWS

    def to_json(self, batch: int, rate: float, shards: int) -> dict:
        return {"rows": self.rows, "chunk_rows": self.chunk_rows, "teacher": "lightgbm",
                "teacher_rows": self.teacher_rows, "teacher_folds": self.teacher_folds,
                "validation_rows": self.validation_rows, "evaluate_rows": self.evaluate_rows,
                "batch_size": batch, "learning_rate": rate, "shards": shards, "refit": False,
                "median": "exact, of the teacher's hash sample"}


# ---- the passes -------------------------------------------------------------------------------------
EVIDENCE_ROWS = 4 * max(PARITY_ROWS, GOLDEN_ROWS)  # held-out rows drawn (by hash) for parity and golden vectors


@dataclass
class FirstPass:
    encoder: Encoder
    classes: np.ndarray  # training rows per class (0, 1)
    sample: pd.DataFrame  # the teacher's hash sample of training rows (features), in hash order
    sample_labels: np.ndarray
    sample_keys: np.ndarray
    validation: pd.DataFrame  # every validation row
    validation_labels: np.ndarray
    held_out: pd.DataFrame  # held-out rows drawn by hash, in hash order: parity and golden vectors
    quality_frame: pd.DataFrame  # the first chunk, as read: data quality and leakage checks
    test_rows: int
    test_digest: int  # keys_digest of the held-out rows' keys
    median_rank_error: float


class PassOne:
    """Pass 1 over any part of the table, chunk by chunk; parts merge (the Spark engine runs one a
    partition). Which rows it keeps depends on their keys' hashes only, never on the reading order."""

    def __init__(self, schema: Schema, split: HashSplit, sample_rate: float, evidence_rate: float):
        self.schema, self.split = schema, split
        self.sample_rate, self.evidence_rate = sample_rate, evidence_rate
        self.statistics = EncoderStatistics(schema)
        self.classes = np.zeros(2, dtype=np.int64)
        self.test_rows, self.test_digest = 0, 0
        self.kept: dict[str, list] = {"sample": [], "validation": [], "evidence": []}  # (columns, labels, keys, u)

    def add(self, frame: pd.DataFrame, first_row: int, path) -> None:
        schema, split = self.schema, self.split
        if schema.label not in frame.columns:
            raise DataError(path, f"label column '{schema.label}' not found", column=schema.label)
        labels = parse_label(path, frame[schema.label], first_row=first_row)
        columns = pd.DataFrame(check_feature_columns(frame, schema, path, first_row=first_row, chunk=True))
        keys = split.keys(frame, first_row)
        is_test, is_validation = split.assign(frame, first_row)
        training = ~(is_test | is_validation)
        self.test_rows += int(is_test.sum())
        self.test_digest = add_digests(self.test_digest, keys_digest(keys[is_test]))
        self.statistics.update({name: columns[name][training].reset_index(drop=True) for name in schema.kinds})
        self.classes += np.bincount(labels[training], minlength=2)
        sample_u = row_uniforms(keys, split.seed, "teacher sample")
        evidence_u = row_uniforms(keys, split.seed, "evidence")
        for role, rows, u in (("sample", training & (sample_u < self.sample_rate), sample_u),
                              ("validation", is_validation, sample_u),
                              ("evidence", is_test & (evidence_u < self.evidence_rate), evidence_u)):
            if rows.any():
                self.kept[role].append((columns[rows], labels[rows], np.asarray(keys[rows]), u[rows]))

    def merge(self, other: PassOne) -> None:
        self.statistics.merge(other.statistics)
        self.classes += other.classes
        self.test_rows += other.test_rows
        self.test_digest = add_digests(self.test_digest, other.test_digest)
        for role, parts in other.kept.items():
            self.kept[role] += parts

    def rows(self, role: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The kept rows of a role in the order of their hash (so in the same order however read)."""
        parts = self.kept[role]
        if not parts:
            return pd.DataFrame(columns=list(self.schema.kinds)), np.zeros(0, np.int8), np.zeros(0)
        columns = pd.concat([c for c, _, _, _ in parts], ignore_index=True)
        labels, keys, u = (np.concatenate([part[i] for part in parts]) for i in (1, 2, 3))
        order = np.lexsort((keys.astype(str), u))  # the hash, then the key: a total order
        return columns.iloc[order].reset_index(drop=True), labels[order], keys[order]

    def finish(self, quality_frame: pd.DataFrame, path) -> FirstPass:
        if min(self.classes) == 0:
            raise DataError(path, "the training rows hold a single class; training needs buyers and non-buyers",
                            column=self.schema.label)
        sample, sample_labels, sample_keys = self.rows("sample")
        validation, validation_labels, _ = self.rows("validation")
        held_out, _, _ = self.rows("evidence")
        return FirstPass(self.statistics.encoder(sample), self.classes, sample, sample_labels, sample_keys,
                         validation, validation_labels, held_out.iloc[:max(PARITY_ROWS, GOLDEN_ROWS)], quality_frame,
                         self.test_rows, self.test_digest, median_rank_error(len(sample), int(self.classes.sum())))


def pass_rates(plan: StreamingPlan, split: HashSplit) -> tuple[float, float]:
    """The teacher sample's and the evidence rows' hash rates, from the table's size."""
    return (min(1.0, plan.teacher_rows / max(1.0, plan.rows * (1 - split.test_fraction))),
            min(1.0, EVIDENCE_ROWS / max(1.0, plan.rows * split.test_fraction)))


def first_pass(path: Path, schema: Schema, split: HashSplit, plan: StreamingPlan, *, sep: str | None,
               progress: ProgressCallback) -> FirstPass:
    accumulator, quality_frame = PassOne(schema, split, *pass_rates(plan, split)), None
    text_columns = () if split.id_column is None else (split.id_column,)
    for first, frame in table_chunks(path, sep=sep, chunk_rows=plan.chunk_rows, text_columns=text_columns):
        quality_frame = frame if quality_frame is None else quality_frame
        accumulator.add(frame, first, path)
        progress("pass 1 of 3: statistics", first + len(frame), plan.rows)
    return accumulator.finish(quality_frame, path)


class Teacher:
    """LightGBM on the hash sample: out-of-fold probabilities for the sampled rows (by key), one model on
    the whole sample for every other row. Both travel as plain data (the model as LightGBM's own text,
    which keeps the sample's pandas categories and codes a chunk's categories by them), so a Spark
    executor scores with exactly the driver's teacher."""

    def __init__(self, first: FirstPass, schema: Schema, folds: int, seed: int):
        from intent_edge.train.teacher import MODELS, out_of_fold_probabilities, teacher_frame

        out_of_fold = out_of_fold_probabilities(first.sample, first.sample_labels, schema.kinds, folds=folds,
                                                seed=seed, model="lightgbm")
        self.by_key = dict(zip(first.sample_keys.tolist(), out_of_fold.tolist(), strict=True))
        model = MODELS["lightgbm"][0](seed, schema.kinds)
        model.fit(teacher_frame(first.sample, schema.kinds), first.sample_labels)
        self.model_text = model.booster_.model_to_string()


@dataclass
class EncodingJob:
    """Everything pass 2 needs for a chunk, as plain data that a Spark executor can be sent."""

    schema: dict
    split: dict
    encoder: dict
    teacher_model: str
    teacher_weight: float
    shards: int
    seed: int

    def run(self, frame: pd.DataFrame, first_row: int, by_key: dict, path
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The chunk's training rows encoded, their blended targets, their shards and their keys' hashes."""
        from intent_edge.train.teacher import teacher_frame

        schema, split, encoder, booster = self._objects()
        labels = parse_label(path, frame[schema.label], first_row=first_row)
        is_test, is_validation = split.assign(frame, first_row)
        training = ~(is_test | is_validation)
        columns = pd.DataFrame(check_feature_columns(frame, schema, path, first_row=first_row, chunk=True))
        columns = columns[training].reset_index(drop=True)
        keys = np.asarray(split.keys(frame, first_row)[training])
        soft = booster.predict(teacher_frame(columns, schema.kinds)) if len(columns) else np.zeros(0)
        for position, key in enumerate(keys.tolist()):
            if key in by_key:  # a sampled row: its out-of-fold probability
                soft[position] = by_key[key]
        targets = (1.0 - self.teacher_weight) * labels[training] + self.teacher_weight * soft
        shard_of = (row_uniforms(keys, self.seed, "shard") * self.shards).astype(np.int64)
        return encoder.encode_columns(columns, strict=False), targets, shard_of, key_hashes(keys, self.seed)

    def __getstate__(self) -> dict:  # what Spark sends an executor: the plain fields, never the built objects
        return {name: value for name, value in self.__dict__.items() if name != "_cached"}

    def _objects(self):
        cached = getattr(self, "_cached", None)
        if cached is None:
            import lightgbm as lgb

            cached = self._cached = (Schema.from_json(self.schema), HashSplit(**self.split),
                                     Encoder.from_spec(self.encoder), lgb.Booster(model_str=self.teacher_model))
        return cached


def local_shards(path: Path, job: EncodingJob, by_key: dict, directory: Path, width: int, *, sep: str | None,
                 chunk_rows: int, text_columns: tuple[str, ...], rows: int, progress: ProgressCallback
                 ) -> tuple[list[Path], int]:
    """Pass 2 on this machine: the shard files and the training rows written."""
    writer = ShardWriter(directory, job.shards, width)
    try:
        for start, frame in table_chunks(path, sep=sep, chunk_rows=chunk_rows, text_columns=text_columns):
            writer.write(*job.run(frame, start, by_key, path))
            progress("pass 2 of 3: encoding", start + len(frame), rows)
    finally:
        writer.close()
    return writer.paths, writer.rows


def shard_records(encoded: np.ndarray, targets: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows as a shard stores them, float32: the encoded row, the target, then the row key's 64-bit hash in
    two lanes (bits, not a number), by which a shard is put in one order however it was written."""
    width = encoded.shape[1]
    records = np.empty((len(encoded), width + RECORD_EXTRA), dtype=np.float32)
    records[:, :width], records[:, width] = encoded, targets
    records[:, width + 1:].view(np.uint64)[:, 0] = order
    return records


class ShardWriter:
    """Encoded training rows, each with its target, appended to one of ``count`` shard files by hash."""

    def __init__(self, directory: Path, count: int, width: int):
        self.paths = [directory / f"shard-{i:04d}.f32" for i in range(count)]
        self.handles = [open(p, "wb") for p in self.paths]  # noqa: SIM115 - closed in close()
        self.width, self.rows = width, 0

    def write(self, encoded: np.ndarray, targets: np.ndarray, shard_of: np.ndarray, order: np.ndarray) -> None:
        records = shard_records(encoded, targets, order)
        for shard in np.unique(shard_of):
            self.handles[shard].write(records[shard_of == shard].tobytes())
        self.rows += len(encoded)

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def shard_batches(paths: list[Path], width: int, batch: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless batches: the shards in a new random order each pass, each shard's rows shuffled."""
    rng = np.random.default_rng(seed)
    while True:
        for index in rng.permutation(len(paths)):
            records = np.fromfile(paths[index], dtype=np.float32).reshape(-1, width + RECORD_EXTRA)
            canonical = np.argsort(np.ascontiguousarray(records[:, width + 1:]).view(np.uint64)[:, 0], kind="stable")
            records = records[canonical[rng.permutation(len(records))]]
            for start in range(0, len(records) - batch + 1, batch):
                chunk = records[start:start + batch]
                yield chunk[:, :width], chunk[:, width]


class LocalEngine:
    """Passes 1 and 2 on this machine, a chunk at a time."""

    def first_pass(self, path: Path, schema: Schema, split: HashSplit, plan: StreamingPlan, *, sep: str | None,
                   progress: ProgressCallback) -> FirstPass:
        return first_pass(path, schema, split, plan, sep=sep, progress=progress)

    def shards(self, path: Path, job: EncodingJob, by_key: dict, directory: Path, width: int, *, sep: str | None,
               chunk_rows: int, text_columns: tuple[str, ...], rows: int, progress: ProgressCallback
               ) -> tuple[list[Path], int]:
        return local_shards(path, job, by_key, directory, width, sep=sep, chunk_rows=chunk_rows,
                            text_columns=text_columns, rows=rows, progress=progress)


def train_streaming(path: str | Path, out: str | Path, *, label: str | None = None, sep: str | None = None,
                    schema_file: str | Path | None = None, recipe=None, seed: int = 0, policy=None,
                    test_fraction: float = 0.2, id_column: str | None = None, teacher_rows: int = TEACHER_ROWS,
                    chunk_rows: int = CHUNK_ROWS, on_step: Callable[[str], None] | None = None,
                    progress: ProgressCallback | None = None, engine=None) -> dict:
    """Train an MLP bundle out of core (see the module's docstring); the bundle has the layout, checks and
    evidence of an in-memory one. ``engine`` runs passes 1 and 2: :class:`LocalEngine` (the default), or
    :class:`intent_edge.train.spark_engine.SparkEngine` (the split must then be keyed by ``id_column``);
    the network trains here from the shards either writes."""
    from intent_edge.data.quality import data_quality, leakage_warnings, quality_lines
    from intent_edge.train.evaluate import ThresholdPolicy, compute_metrics
    from intent_edge.train.mlp import MLPRecipe, build_mlp, predict_probabilities, seed_everything
    from intent_edge.train.pipeline import Evidence, FittedModel, write_mlp_bundle

    path, step = Path(path), on_step or (lambda _message: None)
    progress = progress or (lambda _stage, _done, _total: None)
    recipe, policy = recipe or MLPRecipe(), policy or ThresholdPolicy("max-f1")
    rows = count_rows(path)
    plan = StreamingPlan(rows, chunk_rows=chunk_rows, teacher_rows=teacher_rows)
    _, head = next(table_chunks(path, sep=sep, chunk_rows=min(chunk_rows, 65_536)))
    schema = resolve_schema(head, path, label, schema_file)
    if id_column is not None:
        if id_column not in head.columns:
            raise DataError(path, f"no column '{id_column}' to key the split by", column=id_column)
        schema = replace(schema, kinds={k: v for k, v in schema.kinds.items() if k != id_column})
    # every validation row is kept: the fraction is sized for about VALIDATION_ROWS of them
    validation_fraction = min(0.2, plan.validation_rows / max(1, rows * (1 - test_fraction)))
    split = HashSplit(seed, test_fraction, validation_fraction, id_column)
    step(f"streaming {rows:,} rows in chunks of {chunk_rows:,} (test {test_fraction:.0%} by a hash of the "
         f"{split.to_json()['key']})")

    text_columns = () if id_column is None else (id_column,)
    engine = engine or LocalEngine()
    first = engine.first_pass(path, schema, split, plan, sep=sep, progress=progress)
    encoder, training_rows = first.encoder, int(first.classes.sum())
    quality = data_quality(first.quality_frame, schema)
    quality["rows_checked"] = len(first.quality_frame)
    quality["warnings"] += leakage_warnings(first.sample, first.sample_labels, schema)
    for line in quality_lines(quality):
        step(line)
    step(f"teacher: LightGBM on a sample of {len(first.sample):,} training rows ({plan.teacher_folds} folds)")
    teacher = Teacher(first, schema, plan.teacher_folds, seed)

    batch = batch_size(training_rows)
    rate = learning_rate(recipe.learning_rate, batch)
    width = encoder.width
    shards = max(1, math.ceil(training_rows * (width + RECORD_EXTRA) * 4 / SHARD_BYTES))
    scratch = Path(tempfile.mkdtemp(prefix="intent-edge-shards-"))
    try:
        job = EncodingJob(schema.to_json(), split.to_arguments(), encoder.to_spec(), teacher.model_text,
                          recipe.teacher_weight, shards, seed)
        shard_paths, written = engine.shards(path, job, teacher.by_key, scratch, width, sep=sep,
                                             chunk_rows=chunk_rows, text_columns=text_columns, rows=rows,
                                             progress=progress)

        import keras
        import tensorflow as tf

        seed_everything(seed)
        model = build_mlp(width, recipe)
        model.compile(optimizer=keras.optimizers.Adam(rate), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
        validation_x = encoder.encode_columns(first.validation, strict=False)
        steps = max(1, min(plan.evaluate_rows, written) // batch)
        budget = recipe.max_epochs * max(1, written // (steps * batch))  # max_epochs passes over the data
        dataset = tf.data.Dataset.from_generator(
            lambda: shard_batches(shard_paths, width, batch, seed),
            output_signature=(tf.TensorSpec((batch, width), tf.float32), tf.TensorSpec((batch,), tf.float32)))
        patience = min(recipe.patience, STREAMING_PATIENCE)
        step(f"network: batch {batch}, learning rate {rate:.2g}, validated every {steps * batch:,} rows on "
             f"{len(validation_x):,} rows, at most {budget} validations, patience {patience}")
        callbacks = [keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                                   restore_best_weights=True),
                     keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: progress(
                         "network (until early stopping)", (epoch + 1) * steps * batch, budget * steps * batch))]
        history = model.fit(dataset.prefetch(2), steps_per_epoch=steps, epochs=budget,
                            validation_data=(validation_x, first.validation_labels.astype("float32")),
                            callbacks=callbacks, shuffle=False, verbose=0).history
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    validation_p = predict_probabilities(model, validation_x)
    threshold = policy.choose(first.validation_labels, validation_p)
    epochs = int(np.argmax(history["val_auc"])) + 1
    fitted = FittedModel(encoder, model, threshold, compute_metrics(first.validation_labels, validation_p, threshold),
                         epochs, {"fit": training_rows, "validation": len(validation_x)})

    def score_test(runner) -> tuple[np.ndarray, np.ndarray]:
        labels, probabilities = [], []
        for start, frame in table_chunks(path, sep=sep, chunk_rows=chunk_rows,
                                         text_columns=text_columns):
            is_test, _ = split.assign(frame, start)
            if is_test.any():
                labels.append(parse_label(path, frame[schema.label], first_row=start)[is_test])
                columns = check_feature_columns(frame[is_test], schema, path, first_row=start, chunk=True)
                probabilities.append(runner.infer(encoder.encode_columns(columns, strict=False)))
            progress("pass 3 of 3: scoring the held-out rows", start + len(frame), rows)
        return np.concatenate(labels), np.concatenate(probabilities)

    from intent_edge.train.pipeline import strict_rows

    held_out = first.held_out
    accepted = strict_rows(held_out, np.arange(len(held_out)), encoder)
    evidence = Evidence(parity_frame=held_out.iloc[:PARITY_ROWS], golden_frame=held_out.iloc[accepted[:GOLDEN_ROWS]],
                        raw_frame=held_out.iloc[accepted[:PARITY_ROWS]],
                        background=lambda: encoder.encode_columns(first.sample.iloc[:BACKGROUND_SAMPLE], strict=False),
                        score_test=score_test)
    streaming_recipe = replace(recipe, teacher="lightgbm", teacher_folds=plan.teacher_folds, refit=False,
                               batch_size=batch, learning_rate=rate, validation_fraction=validation_fraction,
                               patience=min(recipe.patience, STREAMING_PATIENCE))
    record = {**split.to_json(), "test_rows": first.test_rows, "test_digest": digest_text(first.test_digest)}
    training = {"model": "mlp", "recipe": streaming_recipe.to_json(), "seed": seed, "epochs": epochs,
                "split": record, "rows": {"fit": training_rows, "validation": len(validation_x),
                                          "test": first.test_rows, "teacher_sample": len(first.sample)},
                "data": {"file": path.name, "rows": rows},
                "streaming": {**plan.to_json(batch, rate, shards),
                              "median_rank_error": first.median_rank_error,
                              "validations": len(history["val_auc"]),
                              "rows_seen": len(history["val_auc"]) * steps * batch}}
    return write_mlp_bundle(out, fitted, evidence, schema=schema, quality=quality, policy=policy, training=training,
                            threshold_chosen_on="validation (a hash sample of the training rows)", seed=seed,
                            step=step)
