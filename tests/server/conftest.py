"""Fixtures of the server tests (helpers live in server_support.py)."""

from server_support import app_client, clock

__all__ = ["app_client", "clock"]
