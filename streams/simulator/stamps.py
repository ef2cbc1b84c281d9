"""Fast, allocation-light formatting of the simulator's times and ids (the hot path runs once per event).

Times are integers of UTC milliseconds. Asia/Shanghai has had no daylight saving time since 1991,
so a fixed +08:00 offset gives exactly what ``schemas.jsonform.format_time`` writes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

LOCAL_OFFSET_MS = 8 * 3600 * 1000
DAY_MS = 86_400_000
HALF_HOUR_MS = 1_800_000
_EPOCH = date(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_UUID_VERSION_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_VERSION_SET = (0x4000 << 64) | (0x8000 << 48)


@lru_cache(maxsize=4096)
def _day(day: int) -> tuple[str, str]:
    d = _EPOCH + timedelta(days=day)
    return d.isoformat() + "T", d.strftime("%Y%m%d")


def iso_local(ms: int) -> str:
    """UTC milliseconds as ISO-8601 local time with milliseconds and +08:00, e.g. 2026-05-12T09:08:00.120+08:00."""
    day, rem = divmod(ms + LOCAL_OFFSET_MS, DAY_MS)
    seconds, milli = divmod(rem, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day(day)[0]}{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}+08:00"


def local_yyyymmdd(ms: int) -> str:
    return _day((ms + LOCAL_OFFSET_MS) // DAY_MS)[1]


def local_day(ms: int) -> int:
    """Days since 1970-01-01 in local time: changes at local midnight."""
    return (ms + LOCAL_OFFSET_MS) // DAY_MS


def local_hour(ms: int) -> int:
    return (ms + LOCAL_OFFSET_MS) % DAY_MS // 3_600_000


def local_weekday(ms: int) -> int:
    """Monday = 0; 1970-01-01 was a Thursday."""
    return (local_day(ms) + 3) % 7


def local_slot(ms: int) -> int:
    """The local half hour of the day, 0..47: roster shifts start and end on the hour or the half hour."""
    return (ms + LOCAL_OFFSET_MS) % DAY_MS // HALF_HOUR_MS


def uuid4_text(bits: int) -> str:
    """128 random bits as a canonical version-4 UUID string (what ``uuid.UUID(int=bits, version=4)`` prints)."""
    n = (bits & _UUID_VERSION_CLEAR) | _UUID_VERSION_SET
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def to_ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone")
    return (at - _EPOCH_UTC) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
