"""Clickstream input for the runtime (numpy only): how events become token ids and gap features.

Token ids: 0 is padding, 1 an event not in the vocabulary, then the vocabulary in order. Each event
also carries ``log1p`` of the seconds since the session's previous event (0 for the first, and for an
event stamped earlier than the previous one), which is what a live tracker knows when the event
arrives. Sessions longer than ``max_length`` keep their first ``max_length`` events in the padded
form the full-sequence models read; the streaming scorer carries state and has no such limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from intent_edge.errors import SpecError


@dataclass(frozen=True)
class SequenceSpec:
    vocabulary: tuple[str, ...]
    max_length: int
    _index: dict = field(init=False, repr=False, compare=False)

    PAD = 0
    UNKNOWN = 1

    def __post_init__(self):
        object.__setattr__(self, "_index", {v: i + 2 for i, v in enumerate(self.vocabulary)})

    def to_spec(self) -> dict:
        return {"vocabulary": list(self.vocabulary), "max_length": self.max_length}

    @classmethod
    def from_spec(cls, spec: dict) -> SequenceSpec:
        vocabulary = spec["vocabulary"]
        if not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
            raise SpecError("sequence spec: vocabulary must be a list of event names")
        return cls(tuple(vocabulary), int(spec["max_length"]))

    @property
    def tokens(self) -> int:
        """How many token ids there are (the embedding's input size)."""
        return len(self.vocabulary) + 2

    def token_of(self, event: str) -> int:
        return self._index.get(event, self.UNKNOWN)

    @staticmethod
    def gap_feature(seconds):
        return np.log1p(np.maximum(seconds, 0.0)).astype(np.float32)
