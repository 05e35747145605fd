"""Quality gates: the checks a model version must pass before it moves to the next stage.

Each gate (data, drift, model, repro, latency) returns a ``GateReport`` of uniform ``Check``
results; ``pipelines.gates.stage.run_stage`` runs the gates a stage's policy names and returns one
report with a stable digest that approvals and the registry refer to.

Submodules import numpy, polars and scipy; this package's ``__init__`` imports nothing heavy so
that the CLI starts fast.
"""
