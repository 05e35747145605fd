"""Where model services run: the adapters each serving runtime binds for the controller.

A service's ``runtime`` (SageMaker, KServe) decides how the controller inspects its endpoint,
reads its metrics and stops its traffic; ``pipelines.runtimes.table`` holds the one table that
binds them, so one stack may serve services on several runtimes side by side.
"""
