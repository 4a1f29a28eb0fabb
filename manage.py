#!/usr/bin/env python
"""Django's command-line utility for Callcenter. It finds the Postgres and Redis that `make run`
chose (``.local/services.env``) unless DATABASE_URL / REDIS_URL are set, and reports a service that
does not answer in one sentence (see ``callcenter/cli.py``)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callcenter.settings")
    from callcenter.cli import load_services_env, run

    load_services_env()
    from django.core.management import execute_from_command_line

    run(lambda: execute_from_command_line(sys.argv))


if __name__ == "__main__":
    main()
