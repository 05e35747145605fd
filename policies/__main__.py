"""The CrossGuard policy pack: ``pulumi preview --policy-pack policies/``. It only builds the pack."""

from pulumi_policy import PolicyPack

from policies.crossguard import policies

PolicyPack(name="modelrail", policies=policies())
