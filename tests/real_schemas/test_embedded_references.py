"""Ids inside JSON and text (``embedded_references:``): StreamField-like blocks in jsonb
(chooser blocks, a struct block's members, a list block's items), rich-text links and
embeds in text and inside JSON strings, and revision content that keeps the blocks as a
JSON string inside JSON. They travel as the named rows' natural keys and land on the
target's ids; a dangling id is refused at export, a dangling key at import, before any
write; a column whose value is not JSON is refused by name."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edms_pgdump import export_archive, import_archive, load_mapping_text
from edms_pgdump.api import check_mapping, plan_mapping
from edms_pgdump.demo.servers import Server
from edms_pgdump.errors import EdmsPgdumpError, MappingError
from edms_pgdump.runbook.scripts import write_runbooks
from tests.support.db import db_digest, member_texts
from tests.support.psql import run_psql
from tests.support.real_schemas import NewDb, fetch, make_db, natural_rows, push_sequences, run

SCHEMA = """
CREATE TABLE public.image (id serial PRIMARY KEY, title text NOT NULL UNIQUE);
CREATE TABLE public.doc (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE public.page (id serial PRIMARY KEY, slug text NOT NULL UNIQUE, body jsonb, intro text,
    revision jsonb);
"""


def _body(img: list[int], page: int, doc: int) -> list[dict[str, object]]:
    return [
        {"type": "heading", "value": "Hello", "id": "b1"},
        {"type": "image", "value": img[0], "id": "b2"},
        {"type": "hero", "value": {"image": img[1], "page": page, "caption": "big"}, "id": "b3"},
        {"type": "gallery", "value": [img[2], img[0]], "id": "b4"},
        {"type": "image", "value": None, "id": "b5"},
        {
            "type": "paragraph",
            "value": f'<p>See <a linktype="page" id="{page}">that</a> and <embed alt="x" '
            f'embedtype="image" format="left" id="{img[1]}"/> and <a linktype="document" id="{doc}">it</a></p>',
            "id": "b6",
        },
    ]


def source_sql() -> str:
    rows = []
    for n in range(1, 5):
        img = [(n % 3) + 1, ((n + 1) % 3) + 1, ((n + 2) % 3) + 1]
        page = (n % 4) + 1
        body = _body(img, page, (n % 2) + 1)
        revision = {"pk": n, "title": f"page {n}", "body": json.dumps(body)}
        intro = f'<p><a linktype="document" id="{(n % 2) + 1}">read</a> then <a linktype="page" id="{page}">go</a></p>'
        if n == 3:  # a control character the rewrite uses as a mark: the other way is taken
            intro += '\x01 <a linktype="page" id="1">first</a>'
        rows.append(f"({n}, 'p{n}', '{json.dumps(body)}'::jsonb, '{intro}', '{json.dumps(revision)}'::jsonb)")
    return (
        "INSERT INTO public.image (id, title) VALUES (1, 'sunset'), (2, 'forest'), (3, 'harbour');"
        "INSERT INTO public.doc (id, name) VALUES (1, 'terms'), (2, 'guide');"
        "INSERT INTO public.page (id, slug, body, intro, revision) VALUES " + ", ".join(rows) + ";"
        "SELECT setval('public.image_id_seq', 3), setval('public.doc_id_seq', 2), setval('public.page_id_seq', 4);"
    )


# the target's own rows sit at the source's ids
TARGET = """
INSERT INTO public.image (title) VALUES ('logo'), ('banner'), ('icon'), ('spare');
INSERT INTO public.doc (name) VALUES ('faq'), ('manual'), ('spare');
INSERT INTO public.page (slug, body) VALUES ('home', '[]'), ('news', '[]'), ('x', NULL), ('y', NULL), ('z', NULL);
"""

MAPPING = r"""
version: 1
tables:
  public.image: {natural_key: [title]}
  public.doc: {natural_key: [name]}
  public.page:
    natural_key: [slug]
    embedded_references:
      - {column: body, json: '$[*] ? (@.type == "image").value', table: public.image}
      - {column: body, json: '$[*] ? (@.type == "hero").value.image', table: public.image}
      - {column: body, json: '$[*] ? (@.type == "hero").value.page', table: public.page}
      - {column: body, json: '$[*] ? (@.type == "gallery").value[*]', table: public.image}
      - column: body
        json: '$[*] ? (@.type == "paragraph").value'
        pattern: '<a linktype="page" id="(\d+)"'
        table: public.page
      - column: body
        json: '$[*] ? (@.type == "paragraph").value'
        pattern: '<embed[^>]* embedtype="image"[^>]* id="(\d+)"'
        table: public.image
      - column: body
        json: '$[*] ? (@.type == "paragraph").value'
        pattern: '<a linktype="document" id="(\d+)"'
        table: public.doc
      - {column: intro, pattern: '<a linktype="document" id="(\d+)"', table: public.doc}
      - {column: intro, pattern: '<a linktype="page" id="(\d+)"', table: public.page}
      - {column: revision, json: '$.body.json()[*] ? (@.type == "image").value', table: public.image}
      - {column: revision, json: '$.pk', table: public.page}
"""

# what each reference names, by value, in any database
NAMED = """
SELECT p.slug, 'image' AS kind, i.title FROM public.page p
  CROSS JOIN LATERAL jsonb_path_query(p.body, '$[*] ? (@.type == "image").value') AS v
  LEFT JOIN public.image i ON i.id = (v #>> '{}')::int WHERE v <> 'null'
UNION ALL SELECT p.slug, 'hero', i.title || '/' || hp.slug FROM public.page p
  CROSS JOIN LATERAL jsonb_path_query(p.body, '$[*] ? (@.type == "hero").value') AS v
  LEFT JOIN public.image i ON i.id = (v ->> 'image')::int LEFT JOIN public.page hp ON hp.id = (v ->> 'page')::int
UNION ALL SELECT p.slug, 'gallery', i.title FROM public.page p
  CROSS JOIN LATERAL jsonb_path_query(p.body, '$[*] ? (@.type == "gallery").value[*]') AS v
  LEFT JOIN public.image i ON i.id = (v #>> '{}')::int
UNION ALL SELECT p.slug, 'link', lp.slug FROM public.page p
  CROSS JOIN LATERAL jsonb_path_query(p.body, '$[*] ? (@.type == "paragraph").value') AS v
  CROSS JOIN LATERAL regexp_matches(v #>> '{}', 'linktype="page" id="(\\d+)"', 'g') AS m
  LEFT JOIN public.page lp ON lp.id = m[1]::int
UNION ALL SELECT p.slug, 'embed', i.title FROM public.page p
  CROSS JOIN LATERAL jsonb_path_query(p.body, '$[*] ? (@.type == "paragraph").value') AS v
  CROSS JOIN LATERAL regexp_matches(v #>> '{}', 'embedtype="image"[^>]* id="(\\d+)"', 'g') AS m
  LEFT JOIN public.image i ON i.id = m[1]::int
UNION ALL SELECT p.slug, 'intro-doc', d.name FROM public.page p
  CROSS JOIN LATERAL regexp_matches(p.intro, 'linktype="document" id="(\\d+)"', 'g') AS m
  LEFT JOIN public.doc d ON d.id = m[1]::int
UNION ALL SELECT p.slug, 'intro-page', lp.slug FROM public.page p
  CROSS JOIN LATERAL regexp_matches(p.intro, 'linktype="page" id="(\\d+)"', 'g') AS m
  LEFT JOIN public.page lp ON lp.id = m[1]::int
UNION ALL SELECT p.slug, 'revision-image', i.title FROM public.page p
  CROSS JOIN LATERAL jsonb_path_query((p.revision ->> 'body')::jsonb, '$[*] ? (@.type == "image").value') AS v
  LEFT JOIN public.image i ON i.id = (v #>> '{}')::int WHERE v <> 'null'
UNION ALL SELECT p.slug, 'revision-pk', rp.slug FROM public.page p
  LEFT JOIN public.page rp ON rp.id = (p.revision ->> 'pk')::int WHERE p.revision IS NOT NULL
ORDER BY 1, 2, 3
"""


def test_round_trip_through_natural_values(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, source_sql())
    dst = make_db(new_db, SCHEMA, TARGET)
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping_text(MAPPING), archive, audit_log=False)
    # in the archive, ids became natural keys
    page = next(v for k, v in member_texts(archive).items() if "page" in k).decode()
    assert '"value": ["sunset"]' in page or '"value": ["forest"]' in page, page[:400]
    assert 'linktype=\\\\"page\\\\" id=\\\\"nk:[%22p' in page, page[:600]
    assert '<a linktype="document" id="nk:[%22' in page
    report = import_archive(dst, archive, audit_log=False)
    assert report.committed and report.ok, report.to_dict()
    named = fetch(src, NAMED)
    assert len(named) > 30 and all(value is not None for *_, value in named), named
    assert [r for r in fetch(dst, NAMED) if r[0].startswith("p")] == named
    src_rows = natural_rows(src, MAPPING)
    dst_rows = natural_rows(dst, MAPPING)
    assert [r for r in dst_rows["public.page"] if r[0].startswith("p")] == src_rows["public.page"]
    # the target's ids, not the source's: page p1's hero names the target's own row ids
    [(hero_page,)] = fetch(
        dst, "SELECT (body -> 2 -> 'value' ->> 'page')::int FROM public.page WHERE slug = 'p1'"
    )
    assert fetch(dst, f"SELECT slug FROM public.page WHERE id = {hero_page}") == [("p2",)]
    again = import_archive(dst, archive, audit_log=False)
    assert again.committed
    assert all(t.inserted + t.updated == 0 for t in again.tables), again.to_dict()


def test_dangling_id_refused_at_export(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, source_sql())
    run(src, """UPDATE public.page SET body = jsonb_set(body, '{1,value}', '77') WHERE slug = 'p3'""")
    with pytest.raises(EdmsPgdumpError) as info:
        export_archive(src, load_mapping_text(MAPPING), tmp_path / "a.edms", audit_log=False)
    text = str(info.value)
    assert "public.page.body" in text and "public.image" in text and "slug='p3'" in text and "id='77'" in text
    assert "nothing was exported" in text and not (tmp_path / "a.edms").exists()


def test_value_not_json_refused_by_name(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(new_db, SCHEMA, source_sql())
    run(
        src,
        """UPDATE public.page SET revision = jsonb_set(revision, '{body}', '"not json ["') WHERE slug = 'p2'""",
    )
    with pytest.raises(EdmsPgdumpError) as info:
        export_archive(src, load_mapping_text(MAPPING), tmp_path / "a.edms", audit_log=False)
    text = str(info.value)
    assert "public.page.revision" in text and "is not JSON" in text and "nothing was exported" in text


def test_dangling_key_refused_at_import_before_any_write(new_db: NewDb, tmp_path: Path) -> None:
    """The archive names an image the target's import cannot find (it is not in the
    archive and the target has none): refused, naming the table, column, row and key."""
    src = make_db(new_db, SCHEMA, source_sql())
    narrowed = MAPPING.replace(
        "  public.image: {natural_key: [title]}", "  public.image: {natural_key: [title], export: false}"
    )
    archive = tmp_path / "a.edms"
    export_archive(src, load_mapping_text(narrowed), archive, audit_log=False)
    dst = make_db(new_db, SCHEMA, TARGET)
    before = db_digest(dst)
    with pytest.raises(EdmsPgdumpError) as info:
        import_archive(dst, archive, audit_log=False)
    text = str(info.value)
    assert "public.page" in text and "inside body" in text and "name no row of public.image" in text, text
    assert "slug='p" in text and any(f'["{t}"]' in text for t in ("sunset", "forest", "harbour")), text
    assert db_digest(dst) == before


def test_mapping_syntax_errors_name_the_place() -> None:
    bad = MAPPING.replace("'$[*] ? (@.type == \"image\").value'", "'$[*] ? (@.type = \"image\").value'")
    with pytest.raises(MappingError, match=r"embedded_references\[0\]\.json: expected \'==\'"):
        load_mapping_text(bad)
    two = MAPPING.replace(r"'<a linktype=\"document\" id=\"(\d+)\"'", "x")
    bad = MAPPING.replace(r"""pattern: '<a linktype="page" id="(\d+)"'""", r"""pattern: '(a)(\d+)'""", 1)
    with pytest.raises(MappingError, match=r"embedded_references\[4\]\.pattern: .* 2 capturing groups"):
        load_mapping_text(bad)
    assert two


def test_check_warns_until_declared(new_db: NewDb) -> None:
    src = make_db(new_db, SCHEMA, source_sql())
    undeclared = """
version: 1
tables:
  public.image: {natural_key: [title]}
  public.doc: {natural_key: [name]}
  public.page: {natural_key: [slug]}
"""
    report = check_mapping(dsn=src, mapping=load_mapping_text(undeclared))
    found = {(p.table, p.column): p for p in report.warnings if p.code == "embedded-ids"}
    assert set(found) == {("public.page", "body"), ("public.page", "intro"), ("public.page", "revision")}
    assert "embedded_references:" in found[("public.page", "body")].fix
    declared = check_mapping(dsn=src, mapping=load_mapping_text(MAPPING))
    assert not [p for p in declared.warnings if p.code == "embedded-ids"]
    assert not declared.errors


# the scaling case, sized for CI (about 2 s here); docs/mapping.md's timings were taken at 20_000
SCALE = 5_000
SCALE_MAPPING = r"""
version: 1
tables:
  public.image: {natural_key: [title]}
  public.doc: {natural_key: [name]}
  public.page:
    natural_key: [slug]
    embedded_references:
      - {column: body, json: '$[*] ? (@.type == "image").value', table: public.image}
      - {column: body, json: '$[*] ? (@.type == "hero").value.image', table: public.image}
      - {column: body, json: '$[*] ? (@.type == "hero").value.page', table: public.page}
      - column: body
        json: '$[*] ? (@.type == "paragraph").value'
        pattern: '<a linktype="page" id="(\d+)"'
        table: public.page
      - {column: intro, pattern: '<a linktype="document" id="(\d+)"', table: public.doc}
"""


def test_five_thousand_pages_with_five_declarations(new_db: NewDb, tmp_path: Path) -> None:
    src = make_db(
        new_db,
        SCHEMA,
        "INSERT INTO public.image (title) SELECT 'img-' || g FROM generate_series(1, 2000) g;"
        "INSERT INTO public.doc (name) VALUES ('terms');"
        f"INSERT INTO public.page (slug) SELECT 'p' || g FROM generate_series(1, {SCALE}) g;"
        "UPDATE public.page SET body = jsonb_build_array("
        "  jsonb_build_object('type', 'image', 'value', 1 + id % 2000),"
        "  jsonb_build_object('type', 'hero', 'value', jsonb_build_object('image', 1 + (id * 7) % 2000, 'page', 1 + (id * 13) % "
        f"{SCALE})),"
        "  jsonb_build_object('type', 'paragraph', 'value', '<p><a linktype=\"page\" id=\"' || (1 + (id * 3) % "
        f"{SCALE}) || '\">next</a></p>')),"
        '  intro = \'<a linktype="document" id="1">terms</a>\'',
    )
    dst = make_db(new_db, SCHEMA, TARGET)
    push_sequences(dst)
    archive = tmp_path / "big.edms"
    t0 = time.perf_counter()
    export_archive(src, load_mapping_text(SCALE_MAPPING), archive, audit_log=False)
    t1 = time.perf_counter()
    report = import_archive(dst, archive, audit_log=False)
    t2 = time.perf_counter()
    assert report.committed
    assert [r for r in fetch(dst, NAMED) if r[0].startswith("p")] == fetch(src, NAMED)
    print(f"export {t1 - t0:.2f} s, import {t2 - t1:.2f} s for {SCALE} pages")


def test_psql_runbooks_do_the_same(new_db: NewDb, pg_server: Server, tmp_path: Path) -> None:
    """export.sql and import.sql (psql, no Python in between) rewrite the same way."""
    src = make_db(new_db, SCHEMA, source_sql())
    dst = make_db(new_db, SCHEMA, TARGET)
    mapping = load_mapping_text(MAPPING)
    data = tmp_path / "data"
    data.mkdir()
    write_runbooks(src, mapping, ["export"], tmp_path / "out")
    res = run_psql(pg_server, src, tmp_path / "out" / "export.sql", data)
    assert res.returncode == 0, res.stderr
    write_runbooks(dst, mapping, ["import"], tmp_path / "in")
    res = run_psql(pg_server, dst, tmp_path / "in" / "import.sql", data)
    assert res.returncode == 0, res.stderr
    assert [r for r in fetch(dst, NAMED) if r[0].startswith("p")] == fetch(src, NAMED)


def test_a_subset_resolves_keys_the_target_has(new_db: NewDb, tmp_path: Path) -> None:
    """A subset carries what its filter and references need, not the pages named only inside
    JSON or text: those keys are found in the target, or refused when it lacks them."""
    src = make_db(new_db, SCHEMA, source_sql())
    subset = tmp_path / "p1.edms"
    export_archive(
        src, load_mapping_text(MAPPING), subset, audit_log=False, where=(("public.page", "slug = 'p1'"),)
    )
    empty = make_db(new_db, SCHEMA)
    before = db_digest(empty)
    with pytest.raises(EdmsPgdumpError, match=r"name no row of public.page: \(slug='p1', key='\[\"p2\"\]'\)"):
        import_archive(empty, subset, audit_log=False)
    assert db_digest(empty) == before
    dst = make_db(new_db, SCHEMA, TARGET)
    full = tmp_path / "all.edms"
    export_archive(src, load_mapping_text(MAPPING), full, audit_log=False)
    import_archive(dst, full, audit_log=False)
    run(src, "UPDATE public.page SET body = body - 0 WHERE slug = 'p1'")  # the heading block goes
    export_archive(
        src, load_mapping_text(MAPPING), subset, audit_log=False, where=(("public.page", "slug = 'p1'"),)
    )
    report = import_archive(dst, subset, audit_log=False)
    assert report.committed
    assert [r for r in fetch(dst, NAMED) if r[0].startswith("p")] == fetch(src, NAMED)


def test_check_finds_what_the_export_would_refuse(new_db: NewDb) -> None:
    src = make_db(new_db, SCHEMA, source_sql())
    run(
        src,
        """UPDATE public.page SET body = jsonb_set(body, '{1,value}', '77') WHERE slug = 'p3'""",
        """UPDATE public.page SET revision = jsonb_set(revision, '{body}', '"not json ["') WHERE slug = 'p2'""",
    )
    report = check_mapping(dsn=src, mapping=load_mapping_text(MAPPING))
    found = {
        (p.column, p.message.split(" ")[1]): str(p) for p in report.errors if p.code == "embedded-dangling"
    }
    assert "(slug='p3', id='77')" in found[("body", "id(s)")]
    assert "is not JSON" in found[("revision", "value")]


def test_plan_lists_them(new_db: NewDb) -> None:
    src = make_db(new_db, SCHEMA)
    info = plan_mapping(src, load_mapping_text(MAPPING))
    (page,) = [t for t in info.tables if t["table"] == "public.page"]
    embedded = [e for e in page["expansions"] if e.get("kind") == "embedded"]
    assert len(embedded) == 11
    assert embedded[0] == {
        "kind": "embedded",
        "column": "body",
        "table": "public.image",
        "json": '$[*] ? (@.type == "image").value',
        "target_column": "id",
    }
