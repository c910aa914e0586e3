"""Model monitoring: the reference profile written at training time, and drift and performance computed
from the sketches the runtime keeps (:mod:`intent_edge.runtime.monitor`). Outside the runtime: it uses
SciPy's chi-square test and scikit-learn's logistic regression (Platt scaling)."""
