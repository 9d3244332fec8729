"""Read a container's logs: the docker json-file lines jc-monitor writes to
``<state dir>/ctr.log`` and rotates to ``ctr.log.1``, ``ctr.log.2``, ….

Any process can read and follow them, whichever one started the container:
the files are the only interface. Each line is
``{"log": "…", "stream": "stdout"|"stderr", "time": "2024-01-02T03:04:05.123456789Z"}``;
the monitor always writes ``time`` in that fixed-width UTC form, so times
compare as strings.
"""

from __future__ import annotations

import datetime as _datetime
import itertools
import json
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

from .. import errors

LOG_NAME = "ctr.log"
_ROTATED = re.compile(r"ctr\.log(?:\.(\d+))?")
_BLOCK = 1 << 16
_FOLLOW_CHECK = 0.5             # seconds between is_running() checks while following
_POLL_INTERVAL = 0.1            # without inotify


class LogLine(NamedTuple):
    stream: str                 # "stdout" or "stderr"
    data: bytes
    time: str                   # RFC 3339, nanoseconds, UTC


# --- --since / --until ------------------------------------------------------

_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}
_DURATION = re.compile(r"((?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIX = re.compile(r"(\d+)(?:\.(\d{1,9}))?")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                   r"(Z|[+-]\d{2}:\d{2})?")


def parse_time(value, *, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch for a ``--since``/``--until`` value, in
    any form docker takes: RFC 3339 (``2024-01-02T15:04:05Z``, with or
    without fraction or zone; no zone is local time), a date
    (``2024-01-02``), a Unix timestamp (``1704207845.5``), or a duration
    before now (``10m``, ``1h30m``). Also a ``datetime`` or a number of
    seconds."""
    if isinstance(value, _datetime.datetime):
        whole = int(value.replace(microsecond=0).timestamp())
        return whole * 10**9 + value.microsecond * 1000
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 10**9)
    text = str(value).strip()
    now = time.time_ns() if now_ns is None else now_ns
    if _DURATION.fullmatch(text):
        total = sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text))
        return now - int(total)
    match = _UNIX.fullmatch(text)
    if match:
        return int(match[1]) * 10**9 + int((match[2] or "0").ljust(9, "0"))
    match = _DATE.fullmatch(text)
    if match:
        year, month, day, hour, minute, second = (int(part or 0) for part in match.groups()[:6])
        zone = match[8]
        if zone is None:
            tzinfo = None                     # local time, as docker reads it
        elif zone == "Z":
            tzinfo = _datetime.timezone.utc
        else:
            sign = -1 if zone[0] == "-" else 1
            tzinfo = _datetime.timezone(sign * _datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        try:
            moment = _datetime.datetime(year, month, day, hour, minute, second, tzinfo=tzinfo)
        except ValueError as error:
            raise errors.UserError(f"invalid time '{text}': {error}") from None
        return int(moment.timestamp()) * 10**9 + int((match[7] or "0").ljust(9, "0"))
    raise errors.UserError(
        f"invalid time '{text}'",
        hint="give RFC 3339 (2024-01-02T15:04:05Z), a date, a Unix timestamp or a duration like 10m")


def format_time(ns: int) -> str:
    """The monitor's fixed-width RFC 3339 form of a time in nanoseconds."""
    seconds, fraction = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


# --- files ------------------------------------------------------------------

class _LogFile:
    """One log file, read forward from an offset in complete lines."""

    def __init__(self, fd: int):
        self.fd = fd
        self.inode = os.fstat(fd).st_ino
        self._unfinished = b""

    def lines(self) -> Iterator[bytes]:
        """Complete lines from the current offset up to the end; a line the
        monitor has not finished writing waits for the next call."""
        while True:
            chunk = os.read(self.fd, _BLOCK)
            if not chunk:
                return
            *complete, self._unfinished = (self._unfinished + chunk).split(b"\n")
            yield from complete

    def complete_end(self) -> int:
        """The offset just after the last complete line."""
        position = os.fstat(self.fd).st_size
        while position > 0:
            start = max(0, position - _BLOCK)
            newline = os.pread(self.fd, position - start, start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            position = start
        return 0

    def lines_backwards(self, end: int) -> Iterator[bytes]:
        """Complete lines before ``end``, last first."""
        position, head = end, b""
        while position > 0:
            start = max(0, position - _BLOCK)
            pieces = (os.pread(self.fd, position - start, start) + head).split(b"\n")
            position, head = start, pieces[0]
            yield from reversed(pieces[1:])
        if head:
            yield head

    def close(self) -> None:
        os.close(self.fd)


def _open_log_files(state_dir: Path, after_inode: int | None = None) -> list[_LogFile]:
    """The log files, oldest first. Opened newest first, so that a rotation
    meanwhile shows as the same inode twice (skipped) rather than as a gap.
    With ``after_inode``, only the files newer than that one."""
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return []
    numbered = sorted((int(match[1] or 0), name) for name in names if (match := _ROTATED.fullmatch(name)))
    newest_first: list[_LogFile] = []
    for _, name in numbered:
        try:
            log = _LogFile(os.open(state_dir / name, os.O_RDONLY | os.O_CLOEXEC))
        except FileNotFoundError:
            continue
        if log.inode == after_inode or any(log.inode == seen.inode for seen in newest_first):
            log.close()
            if log.inode == after_inode:
                break
            continue
        newest_first.append(log)
    return newest_first[::-1]


def _parse(line: bytes) -> LogLine | None:
    try:
        record = json.loads(line)
        return LogLine(record["stream"], record["log"].encode("utf-8", "replace"), record["time"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None       # not a log line: torn by a crash or a full disk


# --- reading ----------------------------------------------------------------

def read_logs(state_dir: os.PathLike | str, *, stdout: bool = True, stderr: bool = True,
              tail: int | None = None, since=None, until=None, timestamps: bool = False,
              follow: bool = False, is_running: Callable[[], bool] | None = None) -> Iterator[LogLine]:
    """A container's log lines, oldest first, as ``docker logs`` selects them.

    ``tail``: only the last N selected lines (None or negative: all).
    ``since``/``until``: see :func:`parse_time`; both ends included.
    ``timestamps``: prefix each line's data with its time and a space.
    ``follow``: then wait for new lines, across rotations, until
    ``is_running()`` is false and everything written has been read (without
    ``is_running``, until the caller stops iterating).
    """
    state_dir = Path(state_dir)
    streams = {name for name, wanted in (("stdout", stdout), ("stderr", stderr)) if wanted}
    since_text = format_time(parse_time(since)) if since is not None else None
    until_text = format_time(parse_time(until)) if until is not None else None

    def selected(entry: LogLine) -> bool:
        return entry.stream in streams and (since_text is None or entry.time >= since_text)

    def emit(entry: LogLine) -> LogLine:
        return entry._replace(data=entry.time.encode() + b" " + entry.data) if timestamps else entry

    files = _open_log_files(state_dir)
    try:
        if tail is not None and tail >= 0:
            last = _last_entries(files, tail, lambda entry: selected(entry) and
                                 (until_text is None or entry.time <= until_text), since_text)
            yield from map(emit, last)
            lines: Iterable[bytes] = ()
        else:
            lines = _read_forward(files, include_newest=not follow)
        if follow:
            lines = itertools.chain(lines, _follow(state_dir, files, is_running))
        for line in lines:
            entry = _parse(line)
            if entry is None:
                continue
            if until_text is not None and entry.time > until_text:
                return
            if selected(entry):
                yield emit(entry)
    finally:
        for log in files:
            log.close()


def _last_entries(files: list[_LogFile], count: int, selected: Callable[[LogLine], bool],
                  since_text: str | None) -> list[LogLine]:
    """The last ``count`` selected entries, oldest first. Leaves ``files``
    holding only the newest file, positioned after its last complete line."""
    if not files:
        return []
    newest_end = files[-1].complete_end()
    chosen: list[LogLine] = []

    def backwards() -> Iterator[LogLine | None]:
        for log in reversed(files):
            yield from map(_parse, log.lines_backwards(newest_end if log is files[-1] else log.complete_end()))

    for entry in backwards() if count > 0 else ():
        if entry is None:
            continue
        if since_text is not None and entry.time < since_text:
            break
        if selected(entry):
            chosen.append(entry)
            if len(chosen) == count:
                break
    os.lseek(files[-1].fd, newest_end, os.SEEK_SET)
    while len(files) > 1:
        files.pop(0).close()
    return chosen[::-1]


def _read_forward(files: list[_LogFile], include_newest: bool) -> Iterator[bytes]:
    """Lines of every file but (unless ``include_newest``) the newest, which
    stays open in ``files`` for following."""
    while len(files) > 1:
        yield from files[0].lines()
        files.pop(0).close()
    if include_newest and files:
        yield from files[0].lines()


def _rotated(state_dir: Path, files: list[_LogFile]) -> bool:
    """Whether ctr.log is no longer the file being followed (or has appeared)."""
    try:
        return not files or os.stat(state_dir / LOG_NAME).st_ino != files[0].inode
    except FileNotFoundError:
        return False


def _follow(state_dir: Path, files: list[_LogFile], is_running: Callable[[], bool] | None) -> Iterator[bytes]:
    """Lines of the newest log file (``files``: [it] or [], replaced in
    place as the file rotates), then of the files that follow it."""
    from ..linux.inotify import IN_CREATE, IN_MODIFY, IN_MOVED_TO, Inotify

    try:
        watcher: Inotify | None = Inotify(state_dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO)
    except OSError:
        watcher = None        # no inotify (or out of watches): poll
    try:
        while True:
            # Sampled before reading: once it says stopped, everything the
            # container wrote is in the files.
            running = is_running() if is_running is not None else True
            if files:
                yield from files[0].lines()
            newer = _open_log_files(state_dir, files[0].inode if files else None) if _rotated(state_dir, files) else []
            if newer:
                # Rotated: the old file is complete; read the rest of it and
                # what came after it.
                files.extend(newer)
                yield from _read_forward(files, include_newest=False)
                continue
            if not running:
                return
            timeout = _FOLLOW_CHECK if is_running is not None else None
            if watcher is not None:
                watcher.wait(timeout)
            else:
                time.sleep(_POLL_INTERVAL)
    finally:
        if watcher is not None:
            watcher.close()
