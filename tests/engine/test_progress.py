"""Parsing ffmpeg's -progress blocks and reporting monotonic percentages."""

from __future__ import annotations

from tapestry_media.local.engine.progress import ProgressParser, ProgressReporter


def block(out_time_us: str, progress: str = "continue") -> list[str]:
    """One report as ffmpeg writes it (out_time_ms is in microseconds too)."""
    if out_time_us == "N/A":
        clock = "N/A"
    else:
        seconds = int(out_time_us) / 1_000_000
        clock = f"00:00:{seconds:09.6f}"
    return [
        "frame=10",
        f"out_time_us={out_time_us}",
        f"out_time_ms={out_time_us}",
        f"out_time={clock}",
        "speed=1x",
        f"progress={progress}",
    ]


def feed(parser: ProgressParser, lines: list[str]) -> list[float]:
    return [percent for line in lines if (percent := parser.feed(line + "\n")) is not None]


def test_percentages_are_reported_once_per_block_against_the_duration() -> None:
    parser = ProgressParser(duration=4.0)
    # N/A before the first frame is written gives nothing.
    assert feed(parser, block("N/A")) == []
    lines = block("1000000") + block("3000000") + block("4000000", "end")
    assert feed(parser, lines) == [25.0, 75.0, 100.0]


def test_full_duration_is_capped_below_100_until_ffmpeg_says_end() -> None:
    assert feed(ProgressParser(4.0), block("4000000")) == [99.0]


def test_microseconds_only_in_out_time_ms_as_older_builds_write() -> None:
    assert feed(ProgressParser(2.0), ["out_time_ms=500000", "progress=continue"]) == [25.0]


def test_out_time_alone_is_understood() -> None:
    parser = ProgressParser(duration=2.0)
    assert feed(parser, ["out_time=00:00:01.500000", "progress=continue"]) == [75.0]


def test_unknown_duration_only_reports_the_end() -> None:
    parser = ProgressParser(duration=None)
    assert feed(parser, block("1000000") + block("2000000", "end")) == [100.0]


def test_reporter_is_monotonic_and_finishes_at_100_once() -> None:
    seen: list[float] = []
    reporter = ProgressReporter(seen.append)
    for percent in (0.0, 10.0, 5.0, 10.0, 60.0, 100.0):
        reporter.report(percent)
    reporter.finish()
    assert seen == [0.0, 10.0, 60.0, 100.0]
