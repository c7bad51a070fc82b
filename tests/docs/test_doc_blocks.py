"""The extractor behind the docs test finds blocks, reads markers and refuses bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.doc_blocks import DocMarkerError, extract_blocks

DOC = Path("guide.md")


def blocks_of(text: str) -> list:
    return extract_blocks(DOC, text)


def test_finds_shell_blocks_in_order_with_their_lines() -> None:
    text = (
        "# Guide\n"
        "```bash\n"
        "kelpseg synth --out data\n"
        "```\n"
        "```python\n"
        "print('not shell')\n"
        "```\n"
        "```sh\n"
        "kelpseg validate data\n"
        "kelpseg catalog data\n"
        "```\n"
        "```\n"
        "a plain block\n"
        "```\n"
    )
    blocks = blocks_of(text)
    assert [(b.language, b.line) for b in blocks] == [("bash", 3), ("sh", 9)]
    assert blocks[0].text == "kelpseg synth --out data\n"
    assert blocks[1].text == "kelpseg validate data\nkelpseg catalog data\n"
    assert all(b.skip_category is None and not b.setup for b in blocks)


def test_reads_skip_reason_and_setup_commands() -> None:
    text = (
        "<!-- docs-test: skip gpu: needs four CUDA GPUs -->\n"
        "```bash\n"
        "kelpseg train --devices 4\n"
        "```\n"
        "<!-- docs-test: setup: kelpseg synth --out data --n-aoi 3 -->\n"
        "<!-- docs-test: setup: kelpseg catalog data -->\n"
        "\n"
        "```bash\n"
        "kelpseg stats data/catalog.parquet\n"
        "```\n"
    )
    skipped, run = blocks_of(text)
    assert (skipped.skip_category, skipped.skip_reason) == ("gpu", "needs four CUDA GPUs")
    assert run.skip_category is None
    assert [(s.line, s.command) for s in run.setup] == [
        (5, "kelpseg synth --out data --n-aoi 3"),
        (6, "kelpseg catalog data"),
    ]


def test_console_blocks_keep_commands_and_drop_output() -> None:
    text = "```console\n$ kelpseg validate data \\\n  --workers 1\nok: 3 files\n$ echo done\n```\n"
    (block,) = blocks_of(text)
    assert block.text.split("\n")[:4] == [
        "kelpseg validate data \\",
        "  --workers 1",
        "",
        "echo done",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- docs-test: skipp gpu: typo -->\n```bash\nx\n```\n", "unreadable docs-test marker"),
        ("<!-- docs-test: skip slow: too slow -->\n```bash\nx\n```\n", "unknown skip category"),
        ("<!-- docs-test: skip gpu: -->\n```bash\nx\n```\n", "unreadable docs-test marker"),
        ("<!-- docs-test: setup: ls -->\nsome prose\n```bash\nx\n```\n", "no shell block follows"),
        ("<!-- docs-test: setup: ls -->\n", "no shell block follows"),
        ("<!-- docs-test: skip gpu: a -->\n```python\nx\n```\n", "not a shell block"),
        (
            "<!-- docs-test: skip gpu: a -->\n<!-- docs-test: skip long: b -->\n```bash\nx\n```\n",
            "a second skip marker",
        ),
        ("text <!-- docs-test: skip gpu: inline --> more\n", "whole-line HTML comment"),
    ],
    ids=[
        "typo",
        "category",
        "no-reason",
        "prose-between",
        "at-end",
        "python",
        "two-skips",
        "inline",
    ],
)
def test_refuses_bad_markers(text: str, message: str) -> None:
    with pytest.raises(DocMarkerError, match=message):
        blocks_of(text)
