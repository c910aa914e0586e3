"""Model compression (pruning, quantization, distillation). Not built yet: see the compression issue.

Nothing here is imported by training or the runtime.
"""
