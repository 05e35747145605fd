"""The promotion controller: stages, approvals, stack updates, verified rollouts, rollback, audit.

A model version reaches an environment only by a change of the version pinned in that
environment's stack file followed by a stack update; every step is gated, journaled, verified
against the endpoint, recorded in a hash-chained audit log, and reversible.
"""
