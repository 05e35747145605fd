"""``modelrail demo``: the whole mission on one laptop, with no cloud and no Pulumi CLI.

A model trained on real data is gated, promoted through stack updates, watched in a canary and
rolled back when it misbehaves, on the embedded default (a moto server and the local sandbox),
in a workspace of its own so the repository's files stay untouched.
"""
