"""Read every object in the object database exactly once, in pack order.

One ``git cat-file --batch-all-objects --batch --unordered`` stream is the floor of
what any scanner must read. A corrupt object kills that stream, so on failure we note
the object that broke it and resume with the ids that remain, instead of stopping
and calling the rest of the history clean.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from incident.history.repository import Repository, git_env

logger = logging.getLogger(__name__)

READ_BUFFER = 1 << 20


@dataclass
class StreamProblems:
    """Objects the stream could not read, with git's own reason."""

    unreadable: list[tuple[str, str]] = field(default_factory=list)


def count_objects(repo: Repository) -> int:
    """Approximate number of objects (loose + packed), for the progress bar."""
    result = subprocess.run(
        ["git", "-C", str(repo.path), "count-objects", "-v"],
        capture_output=True,
        text=True,
        env=git_env(),
        check=False,
    )
    total = 0
    for line in result.stdout.splitlines():
        key, _, value = line.partition(":")
        if key in {"count", "in-pack"}:
            total += int(value.strip() or 0)
    return total


def _parse_stream(stream: IO[bytes]) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Yield (oid, type, content) from a ``cat-file --batch`` stream."""
    readline = stream.readline
    read = stream.read
    while True:
        header = readline()
        if not header:
            return
        parts = header.split()
        if len(parts) == 2 and parts[1] == b"missing":
            yield parts[0], b"missing", b""
            continue
        if len(parts) != 3:
            raise ValueError(f"unexpected cat-file header {header[:80]!r}")
        oid, kind, size = parts
        expected = int(size)
        content = read(expected)
        if len(content) < expected:
            # git died while streaming a large object: it was not read whole.
            raise ValueError(f"object {oid.decode()} truncated")
        read(1)  # the newline cat-file puts after every object
        yield oid, kind, content


def _all_object_ids(repo: Repository) -> list[bytes]:
    """Every object id in the store, in the same order as the batch stream."""
    result = subprocess.run(
        [
            "git",
            "-C",
            str(repo.path),
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
            "--unordered",
        ],
        capture_output=True,
        env=git_env(),
        check=False,
    )
    return result.stdout.split()


def _feed(stdin: IO[bytes], ids: list[bytes]) -> None:
    try:
        for start in range(0, len(ids), 4096):
            stdin.write(b"\n".join(ids[start : start + 4096]) + b"\n")
        stdin.close()
    except (BrokenPipeError, ValueError):
        pass


def iter_objects(
    repo: Repository,
    problems: StreamProblems,
) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Yield (oid, type, content) for every object in the database, reading each once.

    Objects that git cannot read are skipped and recorded in problems.
    """
    done = 0
    remaining: list[bytes] | None = None
    while True:
        if remaining is None:
            args = ["cat-file", "--batch-all-objects", "--batch", "--unordered"]
        else:
            args = ["cat-file", "--batch"]
        process = subprocess.Popen(
            ["git", "-C", str(repo.path), *args],
            stdin=subprocess.PIPE if remaining is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_env(),
            bufsize=READ_BUFFER,
        )
        assert process.stdout is not None and process.stderr is not None
        feeder = None
        if remaining is not None:
            assert process.stdin is not None
            feeder = threading.Thread(
                target=_feed, args=(process.stdin, remaining), daemon=True
            )
            feeder.start()
        produced = 0
        try:
            for item in _parse_stream(process.stdout):
                produced += 1
                if item[1] == b"missing":
                    problems.unreadable.append((item[0].decode(), "missing"))
                    continue
                yield item
        except ValueError as exc:
            logger.debug("object stream broke: %s", exc)
        finally:
            process.stdout.close()
            stderr = process.stderr.read().decode("utf-8", "replace")
            code = process.wait()
            if feeder is not None:
                feeder.join()
        done += produced
        if code == 0:
            return

        # The stream died on an object: find it, record it and go on past it.
        logger.warning(
            "git cat-file stopped after %d objects: %s",
            done,
            stderr.strip().splitlines()[-1:] or "no message",
        )
        ids = _all_object_ids(repo) if remaining is None else remaining
        offset = done if remaining is None else produced
        if offset >= len(ids):
            return
        broken = ids[offset]
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else "unreadable"
        problems.unreadable.append((broken.decode(), reason))
        remaining = ids[offset + 1 :]
        done += 1
        if not remaining:
            return
