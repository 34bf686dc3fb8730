"""The one error type users see: a clear sentence, exit code 2, never a traceback."""

from __future__ import annotations


class RelaycheckError(Exception):
    """Bad input, bad configuration or an unusable target. The CLI prints it on one line."""

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would break the "one clear line" promise.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)
