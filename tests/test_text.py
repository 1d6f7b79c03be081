"""The one text splitter every channel, the staff room and the digest use."""

from __future__ import annotations

import pytest

from bot.text import split_text


def test_paragraphs_stay_whole_and_nothing_is_lost() -> None:
    paragraphs = [("baris " * 30).strip() for _ in range(60)]
    text = "\n\n".join(paragraphs)
    chunks = split_text(text, 4096)
    assert len(chunks) > 1 and all(len(c) <= 4096 for c in chunks)
    assert "\n\n".join(chunks) == text  # cut only at paragraph breaks


def test_lines_then_hard_cuts() -> None:
    parts = split_text("baris\n" * 1500, 4096)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "".join(parts).count("baris") == 1500
    assert [len(c) for c in split_text("x" * 9000, 4096)] == [4096, 4096, 808]


def test_no_part_is_empty() -> None:
    assert split_text("", 10) == ["-"]
    assert split_text("\n\n\n", 10) == ["-"]
    assert all(split_text("a\n\n\n\n" + "b" * 25, 10))
    assert split_text("abcdefghij\nk", 10) == ["abcdefghij", "k"]  # a break right at the limit


def test_a_nonsense_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        split_text("abc", 0)
