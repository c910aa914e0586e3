"""intent-edge: real-time purchase-intent prediction, from session data to a compiled model.

Importing this package is cheap: it pulls in nothing heavier than the standard library, so the
runtime (`intent_edge.runtime`) stays free of TensorFlow and pandas.
"""

__version__ = "0.1.0"
