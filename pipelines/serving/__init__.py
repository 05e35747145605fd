"""The model server: the SageMaker container contract (``GET /ping``, ``POST /invocations``).

This package is copied into every ``model.tar.gz`` (under ``code/``) together with
``pipelines/errors.py``, so it must stay self-contained: it imports only the standard
library, numpy, pandas, scikit-learn and skops, and only when a model is loaded.
The same code serves in the SageMaker image, in the latency gate and in the local sandbox,
always started by ``pipelines.serving.launch``: verified against the platform's own copy of
these files, then run from the package's ``code/``, isolated. The only other code a package
may carry is its service's own ``predict`` module(s), under ``code/service/``, pinned by the
manifest (``verify.verify_serving_code``) and imported by ``model.load_service_predict``.
"""
