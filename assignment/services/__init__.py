"""Writes of the engine, one module per concern:

- ``recovery``: rebuilding Redis from Postgres, reconciling, running an engine call with recovery.
- ``assign``: a new call's claim, and recording a waiting call handed to an agent.
- ``sweep``: the periodic sweep (drift repair and pairing), running the steps other apps register.
- ``identity``: which deployment this Redis serves.

Routing configuration lives in ``routing``, the call lifecycle in ``calls``, agent status
transitions in ``agents``.
"""
