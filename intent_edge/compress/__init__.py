"""Model compression: pruned, quantized and distilled variants of a bundle's model, each proven against
its source and scored (:mod:`intent_edge.compress.pipeline`); every source and conversion is one row of
:mod:`intent_edge.compress.registry`.

Nothing here is imported by training or the runtime.
"""
