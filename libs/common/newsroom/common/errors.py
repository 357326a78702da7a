"""The errors library code raises for a person to read: the CLI's ``main`` prints them as one line and
exits non-zero; nothing deeper turns them into exit codes."""

from __future__ import annotations


class Refused(Exception):
    """An operation that did not go ahead as asked (or stopped before it changed what readers see);
    the message says why, in words for the operator."""
