"""Errors a step reports to the operator: a CamelCase ``reason`` and a message a user can act on."""

from __future__ import annotations


class TrainerError(Exception):
    """A failure the CLI turns into an ``ok: false`` result and a non-zero exit.

    ``reason`` is CamelCase (it becomes the operator's event reason); ``message`` names the input
    at fault (a file, a folder, a params key) so the user knows what to fix.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
