"""shap's explainers on a Predictor, as the reference the explanations are checked and timed against.

shap's maskers need numeric arrays, so categorical values travel as integer codes into a table of the
raw values, decoded before ``predict_batch``: the model function shap sees is the predictor itself.
Needs shap (the dev extra); nothing in the runtime imports this module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class ShapModel:
    """``predictor.predict_batch`` as a function of shap's numeric matrices."""

    def __init__(self, predictor, records: list[dict]):
        self.predictor, self.names = predictor, list(predictor.feature_names)
        kinds = predictor.manifest["schema"]["kinds"]
        frame = pd.DataFrame(records)[self.names]
        self.tables = {n: list(dict.fromkeys(frame[n].tolist())) for n in self.names if kinds[n] == "categorical"}

    def codes(self, records: list[dict]) -> np.ndarray:
        """``records`` as shap's matrix (each must hold values seen when this model was made)."""
        frame = pd.DataFrame(records)[self.names].copy()
        for name, values in self.tables.items():
            frame[name] = [values.index(v) for v in frame[name]]
        return frame.to_numpy(dtype=np.float64)

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        columns = {n: ([self.tables[n][int(c)] for c in matrix[:, i]] if n in self.tables else matrix[:, i])
                   for i, n in enumerate(self.names)}
        return self.predictor.predict_batch(columns)


def shap_explainers(predictor, records: list[dict], background: list[dict]):
    """``(model, exact, permutation)``: shap's Exact and Permutation explainers with an Independent masker
    over ``background`` (all of its rows), on the predictor; ``model.codes`` turns records into their input."""
    import shap

    model = ShapModel(predictor, background + records)
    masker = shap.maskers.Independent(model.codes(background), max_samples=len(background))
    return model, shap.ExactExplainer(model, masker), shap.PermutationExplainer(model, masker)
