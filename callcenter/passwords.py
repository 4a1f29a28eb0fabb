"""Generated passwords: URL-safe, and never starting with a dash (a command-line tool would take the
password for an option)."""

from __future__ import annotations

import secrets


def password_generate(nbytes: int = 12) -> str:
    while True:
        password = secrets.token_urlsafe(nbytes)
        if not password.startswith("-"):
            return password
