"""Before any write: the archive's tables and columns against the target's catalog."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog
from .errors import SchemaDriftError
from .manifest import Manifest, TableEntry
from .mapping import Mapping, load_mapping_text, mapping_from_dict
from .names import QualifiedName, parse_qualified_name
from .plan import Plan, build_plan
from .plan_generic import GenericTargets


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


def generic_targets(manifest: Manifest) -> GenericTargets:
    """The tables each generic reference's data names, as export found them."""
    out: GenericTargets = {}
    for t in manifest.tables:
        for e in t.expansions:
            if e.get("kind") == "generic":
                names = tuple(parse_qualified_name(str(n)) for n in e.get("targets", []))
                out[(parse_qualified_name(t.table), str(e["id_column"]))] = names
    return out


def prepare_import(manifest: Manifest, catalog: Catalog, origin: str) -> Prepared:
    """Check the archive against the target catalog before anything is written."""
    mapping = archive_mapping(manifest)
    plan = build_plan(mapping, catalog, generic_targets(manifest))
    problems = [str(p) for p in plan.errors]
    warnings: list[str] = []
    entries: dict[QualifiedName, TableEntry] = {}
    loaded: dict[QualifiedName, list[str]] = {}
    for t in manifest.tables:
        name = parse_qualified_name(t.table)
        entries[name] = t
        tp = plan.tables.get(name)
        if tp is None or not tp.export:
            problems.append(
                f"{name}: table is in the archive but not in the target database; create it first"
            )
            continue
        target_fields = {f.name: f for f in tp.fields}
        archive_fields = t.field_names
        for f in t.fields:
            tf = target_fields.get(f.name)
            if tf is None:
                problems.append(
                    f"{name}: archive field {f.name!r} has no matching column or foreign key "
                    "in the target; migrate the target schema to match the source"
                )
            elif tf.type != f.type:
                warnings.append(
                    f"{name}.{f.name}: type differs (archive {f.type}, target {tf.type}); "
                    "values are converted on COPY"
                )
        table = catalog.tables[name]
        for tf in tp.fields:
            if tf.name in archive_fields:
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
    return Prepared(plan, catalog, entries, loaded, warnings)
