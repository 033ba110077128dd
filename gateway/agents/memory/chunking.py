"""Split a Markdown file into overlapping chunks that remember their line range."""

from __future__ import annotations

from dataclasses import dataclass

CHARS_PER_TOKEN = 4  # the usual rough estimate; chunk sizes only need to be about right


@dataclass(frozen=True)
class Chunk:
    start_line: int  # 1-based, inclusive
    end_line: int
    text: str


def chunk_lines(text: str, *, tokens: int = 400, overlap: int = 80) -> list[Chunk]:
    """Chunks of about `tokens` tokens; each repeats about `overlap` tokens of the last.

    Chunks break on line boundaries so every hit maps to whole lines; a single line longer
    than a chunk is cut into pieces that all carry that line's number.
    """
    max_chars = max(64, tokens * CHARS_PER_TOKEN)
    overlap_chars = min(max(0, overlap * CHARS_PER_TOKEN), max_chars // 2)
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) <= max_chars:
            lines.append((number, line))
            continue
        for start in range(0, len(line), max_chars):
            lines.append((number, line[start : start + max_chars]))
    chunks: list[Chunk] = []
    i = 0
    while i < len(lines):
        size = 0
        j = i
        while j < len(lines) and (j == i or size + len(lines[j][1]) + 1 <= max_chars):
            size += len(lines[j][1]) + 1
            j += 1
        body = "\n".join(line for _, line in lines[i:j])
        if body.strip():
            chunks.append(Chunk(lines[i][0], lines[j - 1][0], body))
        if j >= len(lines):
            break
        # Step back over the overlap, but always move forward by at least one line.
        back = j
        kept = 0
        while back - 1 > i and kept + len(lines[back - 1][1]) + 1 <= overlap_chars:
            back -= 1
            kept += len(lines[back][1]) + 1
        i = back
    return chunks
