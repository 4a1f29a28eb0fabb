"""Generated passwords are pasted into shells and tools: none may start with a dash."""

from __future__ import annotations

from unittest import mock

from callcenter import passwords


def test_a_generated_password_never_starts_with_a_dash() -> None:
    # The first draw starts with a dash (as about one in 64 do); it is drawn again.
    with mock.patch.object(passwords.secrets, "token_urlsafe", side_effect=["-abc", "_x-y", "Abc"]) as draw:
        assert passwords.password_generate(12) == "_x-y"
    assert draw.call_count == 2
    assert all(not passwords.password_generate(3).startswith("-") for _ in range(500))
