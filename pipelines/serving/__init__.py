"""The model server: the SageMaker container contract (``GET /ping``, ``POST /invocations``).

This package is copied into every ``model.tar.gz`` (under ``code/``) together with
``pipelines/errors.py``, so it must stay self-contained: it imports only the standard
library, numpy, pandas, scikit-learn and skops, and only when a model is loaded.
The same code serves in the SageMaker image and in the local sandbox.
"""
