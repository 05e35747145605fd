"""The training contract: a manifest says exactly what to train, and training it is deterministic.

A training manifest pins the data snapshot (URI and sha256 fingerprint), the hyperparameters,
the random seed and the code's git sha. ``train`` refuses data whose fingerprint differs from
the manifest's, and writes a model directory (``model.skops``, ``schema.json``,
``evaluation.json``, ``training-manifest.json``) whose bytes depend only on the manifest.
"""
