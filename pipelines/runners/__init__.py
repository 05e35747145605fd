"""The StackRunner seam: how a changed stack file becomes a running endpoint.

``PulumiStackRunner`` drives the Pulumi Automation API against real stacks;
``LocalStackRunner`` is the embedded default (offline plan plus the local sandbox). The
controller's logic is the same over both.
"""
