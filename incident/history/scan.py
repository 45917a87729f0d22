"""Scan a repository's whole object database for Stripe credentials.

Three phases: stream every object once and scan it (blobs, commit and tag messages);
meanwhile, on the other core, walk the history for objects that should exist but do
not (shallow grafts, partial clones, size-limited copies); then place the few objects
that held something onto commits, paths and refs.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from incident.detect.content import KeyMatch, is_container, scan_bytes
from incident.detect.placeholders import placeholder_reason
from incident.detect.prefilter import select_prefilter
from incident.detect.rules import KEY_PATTERN, classify
from incident.errors import GitError
from incident.history import lfs
from incident.history.model import (
    CommitInfo,
    Finding,
    Location,
    ScanReport,
    ScanStats,
    Unscanned,
)
from incident.history.objects import StreamCounts, StreamProblems, iter_objects
from incident.history.placement import (
    Introduction,
    Placement,
    find_introductions,
    is_note_path,
    iso_utc,
    place,
)
from incident.history.repository import Repository, open_repository, run_git
from incident.history.walk import HistoryWalk
from incident.journal import utc_now

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
PROGRESS_EVERY = 2000


@dataclass
class ObjectHits:
    """What the object stream found, before placement."""

    blobs: dict[str, list[KeyMatch]] = field(default_factory=dict)
    commits: dict[str, list[KeyMatch]] = field(default_factory=dict)
    tags: dict[str, tuple[str, CommitInfo | None, list[KeyMatch]]] = field(
        default_factory=dict
    )
    lfs_missing: dict[str, str] = field(default_factory=dict)


def _message_body(data: bytes) -> bytes:
    """The message of a commit or tag object; its lines are what users count."""
    end = data.find(b"\n\n")
    return data[end + 2 :] if end >= 0 else b""


def _tag_header(data: bytes) -> tuple[str, CommitInfo | None]:
    """Tag name and tagger of an annotated tag object."""
    name = ""
    tagger: CommitInfo | None = None
    for line in data.split(b"\n\n", 1)[0].split(b"\n"):
        if line.startswith(b"tag "):
            name = line[4:].decode("utf-8", "replace")
        elif line.startswith(b"tagger "):
            tagger = _parse_person(line[7:])
    return name, tagger


def _parse_person(raw: bytes) -> CommitInfo | None:
    text = raw.decode("utf-8", "replace")
    name, _, rest = text.partition(" <")
    email, _, when = rest.partition("> ")
    stamp = when.split()[0] if when.split() else "0"
    if not stamp.isdigit():
        return None
    return CommitInfo("", name, email, iso_utc(stamp), iso_utc(stamp))


def _scan_objects(
    repo: Repository,
    problems: StreamProblems,
    stats: ScanStats,
    placeholders: bool,
    progress: ProgressCallback | None,
) -> ObjectHits:
    hits = ObjectHits()
    counts = StreamCounts()
    prefilter = select_prefilter()
    lfs_store = lfs.LfsStore(repo.common_dir)

    def scan(data: bytes) -> list[KeyMatch]:
        layers = prefilter(data)
        if not layers and not is_container(data):
            return []
        found = scan_bytes(data, placeholders=placeholders, layers=layers)
        return found if placeholders else [m for m in found if m.ignored is None]

    for oid_raw, kind, data in iter_objects(repo, problems, counts):
        stats.objects += 1
        if progress and stats.objects % PROGRESS_EVERY == 0:
            progress(stats.objects, max(counts.wanted, stats.objects))
        oid = oid_raw.decode()
        if kind == b"blob":
            stats.blobs += 1
            stats.bytes += len(data)
            if lfs.is_pointer(data):
                content = lfs_store.read(data)
                if content is None:
                    hits.lfs_missing[oid] = lfs.pointer_oid(data)
                elif matches := scan(content):
                    hits.blobs[oid] = [_prefixed(m, "lfs+") for m in matches]
            elif matches := scan(data):
                hits.blobs[oid] = matches
        elif kind == b"commit":
            if matches := scan(_message_body(data)):
                hits.commits[oid] = matches
        elif kind == b"tag" and (matches := scan(_message_body(data))):
            name, tagger = _tag_header(data)
            hits.tags[oid] = (name, tagger, matches)
    if progress:
        progress(stats.objects, stats.objects)
    return hits


def _prefixed(match: KeyMatch, prefix: str) -> KeyMatch:
    return KeyMatch(
        match.secret, match.line, prefix + match.encoding, match.member, match.ignored
    )


def _ref_name_hits(repo: Repository) -> list[tuple[str, str]]:
    """(secret, ref) for refs whose very name holds a key."""
    output = run_git(repo, "for-each-ref", "--format=%(refname)", check=False)
    return [
        (m.group().decode(), line.decode("utf-8", "backslashreplace"))
        for line in output.splitlines()
        for m in KEY_PATTERN.finditer(line)
    ]


class _FindingBuilder:
    """Group matches by secret value and attach locations, refs and dates."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement
        self.by_secret: dict[str, Finding] = {}
        self.dates: dict[str, list[tuple[bool, CommitInfo]]] = defaultdict(list)

    def add(
        self,
        match: KeyMatch,
        location: Location,
        refs: list[str],
        when: CommitInfo | None = None,
    ) -> None:
        finding = self.by_secret.get(match.secret)
        if finding is None:
            kind, mode = classify(match.secret)
            finding = Finding(
                secret=match.secret, kind=kind, mode=mode, ignored=match.ignored
            )
            self.by_secret[match.secret] = finding
        finding.locations.append(location)
        finding.refs.extend(ref for ref in refs if ref not in finding.refs)
        if location.source in {"file", "note"}:
            tips = self.placement.tips_by_blob.get(location.object_id, [])
            finding.present_at_tips.extend(
                tip for tip in tips if tip not in finding.present_at_tips
            )
        if when is not None:
            self.dates[match.secret].append((location.reachable, when))

    def commit(self, sha: str | None) -> CommitInfo | None:
        return self.placement.commits.get(sha) if sha else None

    def refs(self, sha: str | None) -> list[str]:
        return self.placement.refs_by_commit.get(sha, []) if sha else []

    def findings(self) -> list[Finding]:
        """Every finding, first_seen set to its earliest commit (reachable first)."""
        for secret, finding in self.by_secret.items():
            dates = self.dates.get(secret)
            if dates:
                _, finding.first_seen = min(
                    dates, key=lambda item: (not item[0], item[1].committer_date)
                )
        return list(self.by_secret.values())


def _build_findings(
    hits: ObjectHits, placement: Placement, ref_hits: list[tuple[str, str]]
) -> list[Finding]:
    builder = _FindingBuilder(placement)
    introductions: dict[str, list[Introduction]] = defaultdict(list)
    for intro in placement.introductions:
        introductions[intro.blob].append(intro)

    for blob, matches in hits.blobs.items():
        places = introductions.get(blob, [])
        staged = placement.index_paths.get(blob, [])
        for match in matches:
            for intro in places:
                refs = builder.refs(intro.commit)
                is_note = bool(refs) and all(r.startswith("refs/notes/") for r in refs)
                source = "note" if is_note and is_note_path(intro.path) else "file"
                location = Location(
                    source=source,
                    object_id=blob,
                    commit=intro.commit,
                    path=intro.path,
                    line=match.line,
                    encoding=match.encoding,
                    member=match.member,
                    reachable=intro.reachable and bool(refs),
                    annotated_commit=(
                        intro.path.replace("/", "") if source == "note" else None
                    ),
                )
                builder.add(match, location, refs, builder.commit(intro.commit))
            for path in staged:
                builder.add(
                    match,
                    Location(
                        "index",
                        blob,
                        None,
                        path,
                        match.line,
                        match.encoding,
                        match.member,
                    ),
                    [],
                )
            if not places and not staged:
                builder.add(
                    match,
                    Location(
                        "file",
                        blob,
                        None,
                        None,
                        match.line,
                        match.encoding,
                        match.member,
                        reachable=False,
                    ),
                    [],
                )

    for commit, matches in hits.commits.items():
        refs = builder.refs(commit)
        for match in matches:
            location = Location(
                "commit-message",
                commit,
                commit,
                None,
                match.line,
                match.encoding,
                match.member,
                reachable=bool(refs),
            )
            builder.add(match, location, refs, builder.commit(commit))

    for tag_oid, (name, tagger, matches) in hits.tags.items():
        refs = placement.refs_by_tag.get(tag_oid, [])
        when = (
            CommitInfo(
                tag_oid,
                tagger.author_name,
                tagger.author_email,
                tagger.author_date,
                tagger.committer_date,
            )
            if tagger
            else None
        )
        for match in matches:
            location = Location(
                "tag-message",
                tag_oid,
                None,
                None,
                match.line,
                match.encoding,
                match.member,
                reachable=bool(refs),
                tag=name,
            )
            builder.add(match, location, refs, when)

    for secret, ref in ref_hits:
        builder.add(
            KeyMatch(secret, 1, "plain", None, placeholder_reason(secret)),
            Location("ref-name", "", None, ref, 1, "plain"),
            [ref],
        )

    return builder.findings()


MAX_MISSING_PLACED = 500


def _where_missing(repo: Repository, missing: list[str]) -> dict[str, Introduction]:
    """The path and commit that first brought in each missing object, where known."""
    if not missing:
        return {}
    wanted = set(missing[:MAX_MISSING_PLACED])
    try:
        found = find_introductions(repo, wanted, ["--all", "--reflog"], reachable=True)
    except GitError:
        return {}  # the walk itself needs objects that are gone: ids are all we have
    places: dict[str, Introduction] = {}
    for intro in sorted(found, key=lambda i: i.commit):
        places.setdefault(intro.blob, intro)
    return places


def _unscanned(
    repo: Repository,
    problems: StreamProblems,
    walk: HistoryWalk,
    hits: ObjectHits,
) -> list[Unscanned]:
    items: list[Unscanned] = []
    if repo.shallow:
        items.append(
            Unscanned(
                "shallow",
                None,
                "This is a shallow clone: commits before the shallow boundary were "
                "never fetched and could not be scanned. Run `git fetch --unshallow` "
                "(or scan a full clone) and scan again.",
            )
        )
    for oid, reason in problems.unreadable:
        items.append(
            Unscanned(
                "corrupt-object",
                oid or None,
                f"git could not read object {oid} ({reason}). Restore it from another "
                "clone (git fetch) or check with `git fsck`; its content was not "
                "scanned.",
            )
        )
    unreadable = {oid for oid, _ in problems.unreadable}
    places = _where_missing(repo, walk.missing)
    for oid in walk.missing:
        if oid in unreadable:
            continue
        where = places.get(oid)
        at = f" ({where.path} in commit {where.commit[:12]})" if where else ""
        items.append(
            Unscanned(
                "missing-object",
                oid,
                f"object {oid}{at} is referenced by history but absent from the "
                "object store (a partial, size-limited or damaged clone); its "
                "content was not scanned. Fetch it from a complete remote "
                "(git fetch origin) and scan again.",
                path=where.path if where else None,
            )
        )
    for failure in [] if repo.shallow else walk.failures:
        items.append(
            Unscanned(
                "walk-failed",
                None,
                f"the history walk failed ({failure}); some objects may be "
                "missing. Check with `git fsck --connectivity-only`.",
            )
        )
    for path, submodule in sorted(walk.submodules.items()):
        pinned = sorted(submodule.commits)
        items.append(
            Unscanned(
                "submodule",
                pinned[-1] if len(pinned) == 1 else None,
                f"submodule {path} ({len(pinned)} pinned commit(s)): its history "
                "lives in another repository and was not scanned. Scan that "
                "repository too.",
                path=path,
            )
        )
    for pointer, lfs_oid in sorted(hits.lfs_missing.items()):
        items.append(
            Unscanned(
                "lfs-missing",
                pointer,
                f"Git LFS content sha256:{lfs_oid[:16]}… is not in the local LFS store "
                "and was not scanned. Run `git lfs fetch --all` and scan again.",
            )
        )
    return items


def scan_repository(
    repo_path: Path,
    *,
    include_publishable: bool = False,
    show_ignored: bool = False,
    progress: ProgressCallback | None = None,
) -> ScanReport:
    """Scan every object of the repository at repo_path for Stripe credentials.

    Args:
        repo_path: a clone, bare or mirror clone, or linked worktree.
        include_publishable: also report publishable (``pk_``) keys.
        show_ignored: also return placeholders and documentation examples.
        progress: called with (objects done, objects total) now and then.

    Raises:
        NotARepositoryError: repo_path holds no git repository.
        GitError: git failed in a way the scan cannot work around.
    """
    started = time.monotonic()
    repo = open_repository(repo_path)
    report = ScanReport(repository=str(repo.path), scanned_at=utc_now())

    walk = HistoryWalk(repo)
    walk.start()
    problems = StreamProblems()
    hits = _scan_objects(repo, problems, report.stats, show_ignored, progress)
    walk.join()

    placement = place(repo, set(hits.blobs), set(hits.commits), set(hits.tags))
    findings = _build_findings(hits, placement, _ref_name_hits(repo))

    from incident.history.allow import apply_allowlist

    apply_allowlist(repo, findings)
    for finding in sorted(findings, key=_sort_key):
        if finding.ignored:
            if show_ignored:
                report.ignored.append(finding)
        elif not finding.kind.is_secret:
            if include_publishable:
                report.publishable.append(finding)
        else:
            report.findings.append(finding)
    report.unscanned = _unscanned(repo, problems, walk, hits)
    report.stats.seconds = time.monotonic() - started
    logger.info(
        "scanned %d objects (%d bytes of blobs) in %.2fs",
        report.stats.objects,
        report.stats.bytes,
        report.stats.seconds,
    )
    return report


def _sort_key(finding: Finding) -> tuple[str, str]:
    first = finding.first_seen.committer_date if finding.first_seen else "9999"
    return first, finding.fingerprint
