"""The Pulumi program: load the typed stack config, compose the platform, export its outputs."""

from __future__ import annotations

import pulumi

from infra.config import from_pulumi_config
from infra.platform import build_platform

for key, value in build_platform(from_pulumi_config()).items():
    pulumi.export(key, value)
