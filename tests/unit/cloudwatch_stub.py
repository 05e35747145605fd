"""What the CloudWatch tests share (the stubbed client itself is the ``cloudwatch`` fixture of tests/conftest.py)."""

from __future__ import annotations

DIMENSIONS = [
    {"Name": "EndpointName", "Value": "prod-adult-income"},
    {"Name": "VariantName", "Value": "primary"},
]
"""The per-variant dimensions of adult-income's production variant in prod."""
