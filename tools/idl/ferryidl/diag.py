"""Diagnostics: every problem in an IDL file is a positioned error."""

from dataclasses import dataclass
from typing import List


@dataclass(frozen=True, order=True)
class Pos:
    """A 1-based source position (columns count characters; a tab is one)."""

    line: int
    col: int


class IdlError(Exception):
    """One error at one position; carries the message without prefix."""

    def __init__(self, pos: Pos, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message

    def render(self, filename: str) -> str:
        return f"{filename}:{self.pos.line}:{self.pos.col}: error: {self.message}"


class IdlErrors(Exception):
    """Several independent errors (semantic checks), in source order."""

    def __init__(self, errors: List[IdlError]) -> None:
        super().__init__(f"{len(errors)} errors")
        self.errors = sorted(errors, key=lambda e: e.pos)
