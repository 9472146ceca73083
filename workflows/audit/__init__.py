"""The auditor's tools: as-of replay, verification, signed checkpoints, proofs, bundles, diffs.

``records``, ``checkpoint`` and ``offline`` use only the standard library and
``governance`` (no database, no ``cryptography``), so that an exported bundle can be
verified anywhere; the other modules read the live log through ``log``.
"""
