"""Progress events: the one source every progress display consumes.

Long work (a pull, a load, building a lesson image) reports what it is doing
as a stream of :class:`Progress` events passed to a callback. The CLI turns
them into progress bars, the widget into ipywidgets bars, the server into
websocket messages (``event.to_dict()``), so all three show the same thing.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

# Layer (or blob) states, in the order a layer normally passes through them.
WAITING = "waiting"
DOWNLOADING = "downloading"
VERIFYING = "verifying"
EXTRACTING = "extracting"
DONE = "done"
EXISTS = "exists"  # already present: nothing to fetch
ERROR = "error"

LAYER_STATES = (WAITING, DOWNLOADING, VERIFYING, EXTRACTING, DONE, EXISTS, ERROR)


class Progress:
    """One event.

    ``kind`` is ``"layer"`` for per-blob progress (``id`` is the short digest,
    ``current``/``total`` count bytes of that blob) or ``"status"`` for a line
    about the whole operation (``message``; ``id`` is the reference).
    (A plain class: importing dataclasses costs the CLI 15 ms.)
    """

    __slots__ = ("kind", "id", "status", "current", "total", "message", "time")

    def __init__(self, kind: str, id: str, status: str, current: int = 0, total: Optional[int] = None,
                 message: str = "", time: Optional[float] = None):
        self.kind, self.id, self.status = kind, id, status
        self.current, self.total, self.message = current, total, message
        self.time = _now() if time is None else time

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other) -> bool:
        return isinstance(other, Progress) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Progress({fields})"


ProgressCallback = Callable[[Progress], None]


_now = time.time


def ignore(_event: Progress) -> None:
    """The default callback: drop events."""


def short_id(digest: str) -> str:
    """``sha256:abcdef…`` → ``abcdef012345`` (12 hex digits, as docker shows)."""
    return digest.split(":", 1)[-1][:12]
