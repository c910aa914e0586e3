"""Exports for hosts outside Python: the network read from a bundle's ONNX variant (:mod:`.network`), and
the dependency-free C library of encoder and network (:mod:`.c`). The raw-field ONNX graph and Triton
repositories are still at :mod:`intent_edge.raw_graph` and :mod:`intent_edge.triton`."""
