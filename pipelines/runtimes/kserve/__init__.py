"""The KServe runtime's adapters: InferenceService status, ``kubectl``, the canary router, traffic steps."""
