"""The errors a person can fix, in a module of their own: the command line catches them without loading pydantic."""

from __future__ import annotations


class UserError(Exception):
    """Something a person can fix: the message is one sentence that says what and how.

    The CLI prints it and exits 2; the dashboard shows it as one line. Every error the library
    raises for bad input, configuration, permissions or refused actions derives from it.
    """


class ConfigError(UserError, ValueError):
    """Configuration that cannot work; the message says how to fix it."""
