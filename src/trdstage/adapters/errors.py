"""The one error type every input adapter raises: a message that names the place."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: `where` names the file and field (or resource), `message` says what is wrong."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('episodes', 0, 'medications', 1, 'agent') -> 'episodes[0].medications[1].agent'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"
