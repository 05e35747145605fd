"""``modelrail service new``: a service's contract, training module and test, passing out of the box.

A team starts from files the platform already accepts: ``services/<name>/service.yaml`` (the
contract, commented), ``services/<name>/model.py`` (a scikit-learn pipeline built only from types
the serving loader trusts) and ``tests/services/test_<name>.py`` (it trains the service on its
snapshot and holds the model to the contract's metric rules, as ``gate model`` does). The test
lives under ``tests/`` rather than in the service's folder because every module of that folder
may travel in the package (``code/service/``), and ``tests/`` is where pytest looks.

Given a CSV snapshot, the contract is read off it: the features and their types, the classes,
the live tolerance, the fingerprint. The model is then fitted once, through the trainer, the
packager and the model gate themselves, and the contract's absolute metric bounds are set a
little on the safe side of what it reached, so the first ``gate model`` passes and a clearly
worse model does not.
Without a snapshot, the data section is a marked placeholder that the loader refuses until it
is filled in.

Everything is written in a scratch project first and checked there (the contract loaded by
``read_contract``, the model trained, packaged and gated); only then are the files moved into
the project, so a failure at any step leaves the project as it was.
"""
