"""Reading json-file logs: time parsing, tail over rotated files, since and
until, following across rotation. The files are written here in the shape
jc-monitor writes them (tests/integration/test_monitor.py reads what the real
monitor wrote)."""

from __future__ import annotations

import datetime
import json
import os
import threading
import time
from pathlib import Path

import pytest

from jupyter_containers import errors
from jupyter_containers.containers import logs
from jupyter_containers.containers.logs import LogLine, format_time, parse_time, read_logs

BASE = 1_700_000_000 * 10**9          # 2023-11-14T22:13:20Z


def record(number: int, stream: str = "stdout", text: str | None = None) -> bytes:
    """The log line of entry ``number``, written at BASE + number seconds."""
    return json.dumps({"log": text if text is not None else f"line {number}\n", "stream": stream,
                       "time": format_time(BASE + number * 10**9)}).encode() + b"\n"


def write_log(directory: Path, name: str, numbers, stream_of=lambda n: "stderr" if n % 3 == 0 else "stdout"):
    with open(directory / name, "ab") as handle:
        for number in numbers:
            handle.write(record(number, stream_of(number)))


@pytest.fixture
def rotated(tmp_path) -> Path:
    """Entries 1-30 over ctr.log.2 (1-10), ctr.log.1 (11-20), ctr.log (21-30)."""
    write_log(tmp_path, "ctr.log.2", range(1, 11))
    write_log(tmp_path, "ctr.log.1", range(11, 21))
    write_log(tmp_path, "ctr.log", range(21, 31))
    return tmp_path


def numbers(entries) -> list[int]:
    return [int(entry.data.split()[-1]) for entry in entries]


# --- times --------------------------------------------------------------------

def test_format_time_is_the_monitors_fixed_width_form():
    assert format_time(BASE + 5) == "2023-11-14T22:13:20.000000005Z"
    assert format_time(BASE + 123_456_789_000) == "2023-11-14T22:15:23.456789000Z"


@pytest.mark.parametrize("text, expected", [
    ("2023-11-14T22:13:20Z", BASE),
    ("2023-11-14T22:13:20.5Z", BASE + 500_000_000),
    ("2023-11-14T22:13:20.000000007Z", BASE + 7),
    ("2023-11-14T23:13:20+01:00", BASE),
    ("2023-11-14T20:43:20.25-01:30", BASE + 250_000_000),
    ("1700000000", BASE),
    ("1700000000.000000001", BASE + 1),
    ("1700000000.5", BASE + 500_000_000),
    (1700000000, BASE),
    (1700000000.5, BASE + 500_000_000),
    (datetime.datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=datetime.timezone.utc), BASE + 250_000_000),
])
def test_parse_time_absolute(text, expected):
    assert parse_time(text) == expected


def test_parse_time_without_a_zone_is_local_time():
    local = datetime.datetime(2023, 11, 14, 22, 13, 20)
    assert parse_time("2023-11-14T22:13:20") == int(local.timestamp()) * 10**9
    assert parse_time("2023-11-14T22:13") == int(local.replace(second=0).timestamp()) * 10**9
    assert parse_time("2023-11-14") == int(datetime.datetime(2023, 11, 14).timestamp()) * 10**9


@pytest.mark.parametrize("text, ago", [
    ("10m", 600 * 10**9), ("1h30m", 5400 * 10**9), ("1.5h", 5400 * 10**9), ("300ms", 300_000_000),
    ("2h45m10s", (2 * 3600 + 45 * 60 + 10) * 10**9), ("90s", 90 * 10**9), ("5us", 5000), ("7ns", 7),
])
def test_parse_time_durations_count_back_from_now(text, ago):
    assert parse_time(text, now_ns=BASE) == BASE - ago


@pytest.mark.parametrize("text", ["yesterday", "10 minutes", "2023-13-01", "2023-02-30T00:00:00Z", "", "-5m",
                                  "2023-11-14T22:13:20+1"])
def test_bad_times_are_one_line_user_errors(text):
    with pytest.raises(errors.UserError) as raised:
        parse_time(text)
    assert "\n" not in str(raised.value) and "invalid time" in str(raised.value)


# --- reading ------------------------------------------------------------------

def test_reads_rotated_files_oldest_first(rotated):
    entries = list(read_logs(rotated))
    assert numbers(entries) == list(range(1, 31))
    assert entries[0] == LogLine("stdout", b"line 1\n", "2023-11-14T22:13:21.000000000Z")
    assert {entry.stream for entry in entries if int(entry.data.split()[-1]) % 3 == 0} == {"stderr"}


def test_stream_selection(rotated):
    assert numbers(read_logs(rotated, stdout=False)) == list(range(3, 31, 3))
    assert numbers(read_logs(rotated, stderr=False)) == [n for n in range(1, 31) if n % 3]
    assert list(read_logs(rotated, stdout=False, stderr=False)) == []


@pytest.mark.parametrize("tail, expected", [
    (3, [28, 29, 30]), (12, list(range(19, 31))), (30, list(range(1, 31))), (100, list(range(1, 31))),
    (0, []), (None, list(range(1, 31))), (-1, list(range(1, 31))),
])
def test_tail_across_rotated_files(rotated, tail, expected):
    assert numbers(read_logs(rotated, tail=tail)) == expected


def test_tail_counts_only_the_selected_stream(rotated):
    assert numbers(read_logs(rotated, tail=4, stdout=False)) == [21, 24, 27, 30]


def test_since_and_until_include_both_ends(rotated):
    since, until = format_time(BASE + 9 * 10**9), format_time(BASE + 22 * 10**9)
    assert numbers(read_logs(rotated, since=since)) == list(range(9, 31))
    assert numbers(read_logs(rotated, until=until)) == list(range(1, 23))
    assert numbers(read_logs(rotated, since=since, until=until)) == list(range(9, 23))
    assert numbers(read_logs(rotated, since=since, tail=5)) == list(range(26, 31))
    assert numbers(read_logs(rotated, since=format_time(BASE + 27 * 10**9), tail=10)) == [27, 28, 29, 30]
    assert numbers(read_logs(rotated, until=until, tail=2)) == [21, 22]
    assert numbers(read_logs(rotated, since=str((BASE + 29 * 10**9) // 10**9))) == [29, 30]


def test_timestamps_prefix_the_data(rotated):
    (entry,) = read_logs(rotated, tail=1, timestamps=True)
    assert entry.data == b"2023-11-14T22:13:50.000000000Z line 30\n"


def test_torn_and_foreign_lines_are_skipped(tmp_path):
    write_log(tmp_path, "ctr.log", [1])
    with open(tmp_path / "ctr.log", "ab") as handle:
        handle.write(b"not json\n" + b'{"log": 5}\n')
        handle.write(record(2))
        handle.write(record(3)[:20])        # the monitor is still writing this one
    assert numbers(read_logs(tmp_path)) == [1, 2]
    assert numbers(read_logs(tmp_path, tail=5)) == [1, 2]


def test_no_log_yet(tmp_path):
    assert list(read_logs(tmp_path)) == []
    assert list(read_logs(tmp_path / "missing", tail=3)) == []


def test_bytes_round_trip_through_json(tmp_path):
    with open(tmp_path / "ctr.log", "wb") as handle:
        handle.write(record(1, text="tab\tquote\"ctl\x01é\ufffd\r\n"))
    (entry,) = read_logs(tmp_path)
    assert entry.data == "tab\tquote\"ctl\x01é\ufffd\r\n".encode()


# --- following ----------------------------------------------------------------

class Writer(threading.Thread):
    """Appends entries like the monitor does with three files: every
    ``per_file`` entries .1 becomes .2, ctr.log is linked to .1 and a new
    file is renamed over it."""

    def __init__(self, directory: Path, first: int, last: int, per_file: int):
        super().__init__(daemon=True)
        self.directory, self.first, self.last, self.per_file = directory, first, last, per_file
        self.done = threading.Event()

    def run(self):
        try:
            for number in range(self.first, self.last + 1):
                if number % self.per_file == 0:
                    if (self.directory / "ctr.log.1").exists():
                        os.rename(self.directory / "ctr.log.1", self.directory / "ctr.log.2")
                    os.link(self.directory / "ctr.log", self.directory / "ctr.log.1")
                    (self.directory / "ctr.log.new").touch()
                    os.rename(self.directory / "ctr.log.new", self.directory / "ctr.log")
                write_log(self.directory, "ctr.log", [number])
                time.sleep(0.002)
        finally:
            self.done.set()


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
def test_follow_across_rotation_until_stopped(tmp_path, monkeypatch, inotify):
    if not inotify:
        def unavailable(*args):
            raise OSError(38, "inotify_init1: Function not implemented")
        monkeypatch.setattr("jupyter_containers.linux.inotify.Inotify", unavailable)
    write_log(tmp_path, "ctr.log", range(1, 6))
    writer = Writer(tmp_path, 6, 120, per_file=25)
    writer.start()
    followed = numbers(read_logs(tmp_path, follow=True, is_running=lambda: not writer.done.is_set()))
    writer.join()
    assert followed == list(range(1, 121))


def test_follow_after_tail_starts_at_the_end(tmp_path):
    write_log(tmp_path, "ctr.log", range(1, 11))
    writer = Writer(tmp_path, 11, 40, per_file=1000)
    stream = read_logs(tmp_path, tail=2, follow=True, is_running=lambda: not writer.done.is_set())
    first = [next(stream), next(stream)]
    writer.start()
    assert numbers(first) + numbers(stream) == [9, 10] + list(range(11, 41))


def test_follow_waits_for_the_log_to_appear_and_closes_its_files(tmp_path):
    fds_before = len(os.listdir("/proc/self/fd"))
    stream = read_logs(tmp_path, follow=True)       # no is_running: until the reader stops
    Writer(tmp_path, 1, 3, per_file=1000).start()
    assert numbers([next(stream) for _ in range(3)]) == [1, 2, 3]
    stream.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before


def test_follow_with_until_stops_at_it(tmp_path):
    write_log(tmp_path, "ctr.log", range(1, 6))
    stream = read_logs(tmp_path, follow=True, until=format_time(BASE + 7 * 10**9))
    Writer(tmp_path, 6, 9, per_file=1000).start()
    assert numbers(stream) == [1, 2, 3, 4, 5, 6, 7]


def test_lines_backwards_handles_lines_longer_than_a_block(tmp_path, monkeypatch):
    monkeypatch.setattr(logs, "_BLOCK", 64)
    with open(tmp_path / "ctr.log", "wb") as handle:
        for number in range(1, 8):
            handle.write(record(number, text=f"{'x' * 100} {number}\n"))
    assert numbers(read_logs(tmp_path, tail=3)) == [5, 6, 7]
    assert numbers(read_logs(tmp_path)) == list(range(1, 8))
