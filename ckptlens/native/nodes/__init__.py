"""The native schema, one module per node family (no torch, no HF spelling).

Each node is a frozen attrs class that validates its invariants and knows its own native
tensors (``node.tensors(prefix, width)`` yields ``(name, shape)``); each union of node types is
declared once with ``fields.union``. ``ckptlens.native.config`` re-exports everything here.
"""
