"""The service contract: what a model service is, declared once in ``services/<name>/service.yaml``.

Every other part of the platform (training, the gates, packaging, serving and the canary) asks the
contract instead of knowing any service by name, so a team brings a model by writing the contract
and a training function, and nothing else.
"""
