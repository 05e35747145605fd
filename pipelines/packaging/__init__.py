"""Model packages: ``model.tar.gz`` in the SageMaker layout, every file sha256'd in ``manifest.json``.

``build_package`` turns a model directory (from ``pipelines.training``) into a byte-reproducible
tarball; the package id, and so the model version, is the sha256 of its ``manifest.json``.
``load_package`` re-verifies every file before anything is deserialised; ``compare`` explains
precisely how two model directories or packages differ.
"""
