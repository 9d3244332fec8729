import pytest

from jupyter_containers.errors import UserError
from jupyter_containers.units import human_duration, format_decimal, parse_duration, parse_size


@pytest.mark.parametrize("text, value", [
    ("512m", 512 << 20), ("1g", 1 << 30), ("1G", 1 << 30), ("100k", 102400), ("42", 42),
    ("1.5g", int(1.5 * (1 << 30))), ("64MiB", 64 << 20), (1024, 1024),
])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("15", 15), (2.5, 2.5),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["lots", "1x", "", "-5m"])
def test_bad_sizes(bad):
    with pytest.raises(UserError):
        parse_size(bad)


@pytest.mark.parametrize("bad", ["soon", "1d", "30 s"])
def test_bad_durations(bad):
    with pytest.raises(UserError):
        parse_duration(bad)


def test_human_readable():
    assert format_decimal(1_500_000) == "1.5MB"
    assert format_decimal(999) == "999B"
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(75) == "About a minute"
    assert human_duration(3 * 3600) == "3 hours"
