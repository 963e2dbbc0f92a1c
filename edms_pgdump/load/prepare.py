"""Before any write: the archive's tables and columns against the target's catalog."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from edms_pgdump.archive.manifest import Manifest, TableEntry
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name
from edms_pgdump.catalog.read import Catalog
from edms_pgdump.errors import SchemaDriftError, UsageError
from edms_pgdump.mapping import Mapping, load_mapping_text, mapping_from_dict
from edms_pgdump.plan.build import Expansion, Plan, build_plan
from edms_pgdump.plan.generic import GenericTargets
from edms_pgdump.plan.model import carried_field, present_field


def archive_mapping(manifest: Manifest) -> Mapping:
    """The mapping the archive was exported with: its YAML text when stored (comments and
    all), else the parsed form of the oldest archives."""
    if manifest.mapping_text.strip():
        return load_mapping_text(manifest.mapping_text, "archive mapping")
    return mapping_from_dict(manifest.mapping)


@dataclass
class Prepared:
    plan: Plan
    catalog: Catalog
    entries: dict[QualifiedName, TableEntry]
    loaded: dict[QualifiedName, list[str]]  # COPY field order per table
    warnings: list[str]
    archive_types: dict[QualifiedName, dict[str, str]] = field(default_factory=dict)


def generic_targets(manifest: Manifest) -> GenericTargets:
    """The tables each generic reference's data names, as export found them."""
    out: GenericTargets = {}
    for t in manifest.tables:
        for e in t.expansions:
            if e.get("kind") == "generic":
                names = tuple(parse_qualified_name(str(n)) for n in e.get("targets", []))
                out[(parse_qualified_name(t.table), str(e["id_column"]))] = names
    return out


def retargeted(name: QualifiedName, entry: TableEntry, expansions: Sequence[Expansion]) -> list[str]:
    """References whose target table or key changed between the archive and the target:
    the same field names (``owner_id.login``) would resolve to rows of another table."""
    out: list[str] = []
    by_label = {e.label: e for e in expansions}
    for e in entry.expansions:
        if e.get("kind") == "generic" or str(e.get("label")) not in by_label:
            continue  # a missing reference is reported by its fields
        mine = by_label[str(e["label"])]
        was_table, was_fields = str(e.get("ref_table")), [str(f) for f in e.get("fields", [])]
        now_fields = [kf.name for kf in mine.fields]
        if was_table == str(mine.ref_table) and was_fields == now_fields:
            continue
        out.append(
            f"{name}: reference {mine.label} points at {was_table} (key fields "
            f"{', '.join(was_fields)}) in the archive but at {mine.ref_table} (key fields "
            f"{', '.join(now_fields)}) in the target, through {mine.fk.name}; its keys would resolve "
            f"to other rows. Fix: migrate the target so {mine.label} references {was_table} again, "
            "or re-export from a source whose schema matches the target"
        )
    return out


def reference_extras(expansions: Sequence[Expansion]) -> set[str]:
    """The names of every format-2 field the target's references could read: presence,
    and each written column carried as a value."""
    out: set[str] = set()
    for e in expansions:
        if e.array or e.tree:
            continue
        out.add(present_field(e.label))
        out.update(carried_field(e.label, c) for c in e.written)
    return out


def _drift_options(
    ignore_columns: Sequence[str], skip_tables: Sequence[str]
) -> tuple[set[tuple[QualifiedName, str]], set[QualifiedName]]:
    ignored: set[tuple[QualifiedName, str]] = set()
    for item in ignore_columns:
        table, _, column = item.rpartition(".")
        try:
            ignored.add((parse_qualified_name(table), column))
        except ValueError:
            raise UsageError(
                f"--ignore-column {item!r}: use TABLE.COLUMN, e.g. public.documents.legacy"
            ) from None
    skipped: set[QualifiedName] = set()
    for item in skip_tables:
        try:
            skipped.add(parse_qualified_name(item))
        except ValueError as exc:
            raise UsageError(f"--skip-table {item!r}: {exc}") from None
    return ignored, skipped


def prepare_import(
    manifest: Manifest,
    catalog: Catalog,
    origin: str,
    ignore_columns: Sequence[str] = (),
    skip_tables: Sequence[str] = (),
) -> Prepared:
    """Check the archive against the target catalog before anything is written.

    Schema drift is decided here, before any write: a target column the archive lacks
    is fine when it is nullable or has a default; an archive column the target lacks is
    refused unless ``ignore_columns`` names it; a table the target lacks is refused
    unless ``skip_tables`` names it; a changed type is converted on COPY (a value that
    does not convert stops the import, naming its line and column).
    """
    ignored, skipped = _drift_options(ignore_columns, skip_tables)
    mapping = archive_mapping(manifest)
    plan = build_plan(mapping, catalog, generic_targets(manifest))
    if skipped:  # a table left out with --skip-table is no problem of this plan
        kept = tuple(
            p
            for p in plan.problems
            if not (p.code == "table-missing" and parse_qualified_name(p.table) in skipped)
        )
        plan = replace(plan, problems=kept)
    # a mapped table the target lacks is said once, below, with the fix an importer can
    # apply (--skip-table) before the one only the exporter can (the mapping)
    in_archive = {parse_qualified_name(t.table) for t in manifest.tables}
    problems = [
        str(p).removeprefix("error: ")
        for p in plan.errors
        if not (p.code == "table-missing" and parse_qualified_name(p.table) in in_archive)
    ]
    warnings: list[str] = []
    entries: dict[QualifiedName, TableEntry] = {}
    loaded: dict[QualifiedName, list[str]] = {}
    archive_types: dict[QualifiedName, dict[str, str]] = {}
    for t in manifest.tables:
        name = parse_qualified_name(t.table)
        tp = plan.tables.get(name)
        if name in skipped:
            warnings.append(f"{name}: left out (--skip-table); its {t.rows} archive row(s) were not imported")
            continue
        entries[name] = t
        if tp is None or not tp.export:
            problems.append(
                f"{name}: table is in the archive but not in the target database; leave it out with "
                f"--skip-table {name} (the other tables are imported), or create it first"
            )
            continue
        target_fields = {f.name: f for f in tp.fields}
        archive_fields = t.field_names
        extras = reference_extras(tp.expansions)
        for f in t.fields:
            tf = target_fields.get(f.name)
            if f.name in extras and manifest.format_version < 2:
                problems.append(
                    f"{name}: archive field {f.name} belongs to archive format 2, but the manifest says "
                    f"format {manifest.format_version}; the manifest is damaged, re-export the archive"
                )
            elif tf is None and f.name in extras:
                # the source needed it (a nullable key, a MATCH SIMPLE FK), the target's plan
                # does not: staged as it is and still read, so the reference keeps its meaning
                archive_types.setdefault(name, {})[f.name] = f.type
            elif tf is None and (name, f.name.split(".")[0]) in ignored:
                archive_types.setdefault(name, {})[f.name] = f.type
                warnings.append(
                    f"{name}.{f.name}: not in the target; carried in staging, not written (--ignore-column)"
                )
            elif tf is None:
                problems.append(
                    f"{name}: archive field {f.name.split('.')[0]} has no matching column or foreign "
                    f"key in the target; leave it out with --ignore-column {name}.{f.name.split('.')[0]} "
                    "(carried, not written), or add the column to the target"
                )
            elif tf.type != f.type:
                warnings.append(
                    f"{name}.{f.name}: type differs (archive {f.type}, target {tf.type}); "
                    "values are converted on COPY"
                )
        problems += retargeted(name, t, tp.expansions)
        table = catalog.tables[name]
        for tf in tp.fields:
            if tf.name in archive_fields or tf.name in extras:
                # a format-2 field the archive lacks (format 1, or a source that needed
                # none): the reference is present when a key field is set, as format 1 says
                continue
            col = table.column(tf.column or "") if tf.role == "column" else None
            if tf.role == "reference":
                exp = tp.expansion(tf.reference or "")
                cols = [table.column(c) for c in exp.columns]
                if any(c is not None and c.not_null and not c.has_default for c in cols):
                    problems.append(
                        f"{name}: target foreign key {exp.fk.name} is NOT NULL but the archive has "
                        "no values for it; migrate the source or relax the constraint"
                    )
                else:
                    warnings.append(f"{name}: target reference {exp.label} is not in the archive; left NULL")
            elif col is not None and col.not_null and not col.has_default:
                problems.append(
                    f"{name}.{col.name}: NOT NULL column without default is not in the archive; "
                    "add a default or re-export from a source that has it"
                )
            else:
                warnings.append(f"{name}.{tf.name}: not in the archive; new rows get the default")
        loaded[name] = archive_fields
    if problems:
        raise SchemaDriftError(f"{origin}: {problems[0]}", problems)
    warnings.extend(str(p) for p in plan.warnings)
    return Prepared(plan, catalog, entries, loaded, warnings, archive_types)
