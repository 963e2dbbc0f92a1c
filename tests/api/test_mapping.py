"""The YAML mapping: safe loading, exact errors naming the YAML path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from edms_pgdump import MappingError, load_mapping, load_mapping_text
from edms_pgdump.catalog.names import QualifiedName, parse_qualified_name

ROOT = Path(__file__).resolve().parents[2]


def test_sample_mapping_loads() -> None:
    m = load_mapping(ROOT / "config" / "edms.yaml")
    assert m.tables[QualifiedName("public", "document_workflows")].natural_key == (
        "document_id",
        "workflow_type",
    )
    assert QualifiedName("public", "django_session") in m.exclude
    assert len(m.sha256) == 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("public.users", QualifiedName("public", "users")),
        ("Public.Users", QualifiedName("public", "users")),
        ('reg."Contract"', QualifiedName("reg", "Contract")),
        ('"my schema"."a.b ""c"""', QualifiedName("my schema", 'a.b "c"')),
    ],
)
def test_qualified_names_follow_psql_rules(text: str, expected: QualifiedName) -> None:
    assert parse_qualified_name(text) == expected


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("version: 2\ntables: {public.a: {natural_key: [k]}}", "version: expected 1, got 2"),
        ("version: 1\ntables: {public.a: {natural_key: []}}", 'tables."public.a".natural_key: expected a non-empty list'),
        ("version: 1\ntables: {public.a: {natural_key: [k, 3]}}", 'tables."public.a".natural_key[1]: expected a column name'),
        ("version: 1\ntables: {public.a: {natural_key: [k], on_conflict: merge}}", "on_conflict: 'merge' is not allowed; use one of update, skip, error"),
        ("version: 1\ntables: {public.a: {natural_key: [k], colour: red}}", 'tables."public.a": unknown key \'colour\''),
        ("version: 1\ntables: {a: {natural_key: [k]}}", "'a' must be schema.table"),
        ("version: 1\ntables: {public.a: {natural_key: [k]}}\nexclude: [public.a]", "exclude[0]: public.a is also mapped"),
        ("version: 1\ntables: {public.a: {natural_key: [k]}}\nextra: 1", "extra: unknown top-level key"),
        ('version: 1\ntables: {reg."A: {natural_key: [k]}}', "unterminated quoted identifier"),
        ("version: 1\ntables: [unclosed", "m.yaml:2: invalid YAML"),
        ("version: 1\ntables: {public.a: {natural_key: [k], references: [{columns: [x]}]}}", "references[0]: both 'columns' and 'table' are required"),
    ],
)
def test_invalid_mappings_name_the_path(yaml_text: str, message: str) -> None:
    with pytest.raises(MappingError) as exc:
        load_mapping_text(yaml_text, "m.yaml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("m.yaml")


def test_python_tags_are_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"!!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(MappingError, match="invalid YAML"):
        load_mapping_text(text, "evil.yaml")
    assert not marker.exists()


def test_huge_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read the mapping"):
        load_mapping(tmp_path / "nope.yaml")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (6 * 1024 * 1024))
    with pytest.raises(MappingError, match="larger than the"):
        load_mapping(big)
