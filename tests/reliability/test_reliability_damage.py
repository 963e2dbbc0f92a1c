"""Suite 3: archive damage. Every kind is detected by ``verify`` and by ``import`` before
anything is written to the target, each with its own message; tar and directory forms."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edms_pgdump import (
    ArchiveError,
    EdmsPgdumpError,
    import_archive,
    load_mapping,
    verify_archive,
)
from edms_pgdump.archive.integrity import check_integrity
from edms_pgdump.archive.package import MANIFEST_CHECKSUM, ArchiveReader, manifest_checksum
from edms_pgdump.demo import sample
from edms_pgdump.export.write import write_archive
from edms_pgdump.load import transaction as load
from tests.support.db import db_digest, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
VICTIM = "data/0002.copy.zst"  # public.documents
VICTIM_NONE = "data/0002.copy"


@dataclass
class Layout:
    """An archive as plain data: regular files in order, plus special entries."""

    files: dict[str, bytes]
    links: list[tuple[str, str, bool]] = field(default_factory=list)  # name, target, hard
    extra_abs: list[tuple[str, bytes]] = field(default_factory=list)  # raw tar names
    fifos: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> dict:
        return json.loads(self.files["manifest.json"])

    def set_manifest(self, data: dict) -> None:
        self.files["manifest.json"] = (json.dumps(data, indent=2) + "\n").encode()


def read_layout(path: Path) -> Layout:
    if path.is_dir():
        files = {"manifest.json": (path / "manifest.json").read_bytes()}
        for p in sorted((path / "data").iterdir()):
            files[f"data/{p.name}"] = p.read_bytes()
        return Layout(files)
    files = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            fh = tar.extractfile(m)
            assert fh is not None
            files[m.name] = fh.read()
    return Layout(files)


def write_layout(layout: Layout, path: Path, directory: bool) -> None:
    if directory:
        path.mkdir()
        if not any(name == "data" for name, _, _ in layout.links):
            (path / "data").mkdir()
        for name, data in layout.files.items():
            (path / name).write_bytes(data)
        for name, target, _hard in layout.links:
            (path / name).unlink(missing_ok=True)
            os.symlink(target, path / name)
        for name in layout.fifos:
            (path / name).unlink()
            os.mkfifo(path / name)
        return
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [*layout.files.items(), *layout.extra_abs]:
            if any(name == ln for ln, _, _ in layout.links):
                continue
            info = tarfile.TarInfo(name)
            if name in layout.fifos:
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target, hard in layout.links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


def _victim(lay: Layout) -> str:
    return VICTIM if VICTIM in lay.files else VICTIM_NONE


def _edit_manifest(fn: Callable[[dict], None], *, reseal: bool = True) -> Callable[[Layout, Path], None]:
    """Edit the manifest. ``reseal``: recompute its checksum, as a buggy or malicious
    exporter would, so that the check under test is the semantic one."""

    def go(lay: Layout, _outside: Path) -> None:
        m = lay.manifest
        fn(m)
        if reseal and MANIFEST_CHECKSUM in m:
            m[MANIFEST_CHECKSUM] = manifest_checksum(m)
        lay.set_manifest(m)

    return go


def _mapping_edited(m: dict) -> None:
    # valid JSON, same length, different meaning: import would use another natural key
    m["mapping_text"] = m["mapping_text"].replace("[username]", "[full_name]")


def d_missing(lay: Layout, _o: Path) -> None:
    del lay.files[_victim(lay)]


def d_extra(lay: Layout, _o: Path) -> None:
    lay.files["data/9999.copy.zst"] = lay.files[_victim(lay)]


def d_truncated(lay: Layout, _o: Path) -> None:
    v = _victim(lay)
    lay.files[v] = lay.files[v][: len(lay.files[v]) // 2]


def d_appended(lay: Layout, _o: Path) -> None:
    v = _victim(lay)
    lay.files[v] = lay.files[v] + b"\x00extra"


def d_overwrite(lay: Layout, _o: Path) -> None:
    v = _victim(lay)
    data = bytearray(lay.files[v])
    mid = len(data) // 2
    data[mid : mid + 4] = bytes(b ^ 0x5A for b in data[mid : mid + 4])
    lay.files[v] = bytes(data)


def d_manifest_corrupt(lay: Layout, _o: Path) -> None:
    raw = bytearray(lay.files["manifest.json"])
    raw[0:1] = b"["  # same length, no longer valid JSON
    lay.files["manifest.json"] = bytes(raw)


def d_manifest_truncated(lay: Layout, _o: Path) -> None:
    raw = lay.files["manifest.json"]
    lay.files["manifest.json"] = raw[: len(raw) * 2 // 3]


def d_manifest_missing(lay: Layout, _o: Path) -> None:
    del lay.files["manifest.json"]


def _rows_plus_one(m: dict) -> None:
    m["tables"][1]["rows"] += 1


def _future_version(m: dict) -> None:
    m["format_version"] = 3


def _table_twice(m: dict) -> None:
    # the users entry re-labelled as documents: an importer keyed by table name would
    # silently load one member and ignore the other
    m["tables"][0]["table"] = m["tables"][1]["table"]


def _member_dotdot(m: dict) -> None:
    m["tables"][1]["member"] = "data/../../../etc/passwd"


def _member_abs(m: dict) -> None:
    m["tables"][1]["member"] = "/etc/passwd"


def d_symlink(lay: Layout, outside: Path) -> None:
    v = _victim(lay)
    target = outside / "real-member"
    target.write_bytes(lay.files[v])  # the link even points at the right bytes
    lay.links.append((v, str(target), False))


def d_symlink_dir(lay: Layout, outside: Path) -> None:
    real = outside / "data"
    real.mkdir()
    for name, data in list(lay.files.items()):
        if name.startswith("data/"):
            (real / name[5:]).write_bytes(data)
            del lay.files[name]
    lay.links.append(("data", str(real), False))


def d_fifo(lay: Layout, _o: Path) -> None:
    lay.fifos.append(_victim(lay))


def d_fifo_manifest(lay: Layout, _o: Path) -> None:
    lay.fifos.append("manifest.json")  # opening it would block the reader forever


def d_hardlink(lay: Layout, _o: Path) -> None:
    lay.links.append((_victim(lay), "data/0001.copy.zst", True))


def d_entry_dotdot(lay: Layout, _o: Path) -> None:
    lay.extra_abs.append(("data/../../evil.copy", b"x\n"))


def d_entry_abs(lay: Layout, _o: Path) -> None:
    lay.extra_abs.append(("/tmp/evil.copy", b"x\n"))


def d_duplicate_manifest(lay: Layout, _o: Path) -> None:
    m = lay.manifest
    m["tables"] = []
    lay.extra_abs.append(("manifest.json", (json.dumps(m) + "\n").encode()))


# kind -> (damage, forms, message pattern)
DAMAGES: dict[str, tuple[Callable[[Layout, Path], None], tuple[str, ...], str]] = {
    "missing member": (d_missing, ("file", "dir"), r"member 'data/0002\.copy(\.zst)?' is missing"),
    "extra member": (d_extra, ("file", "dir"), r"'data/9999\.copy\.zst' is not listed in the manifest"),
    "truncated member": (d_truncated, ("file", "dir"), r"member 'data/0002\.copy(\.zst)?' truncated"),
    "appended bytes": (d_appended, ("file", "dir"), r"has appended bytes"),
    "same-length overwrite": (d_overwrite, ("file", "dir"), r"SHA-256 mismatch \(content overwritten"),
    "row count edited": (_edit_manifest(_rows_plus_one), ("file", "dir"), r"holds \d+ rows, manifest says"),
    "corrupt manifest": (d_manifest_corrupt, ("file", "dir"), r"manifest\.json is corrupt"),
    "truncated manifest": (d_manifest_truncated, ("file", "dir"), r"manifest\.json is truncated"),
    "missing manifest": (d_manifest_missing, ("file", "dir"), r"manifest\.json is missing"),
    "table listed twice": (
        _edit_manifest(_table_twice),
        ("file", "dir"),
        r"table public\.documents is listed twice in the manifest",
    ),
    "manifest edited, still valid JSON": (
        _edit_manifest(_mapping_edited, reseal=False),
        ("file", "dir"),
        r"manifest\.json checksum mismatch",
    ),
    "unknown format version": (
        _edit_manifest(_future_version),
        ("file", "dir"),
        r"archive format version 3 is not supported by this edms-pgdump \(reads versions 1 and 2\); upgrade edms-pgdump",
    ),
    "manifest member with '..'": (
        _edit_manifest(_member_dotdot),
        ("file", "dir"),
        r"'data/\.\./\.\./\.\./etc/passwd' contains '\.\.'",
    ),
    "manifest member absolute": (
        _edit_manifest(_member_abs),
        ("file", "dir"),
        r"'/etc/passwd' has an absolute",
    ),
    "tar entry with '..'": (d_entry_dotdot, ("file",), r"'data/\.\./\.\./evil\.copy' contains '\.\.'"),
    "tar entry absolute": (d_entry_abs, ("file",), r"'/tmp/evil\.copy' has an absolute path"),
    "symlink member": (d_symlink, ("file", "dir"), r"'data/0002\.copy(\.zst)?' is a link \(symbolic"),
    "symlinked data folder": (d_symlink_dir, ("dir",), r"member 'data' is a link \(symbolic"),
    "hard link member": (d_hardlink, ("file",), r"'data/0002\.copy\.zst' is a link \(hard link"),
    "fifo member": (d_fifo, ("file", "dir"), r"'data/0002\.copy(\.zst)?' is not a regular file"),
    "fifo manifest": (d_fifo_manifest, ("file", "dir"), r"'manifest\.json' is not a regular file"),
    "duplicate manifest entry": (d_duplicate_manifest, ("file",), r"'manifest\.json' appears twice"),
}

CASES = [(kind, form) for kind, (_, forms, _) in DAMAGES.items() for form in forms]


@pytest.fixture(scope="module")
def originals(pg_server, admin, sample_template, tmp_path_factory) -> Iterator[dict[str, Path]]:
    """A healthy archive of the sample data in both forms (file: zstd, dir: uncompressed)."""
    name = f"edms_damage_src_{os.getpid()}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{sample_template}"')
    try:
        with psycopg.connect(pg_server.dsn(name), autocommit=True) as c:
            sample.populate(c, sample.SampleSize.from_documents(300))
        base = tmp_path_factory.mktemp("damage")
        m = load_mapping(ROOT / "config" / "edms.yaml")
        write_archive(pg_server.dsn(name), m, base / "good.edms")
        write_archive(pg_server.dsn(name), m, base / "good.dir", directory=True, compression="none")
        yield {"file": base / "good.edms", "dir": base / "good.dir"}
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _damaged(originals: dict[str, Path], tmp_path: Path, kind: str, form: str) -> Path:
    damage = DAMAGES[kind][0]
    lay = read_layout(originals[form])
    outside = tmp_path / "outside"
    outside.mkdir()
    damage(lay, outside)
    out = tmp_path / ("damaged.dir" if form == "dir" else "damaged.edms")
    write_layout(lay, out, directory=(form == "dir"))
    return out


def _verify_message(path: Path) -> str:
    """What verify says: its damage list, or the error it raised."""
    try:
        result = verify_archive(path)
    except ArchiveError as exc:
        return str(exc)
    assert result.ok is False, f"verify accepted a damaged archive: {result}"
    assert result.damages, result
    return "; ".join(result.damages)


def _sequences(dsn: str) -> list[tuple[str, int | None]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        return list(c.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall())


def test_healthy_archives_verify(originals: dict[str, Path]) -> None:
    for path in originals.values():
        assert verify_archive(path).ok is True


@pytest.mark.parametrize(("kind", "form"), CASES, ids=[f"{k}-{f}" for k, f in CASES])
def test_damage_detected_by_verify_and_import(
    originals: dict[str, Path], tmp_path: Path, new_db, sample_template: str, kind: str, form: str
) -> None:
    path = _damaged(originals, tmp_path, kind, form)
    pattern = DAMAGES[kind][2]

    message = _verify_message(path)
    assert re.search(pattern, message), message

    target = new_db(sample_template)
    with psycopg.connect(target, autocommit=True) as c:
        sample.reinitialise(c)
    before, seqs = db_digest(target), _sequences(target)
    with pytest.raises(ArchiveError) as err:
        import_archive(target, path)
    assert re.search(pattern, str(err.value)), str(err.value)
    # Before any write: the target's rows and even its sequences are untouched.
    assert db_digest(target) == before
    assert _sequences(target) == seqs


def test_every_damage_kind_has_its_own_message(originals: dict[str, Path], tmp_path: Path) -> None:
    messages: dict[str, str] = {}
    for i, (kind, form) in enumerate(CASES):
        if form != "file":
            continue
        sub = tmp_path / str(i)
        sub.mkdir()
        messages[kind] = _verify_message(_damaged(originals, sub, kind, form))
    # Each message matches its own pattern and no other kind's pattern.
    for kind, msg in messages.items():
        matching = [k for k, (_, _, pat) in DAMAGES.items() if re.search(pat, msg)]
        assert matching == [kind], (kind, msg, matching)
    assert len(messages) == len([k for k, (_, forms, _) in DAMAGES.items() if "file" in forms])


def test_verify_cli_exit_code_and_message(originals: dict[str, Path], tmp_path: Path) -> None:
    path = _damaged(originals, tmp_path, "same-length overwrite", "file")
    proc = subprocess.run(
        [sys.executable, "-m", "edms_pgdump", "verify", str(path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert proc.returncode == 1, proc
    assert "SHA-256 mismatch" in proc.stdout + proc.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "edms_pgdump", "verify", str(originals["file"])],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert ok.returncode == 0, ok
    assert "archive OK" in ok.stdout


def test_damage_after_integrity_check_is_still_caught(
    originals: dict[str, Path], tmp_path: Path, sample_dbs
) -> None:
    """Time-of-check/time-of-use: a member replaced after verification but before the COPY
    reads it. The staged row count or the decoder must catch it; nothing is committed."""
    _src, dst = sample_dbs
    work = tmp_path / "race.dir"
    shutil.copytree(originals["dir"], work)
    before = db_digest(dst)

    class Swap(load.ImportHooks):
        def before_program(self, conn, given, program, report):  # type: ignore[no-untyped-def]
            victim = work / VICTIM_NONE
            lines = victim.read_bytes().split(b"\n")
            victim.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")
            return ()

        def after_program(self, conn, program, report):  # type: ignore[no-untyped-def]  # pragma: no cover
            raise AssertionError("the damaged member was loaded")

    with pytest.raises(EdmsPgdumpError) as err:
        load.load_archive(dst, work, hooks=[Swap()])
    assert "public.documents" in str(err.value)
    assert db_digest(dst) == before


def test_integrity_report_names_every_damaged_member(originals: dict[str, Path], tmp_path: Path) -> None:
    lay = read_layout(originals["file"])
    del lay.files["data/0001.copy.zst"]
    lay.files["data/0003.copy.zst"] = lay.files["data/0003.copy.zst"][:-7]
    lay.files["data/0004.copy.zst"] += b"!"
    out = tmp_path / "multi.edms"
    write_layout(lay, out, directory=False)
    with ArchiveReader(out) as r:
        report = check_integrity(r)
    assert len(report.damages) == 3, report.damages
    assert [t["ok"] for t in report.tables] == [False, True, False, False]


# -- fuzzing: random byte flips and truncations of a whole tar archive ------------------------


def _content_of(path: Path) -> dict[str, object] | None:
    """Manifest and decoded members if verify accepts the archive, else None.

    Anything but a clean ArchiveError (a crash) fails the test."""
    from edms_pgdump.archive.integrity import read_member_text

    try:
        result = verify_archive(path)
    except ArchiveError:
        return None
    if not result.ok:
        assert result.damages
        return None
    with ArchiveReader(path) as r:
        # what the manifest says, not its bytes: whitespace between JSON tokens changes
        # nothing an import reads (a signed archive's signature covers the bytes)
        out = {"manifest.json": r.manifest.to_dict()}
        for t in r.manifest.tables:
            out[t.table] = read_member_text(r, t)
        return out


@pytest.fixture(scope="module")
def small_archive(pg_server, admin, sample_template, tmp_path_factory) -> Iterator[tuple[bytes, dict]]:
    name = f"edms_fuzz_src_{os.getpid()}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{sample_template}"')
    try:
        with psycopg.connect(pg_server.dsn(name), autocommit=True) as c:
            sample.populate(c, sample.SampleSize(users=3, documents=6))
        path = tmp_path_factory.mktemp("fuzz") / "small.edms"
        write_archive(pg_server.dsn(name), load_mapping(ROOT / "config" / "edms.yaml"), path)
        original = _content_of(path)
        assert original is not None
        yield path.read_bytes(), original
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_random_byte_flips_are_detected_or_harmless(small_archive, tmp_path_factory, data) -> None:
    """Flip 1-3 bytes anywhere in the tar file: verify either rejects the archive with an
    ArchiveError / damage list, or every byte it would import is exactly the original's
    (the flip hit tar padding or unused header fields). It never crashes or hangs."""
    raw, original = small_archive
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("flip") / "f.edms"
    path.write_bytes(bytes(buf))
    got = _content_of(path)
    assert got is None or got == original


@FUZZ
@given(cut=st.integers(0, 10**9))
def test_random_truncations_are_detected_or_harmless(small_archive, tmp_path_factory, cut: int) -> None:
    raw, original = small_archive
    path = tmp_path_factory.mktemp("cut") / "c.edms"
    path.write_bytes(raw[: cut % len(raw)])
    got = _content_of(path)
    assert got is None or got == original


@pytest.mark.parametrize("jobs", [1, 2])
def test_member_swapped_after_verification_with_same_row_count(
    originals: dict[str, Path], tmp_path: Path, sample_dbs, jobs: int
) -> None:
    """Time of check to time of use, the hard case: the member is replaced after the
    archive was checked by one with the same number of rows but another value. The
    staged count cannot see it; the hash computed while streaming must. With one
    connection, the import checked only the members' sizes and reads each member once:
    the member is named as damaged, as verify would name it. With parallel staging,
    every member was read before the transaction: it changed since."""
    _src, dst = sample_dbs
    work = tmp_path / "race.dir"
    shutil.copytree(originals["dir"], work)
    before = db_digest(dst)

    class Swap(load.ImportHooks):
        def before_program(self, conn, given, program, report):  # type: ignore[no-untyped-def]
            victim = work / VICTIM_NONE
            victim.write_bytes(victim.read_bytes().replace(b"Document 1 ", b"Document X ", 1))
            return ()

        def after_program(self, conn, program, report):  # type: ignore[no-untyped-def]  # pragma: no cover
            raise AssertionError("the swapped member was loaded")

    with pytest.raises(ArchiveError) as err:
        load.load_archive(dst, work, hooks=[Swap()], options=load.ImportOptions(jobs=jobs))
    if jobs == 1:
        assert "member 'data/0002.copy' SHA-256 mismatch (content overwritten; same size)" in str(err.value)
    else:
        assert "changed while it was being read" in str(err.value)
    assert "public.documents" in str(err.value)
    assert db_digest(dst) == before


@pytest.mark.parametrize("form", ["file", "dir"])
def test_an_import_reads_each_member_once(
    originals: dict[str, Path], sample_dbs, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """With one connection the import checks the members' sizes, then reads each member
    once, into staging (every damage above is still named, from that read): the stored
    bytes are opened once per member, not once to verify and once more to stage."""
    _src, dst = sample_dbs
    opened: list[str] = []
    real = ArchiveReader.open_stored

    def counted(self: ArchiveReader, name: str):  # type: ignore[no-untyped-def]
        opened.append(name)
        return real(self, name)

    monkeypatch.setattr(ArchiveReader, "open_stored", counted)
    with ArchiveReader(originals[form]) as reader:
        members = sorted(t.member for t in reader.manifest.tables)
    report = load.load_archive(dst, originals[form])
    assert report.committed and report.inserted > 0
    assert sorted(n for n in opened if n.startswith("data/")) == members


@pytest.mark.parametrize("form", ["file", "dir"])
def test_a_damaged_member_the_import_skips_is_still_named(
    originals: dict[str, Path], tmp_path: Path, sample_dbs, form: str
) -> None:
    """The import checks each member it stages while it stages it; the members it does
    not stage (--skip-tables) are read whole before the first: the archive is refused,
    as verify refuses it, although their rows would not be used."""
    _src, dst = sample_dbs
    lay = read_layout(originals[form])
    workflows = next(t["member"] for t in lay.manifest["tables"] if t["table"] == "public.document_workflows")
    data = bytearray(lay.files[workflows])
    data[len(data) // 2] ^= 0x5A
    lay.files[workflows] = bytes(data)
    path = tmp_path / ("damaged.dir" if form == "dir" else "damaged.edms")
    write_layout(lay, path, directory=(form == "dir"))
    before = db_digest(dst)
    with pytest.raises(ArchiveError, match=rf"public\.document_workflows: member '{workflows}' SHA-256 mismatch"):
        load.load_archive(dst, path, options=load.ImportOptions(skip_tables=("public.document_workflows",)))
    assert db_digest(dst) == before
