"""The model registry port and its adapter: S3 for artifacts, the SageMaker Model Registry for versions.

``registry_for_stack(stack)`` gives the registry of a stack: the embedded AWS for ``local`` (or
with ``MODELRAIL_AWS=embedded``), the account's real services otherwise. The same boto3 code
runs in both cases. Only the wiring and ``modelrail register``/``versions`` build one; everything
else is handed the port. ``stages`` says where a version stands and which moves are legal.
"""
