"""Writes of the assignment app, one module per concern:

- ``config``: routing settings, agent and call types, the conversion matrix, the cached snapshot.
- ``recovery``: rebuilding Redis from Postgres, reconciling, running an engine call with recovery.
- ``assign``: a new call's claim, and recording a queued call handed to an agent.
- ``release``: an agent becoming free, busy elsewhere, or removed.
- ``sweep``: the periodic sweep (abandonment, wrap-up ends, overdue calls, drift repair).
"""

from assignment.services.config import config_seed_defaults, routing_config

__all__ = ["config_seed_defaults", "routing_config"]
