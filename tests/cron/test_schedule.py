"""Schedule arithmetic (§C.3): durations, `at`, `every` anchors, cron with zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.config.models import ActiveHours
from gateway.cron import schedule as s
from gateway.cron.heartbeat import effectively_empty, in_active_hours, strip_ack

T0 = 1_795_770_000_000  # 2026-11-27 09:00 UTC (Friday)


def ms(*args: int, tz: str = "UTC") -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 1000)  # type: ignore[misc,arg-type]


def test_durations() -> None:
    assert s.parse_duration_ms("20m") == 1_200_000
    assert s.parse_duration_ms("1h30m") == 5_400_000
    assert s.parse_duration_ms("45s") == 45_000
    assert s.parse_duration_ms("5") == 300_000  # bare number = minutes
    with pytest.raises(s.ScheduleError, match="invalid duration 'soon'"):
        s.parse_duration_ms("soon")


def test_at_values() -> None:
    assert s.parse_at_ms("2026-11-27T09:00:00Z") == T0
    assert s.parse_at_ms("2026-11-27T09:00:00") == T0  # no offset = UTC
    assert s.parse_at_ms("2026-11-27T10:00:00+01:00") == T0
    assert s.parse_at_ms(str(T0)) == T0  # epoch ms
    with pytest.raises(s.ScheduleError, match="invalid at time 'tomorrow'"):
        s.parse_at_ms("tomorrow")
    at = s.At("2026-11-27T09:05:00Z")
    assert (
        s.next_run_ms(at, job_id="j", after_ms=T0, created_ms=T0, last_run_ms=None) == T0 + 300_000
    )
    # Once it has run it never runs again.
    assert (
        s.next_run_ms(at, job_id="j", after_ms=T0, created_ms=T0, last_run_ms=T0 + 300_000) is None
    )


def test_every_keeps_its_anchor() -> None:
    every = s.Every(600_000)
    nxt = s.next_run_ms(every, job_id="j", after_ms=T0 + 1, created_ms=T0, last_run_ms=None)
    assert nxt == T0 + 600_000
    # After a long gap the next slot is on the same grid, not "now + interval".
    late = T0 + 10 * 600_000 + 123_456
    assert (
        s.next_run_ms(every, job_id="j", after_ms=late, created_ms=T0, last_run_ms=None)
        == T0 + 11 * 600_000
    )


def test_cron_is_wall_time_in_its_zone() -> None:
    expr = s.Cron("0 9 * * 1-5", "Europe/Berlin")
    # 09:00 UTC Friday = 10:00 Berlin: the next 09:00 Berlin is Monday 08:00 UTC.
    nxt = s.next_run_ms(expr, job_id="j", after_ms=T0, created_ms=T0, last_run_ms=None)
    assert nxt == ms(2026, 11, 30, 9, 0, tz="Europe/Berlin")


def test_cron_across_dst_fires_once_per_day() -> None:
    expr = s.Cron("30 2 * * *", "America/New_York")
    start = ms(2026, 3, 7, 3, 0, tz="America/New_York")
    slots = []
    after = start
    for _ in range(3):
        nxt = s.next_run_ms(expr, job_id="j", after_ms=after, created_ms=start, last_run_ms=None)
        assert nxt is not None
        slots.append(datetime.fromtimestamp(nxt / 1000, tz=ZoneInfo("America/New_York")))
        after = nxt
    assert [d.day for d in slots] == [8, 9, 10]  # the skipped 02:30 of Mar 8 still fires once
    assert (slots[1].hour, slots[1].minute) == (2, 30)


def test_six_fields_are_seconds_first() -> None:
    nxt = s.cron_next_ms("*/15 * * * * *", "UTC", T0)
    assert nxt == T0 + 15_000


def test_stagger_is_stable_per_job() -> None:
    assert s.is_top_of_hour("0 * * * *") and not s.is_top_of_hour("5 * * * *")
    a = s.stagger_offset_ms("job-a", 300_000)
    assert a == s.stagger_offset_ms("job-a", 300_000) and 0 <= a < 300_000
    nxt = s.next_run_ms(s.Cron("0 * * * *", "UTC", 300_000), job_id="job-a", after_ms=T0,
                        created_ms=T0, last_run_ms=None)  # fmt: skip
    assert nxt == T0 + 3_600_000 + a or nxt == T0 + a


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (s.Cron("61 * * * *"), "invalid cron expression '61 * * * *'"),
        (s.Cron("0 9 * *"), "expected 5 fields"),
        (s.Cron("0 9 * * *", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (s.Cron("0 0 30 2 *", "UTC"), "would never fire"),
        (s.At("next tuesday"), "invalid at time"),
    ],
)
def test_invalid_schedules_name_the_problem(schedule: s.Schedule, message: str) -> None:
    with pytest.raises(s.ScheduleError, match=message.replace("*", r"\*")):
        s.validate(schedule, T0)


def test_heartbeat_ack_rules() -> None:
    assert strip_ack("HEARTBEAT_OK") == (None, "heartbeat")
    assert strip_ack("no_reply") == (None, "silent")
    assert strip_ack("HEARTBEAT_OK all quiet.") == (None, "heartbeat")
    long = "The disk is almost full. " * 20
    assert strip_ack("HEARTBEAT_OK " + long)[0] == long.strip(" \n\t-:.,!")
    middle = "status HEARTBEAT_OK is in the middle"
    assert strip_ack(middle) == (middle, None)
    assert strip_ack("Your server is down!") == ("Your server is down!", None)


def test_heartbeat_file_emptiness_and_active_hours() -> None:
    assert effectively_empty("# Heartbeat\n\n<!-- nothing yet -->\n- [ ]\n")
    assert not effectively_empty("# Heartbeat\n- check the backups\n")
    hours = ActiveHours(start="08:00", end="22:00", timezone="Europe/Berlin")
    assert in_active_hours(hours, T0, None)  # 10:00 Berlin
    assert not in_active_hours(hours, ms(2026, 11, 27, 23, 0, tz="Europe/Berlin"), None)
    night = ActiveHours(start="22:00", end="06:00", timezone="UTC")
    assert in_active_hours(night, ms(2026, 11, 27, 23, 30), None)
    assert not in_active_hours(ActiveHours(start="09:00", end="09:00"), T0, "UTC")
    assert datetime.fromtimestamp(T0 / 1000, tz=UTC).hour == 9
