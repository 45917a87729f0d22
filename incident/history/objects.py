"""Read every blob, commit and tag in the object database exactly once, in pack order.

One process lists every object with its type (``cat-file --batch-all-objects
--batch-check``, which reads only headers); a thread feeds the ids we want to a
second ``cat-file --batch`` whose output we parse. Trees are left out: they are most
of the bytes in a long history and hold no message or file content. Memory stays
flat whatever the history length: ids flow through pipes, never into a list.

A corrupt object kills git's stream (the lister's or the reader's). We then find the
object that broke it by its position in the listing, record it, and resume after it,
instead of stopping and calling the rest of the history clean. If the lister itself
cannot read an object's type, the rest is listed by name only and trees are dropped
here instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from incident.history.repository import Repository, git_env

logger = logging.getLogger(__name__)

READ_BUFFER = 1 << 20
F_SETPIPE_SZ = 1031  # Linux: a larger pipe means fewer wake-ups per megabyte
WANTED_TYPES = frozenset((b"blob", b"commit", b"tag"))
FEED_TYPES = WANTED_TYPES | {b"missing"}
UNREADABLE = "in the object store but git cannot read it (corrupt)"
FEED_BATCH = 512


@dataclass
class StreamProblems:
    """Objects the stream could not read, with git's own reason."""

    unreadable: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class StreamCounts:
    """Progress of the lister: entries seen (all types) and ids handed to the reader."""

    listed: int = 0
    wanted: int = 0
    failed: str | None = None


def _grow_pipe(stream: IO[bytes]) -> None:
    # Not Linux, or over the system limit: the default pipe size works too.
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, READ_BUFFER)


def _lister(repo: Repository, typed: bool) -> subprocess.Popen[bytes]:
    fmt = "%(objectname) %(objecttype)" if typed else "%(objectname)"
    return subprocess.Popen(
        [
            "git",
            "-C",
            str(repo.path),
            "cat-file",
            "--batch-all-objects",
            f"--batch-check={fmt}",
            "--unordered",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=git_env(),
        bufsize=READ_BUFFER,
    )


def _entries(lister: subprocess.Popen[bytes]) -> Iterator[tuple[bytes, bytes | None]]:
    assert lister.stdout is not None
    for line in lister.stdout:
        oid, _, kind = line.rstrip(b"\n").partition(b" ")
        yield oid, kind or None


def _finish_lister(lister: subprocess.Popen[bytes]) -> str | None:
    """Wait for a lister; return git's reason if it failed."""
    assert lister.stdout is not None and lister.stderr is not None
    lister.stdout.close()
    stderr = lister.stderr.read().decode("utf-8", "replace").strip()
    if lister.wait() != 0:
        return stderr.splitlines()[-1] if stderr else "git cat-file failed"
    return None


def _feed(
    repo: Repository, start: int, typed: bool, sink: IO[bytes], counts: StreamCounts
) -> None:
    """Write the wanted ids from listing position start onwards into sink."""
    lister = _lister(repo, typed)
    pending: list[bytes] = []
    try:
        for index, (oid, kind) in enumerate(_entries(lister)):
            counts.listed = index + 1
            # "missing" here means listed from the store yet unreadable: feed it,
            # so the reader reports it rather than the scan passing over it.
            if index < start or (kind is not None and kind not in FEED_TYPES):
                continue
            counts.wanted += 1
            pending.append(oid)
            if len(pending) >= FEED_BATCH:
                sink.write(b"\n".join(pending) + b"\n")
                pending.clear()
        if pending:
            sink.write(b"\n".join(pending) + b"\n")
    except (BrokenPipeError, ValueError):
        pass  # the reader died; iter_objects finds out why
    finally:
        counts.failed = _finish_lister(lister)
        with contextlib.suppress(BrokenPipeError):
            sink.close()


def _position_of_fed(
    repo: Repository, start: int, typed: bool, fed: int
) -> tuple[int, bytes] | None:
    """(listing position, id) of the fed-th id (0-based) a feed from start wrote."""
    lister = _lister(repo, typed)
    found = None
    seen = 0
    for index, (oid, kind) in enumerate(_entries(lister)):
        if index < start or (kind is not None and kind not in FEED_TYPES):
            continue
        if seen == fed:
            found = (index, oid)
            break
        seen += 1
    _finish_lister(lister)
    return found


def _entry_at(repo: Repository, position: int) -> bytes | None:
    """The id at a listing position, listed by name only (which reads no object)."""
    lister = _lister(repo, typed=False)
    found = None
    for index, (oid, _) in enumerate(_entries(lister)):
        if index == position:
            found = oid
            break
    _finish_lister(lister)
    return found


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


def _read_pass(
    repo: Repository,
    start: int,
    typed: bool,
    counts: StreamCounts,
    problems: StreamProblems,
    outcome: dict[str, object],
) -> Iterator[tuple[bytes, bytes, bytes]]:
    """One reader process fed from listing position start; sets outcome at the end."""
    reader = subprocess.Popen(
        ["git", "-C", str(repo.path), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=git_env(),
        bufsize=READ_BUFFER,
    )
    assert reader.stdin and reader.stdout and reader.stderr
    _grow_pipe(reader.stdout)
    feeder = threading.Thread(
        target=_feed, args=(repo, start, typed, reader.stdin, counts), daemon=True
    )
    feeder.start()
    produced = 0
    try:
        for oid, kind, content in _parse_stream(reader.stdout):
            produced += 1
            if kind == b"missing":
                # Every id we feed was listed from the store, so "missing" here
                # means present but unreadable.
                problems.unreadable.append((oid.decode(), UNREADABLE))
            elif kind in WANTED_TYPES:
                yield oid, kind, content
    except ValueError as exc:
        logger.debug("object stream broke: %s", exc)
    finally:
        reader.stdout.close()
        stderr = reader.stderr.read().decode("utf-8", "replace").strip()
        outcome["code"] = reader.wait()
        feeder.join()
    outcome["produced"] = produced
    outcome["reason"] = stderr.splitlines()[-1] if stderr else "unreadable"


def iter_objects(
    repo: Repository, problems: StreamProblems, counts: StreamCounts | None = None
) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Yield (oid, type, content) for every blob, commit and tag, each read once.

    Objects that git cannot read are skipped and recorded in problems; counts (if
    given) tracks the lister's progress, for a progress bar.
    """
    counts = counts or StreamCounts()
    start, typed = 0, True
    while True:
        counts.listed = counts.wanted = 0
        counts.failed = None
        outcome: dict[str, object] = {}
        yield from _read_pass(repo, start, typed, counts, problems, outcome)

        if outcome["code"] != 0:
            # The reader died on the object after the last one it produced.
            broken = _position_of_fed(repo, start, typed, int(outcome["produced"]))
            if broken is None:
                return
            position, oid = broken
            reason = str(outcome["reason"])
        elif counts.failed is not None:
            # The typed lister could not read an object's header: the entry after
            # the last one it listed. Go on listing by name only.
            position = counts.listed
            oid = _entry_at(repo, position) or b""
            if not oid:
                problems.unreadable.append(("", counts.failed))
                return
            reason, typed = counts.failed, False
        else:
            return
        logger.warning("git cannot read object %s: %s", oid.decode(), reason)
        problems.unreadable.append((oid.decode(), reason))
        start = position + 1


def count_objects(repo: Repository) -> int:
    """Number of objects (loose + packed, trees included)."""
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
