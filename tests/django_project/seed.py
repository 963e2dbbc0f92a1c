"""Fill the test project's database: ``python seed.py DOCUMENTS`` (settings from the
environment). Users, documents with parents, two workflows per document, tags,
comments on documents and on tags (a generic relation), and links to documents and
tags (a generic relation whose object id is text)."""

from __future__ import annotations

import datetime as dt
import os
import sys

import django


def seed(documents: int) -> None:
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType
    from edms_app.models import Comment, Document, DocumentWorkflow, Link, Tag

    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    users = User.objects.bulk_create(
        [
            # whole seconds: dumpdata keeps milliseconds only
            User(username=f"user{i:04d}", email=f"u{i}@example.org", date_joined=base)
            for i in range(max(2, documents // 50))
        ]
    )
    tags = Tag.objects.bulk_create([Tag(name=f"tag-{i}") for i in range(10)])
    docs = Document.objects.bulk_create(
        [
            Document(
                document_number=f"DOC-{i:06d}",
                title=f"Document {i}\twith a tab",
                owner=users[i % len(users)],
                created_at=base + dt.timedelta(minutes=i),
                size_bytes=i * 1000,
                metadata={"i": i, "note": "line\nbreak"} if i % 7 == 0 else {},
            )
            for i in range(documents)
        ]
    )
    parents = []
    for i, d in enumerate(docs):
        if i % 5:
            d.parent = docs[i - i % 5]
            parents.append(d)
    Document.objects.bulk_update(parents, ["parent"], batch_size=5000)
    Through = Document.tags.through
    Through.objects.bulk_create(
        [Through(document_id=d.id, tag_id=tags[i % len(tags)].id) for i, d in enumerate(docs) if i % 3 == 0]
    )
    DocumentWorkflow.objects.bulk_create(
        [
            DocumentWorkflow(
                document=d,
                workflow_type=kind,
                state="open" if i % 2 else "done",
                assignee=users[i % len(users)] if i % 4 else None,
                due_date=dt.date(2024, 6, 1) + dt.timedelta(days=i % 90) if i % 3 else None,
            )
            for i, d in enumerate(docs)
            for kind in ("review", "approval")
        ]
    )
    doc_type = ContentType.objects.get_for_model(Document)
    tag_type = ContentType.objects.get_for_model(Tag)
    Comment.objects.bulk_create(
        [Comment(content_type=doc_type, object_id=d.id, number=1, body=f"on {d.document_number}") for d in docs[:20]]
        + [Comment(content_type=tag_type, object_id=t.id, number=n, body=f"{t.name} #{n}") for t in tags for n in (1, 2)]
    )
    Link.objects.bulk_create(
        [Link(content_type=doc_type, object_pk=str(d.id), label="see also") for d in docs[:5]]
        + [Link(content_type=tag_type, object_pk=str(t.id), label="topic") for t in tags[:3]]
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    django.setup()
    seed(int(sys.argv[1]))
