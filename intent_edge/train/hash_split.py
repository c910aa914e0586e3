"""Held-out and validation rows chosen by a hash of a row key (an id column, or the row number) and the
seed, not by an index list: the same row lands on the same side in every pass, every run and every
chunking, so a streamed table of any size is split without keeping its row numbers, and ``compress``,
``evaluate`` and the plots rebuild the split from the manifest (its held-out rows' sha256 proves it)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intent_edge.errors import DataError


def row_uniforms(keys: np.ndarray, seed: int, purpose: str) -> np.ndarray:
    """A number in [0, 1) per row from a hash of its key, the seed and the purpose (split, sample, shard):
    the same row gets the same number in every pass and every run, whatever the chunking. pandas hashes the
    key (its ``hash_key`` only salts text, so the salt is mixed in here), and SplitMix64's finaliser spreads
    key and salt over all 64 bits."""
    salt = np.uint64(int.from_bytes(hashlib.sha256(f"intent-edge/{purpose}/{seed}".encode()).digest()[:8], "little"))
    mixed = pd.util.hash_array(np.asarray(keys), categorize=False) ^ salt
    mixed = (mixed + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class HashSplit:
    """Which rows are test and validation rows: by ``row_uniforms`` of the key, never by position."""

    seed: int
    test_fraction: float
    validation_fraction: float
    id_column: str | None = None

    def keys(self, frame: pd.DataFrame, first_row: int) -> np.ndarray:
        if self.id_column is None:
            return np.arange(first_row, first_row + len(frame), dtype=np.int64)
        return frame[self.id_column].astype(str).to_numpy(dtype=object)

    def assign(self, frame: pd.DataFrame, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """(is_test, is_validation) for the chunk's rows."""
        u = row_uniforms(self.keys(frame, first_row), self.seed, "split")
        is_test = u < self.test_fraction
        return is_test, ~is_test & (u < self.test_fraction + self.validation_fraction * (1 - self.test_fraction))

    def to_arguments(self) -> dict:
        return {"seed": self.seed, "test_fraction": self.test_fraction, "validation_fraction": self.validation_fraction,
                "id_column": self.id_column}

    def to_json(self) -> dict:
        return {"kind": "hash", "key": self.id_column or "row number", "seed": self.seed,
                "test_fraction": self.test_fraction, "validation_fraction": self.validation_fraction}


def rebuild_hash_split(frame: pd.DataFrame, split: dict) -> tuple[np.ndarray, str]:
    """The held-out row positions of an in-memory table under a manifest's hash split, and the digest of
    their keys (:func:`digest_text`), to compare with the manifest's."""
    rule = HashSplit(split["seed"], split["test_fraction"], split["validation_fraction"],
                     None if split["key"] == "row number" else split["key"])
    if rule.id_column is not None and rule.id_column not in frame.columns:
        raise DataError("the data", f"no column '{rule.id_column}', which the bundle's split is keyed by",
                        column=rule.id_column)
    test = np.nonzero(rule.assign(frame, 0)[0])[0]
    return test, digest_text(keys_digest(rule.keys(frame, 0)[test]))


def digest_text(digest: int) -> str:
    return f"{digest:016x}"


def _mix(keys: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64's finaliser over pandas' hash of each key, salted."""
    mixed = pd.util.hash_array(np.asarray(keys), categorize=False) ^ np.uint64(salt)
    mixed = (mixed + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return mixed ^ (mixed >> np.uint64(31))


def keys_digest(keys: np.ndarray) -> int:
    """A 64-bit digest of a set of row keys that does not depend on their order (a sum of their mixed
    hashes, modulo 2**64): the parts of a table, read in any order or on any number of machines, add up to
    the digest of the whole."""
    return int(_mix(keys, 0x1D).sum(dtype=np.uint64)) if len(keys) else 0


def add_digests(a: int, b: int) -> int:
    return (a + b) % (1 << 64)


def key_hashes(keys: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit hash of each row key (uint64): the order the training shards are put in."""
    return _mix(keys, seed)
