"""The dead-letter protocol on its own: a letter's headers, a redrive's headers and the redrive plan."""

from __future__ import annotations

from newsroom.common import deadletters as dlq
from newsroom.common.deadletters import DeadLetter


def letter(
    offset: int,
    topic: str | None = "newsroom.articles",
    key: bytes | None = b"a",
    *,
    also: dict[str, str] | None = None,
    **extra: str,
) -> DeadLetter:
    """A letter as a consumer parks it (``also``: more headers, by their names)."""
    headers = dlq.letter_headers(
        reason="bad", service="test", topic=topic or "", partition=0, offset=offset * 10,
        failed_at="2026-12-07T00:00:00+00:00", attempts=extra.pop("attempts", None),
        redriven_from=extra.pop("redriven_from", None),
    )  # fmt: skip
    if topic is None:
        del headers[dlq.TOPIC]
    headers.update(also or {})
    return DeadLetter(offset, 0, key, b"{}", tuple((k, v.encode()) for k, v in headers.items()))


def test_a_letter_says_where_its_record_was_and_why() -> None:
    """The headers a consumer writes read back as the letter's reason, origin and attempts."""
    d = letter(3, attempts="2")
    assert (d.reason, d.origin, d.attempts, d.key_text) == ("bad", "newsroom.articles[0]@30", 2, "a")


def test_a_value_too_large_is_parked_cut_and_says_so() -> None:
    """A value over the limit is cut to it, and the letter names where the whole one is."""
    headers: dict[str, str] = {}
    assert dlq.parked_value(b"x" * 10, 4, headers) == b"xxxx"
    assert headers[dlq.TRUNCATED].startswith("10 bytes")
    assert dlq.parked_value(b"x" * 4, 4, {}) == b"xxxx"


def test_a_redriven_record_carries_its_own_headers_one_attempt_more() -> None:
    """A redrive drops the letter's dlq- headers, keeps the record's own, and counts the attempt."""
    d = DeadLetter(7, 0, b"k", b"{}", ((dlq.ATTEMPTS, b"1"), (dlq.TOPIC, b"t"), ("event-type", b"X")))
    assert d.redriven_headers() == [("event-type", b"X"), (dlq.ATTEMPTS, b"2"), (dlq.REDRIVEN_FROM, b"7")]


def test_the_plan_holds_back_what_the_loop_guard_says() -> None:
    """Exhausted, unroutable, cut-short and superseded letters are held; the rest go back."""
    letters = [
        letter(0),  # goes back
        letter(1, attempts="3"),  # at the limit
        letter(2, topic=None),  # no topic to go to
        letter(3, topic="gone.topic"),  # a topic the broker lacks
        letter(4, also={dlq.TRUNCATED: "2000000 bytes"}),
        letter(5),  # redriven, failed again: letter 6 stands for it
        letter(6, attempts="1", redriven_from="5"),
    ]
    plan = dlq.plan(letters, {"newsroom.articles"}, max_attempts=3)
    assert [d.offset for d in plan.redrive] == [0, 6]
    assert [d.offset for d in plan.exhausted] == [1]
    assert [d.offset for d in plan.unroutable] == [2, 3]
    assert [d.offset for d in plan.truncated] == [4]
    assert [d.offset for d in plan.superseded] == [5]
    assert plan.next_offset == 7
    assert plan.held == 5


def test_a_selective_plan_does_not_move_the_resume_point() -> None:
    """Selecting by offset, key or topic plans those letters only and records no resume offset."""
    letters = [letter(0, key=b"a"), letter(1, key=b"b")]
    by_key = dlq.plan(letters, {"newsroom.articles"}, max_attempts=3, key="b")
    assert [d.offset for d in by_key.redrive] == [1]
    assert by_key.next_offset is None
    by_offset = dlq.plan(letters, {"newsroom.articles"}, max_attempts=3, offsets=[0, 9])
    assert [d.offset for d in by_offset.redrive] == [0]
    assert by_offset.absent == {9}
