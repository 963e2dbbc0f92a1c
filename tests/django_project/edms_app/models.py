"""The seed's models: users own documents (with a parent), documents have workflows keyed
by document and type; plus tags (an M2M), and comments and links on anything (generic
relations, one with an integer object id, one with a text one)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class TagManager(models.Manager["Tag"]):
    def get_by_natural_key(self, name: str) -> Tag:
        return self.get(name=name)


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)
    objects = TagManager()

    def natural_key(self) -> tuple[Any, ...]:
        return (self.name,)


class DocumentManager(models.Manager["Document"]):
    def get_by_natural_key(self, document_number: str) -> Document:
        return self.get(document_number=document_number)


class Document(models.Model):
    document_number = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField()
    size_bytes = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict)
    tags = models.ManyToManyField(Tag, blank=True)
    objects = DocumentManager()

    def natural_key(self) -> tuple[Any, ...]:
        return (self.document_number,)


class WorkflowManager(models.Manager["DocumentWorkflow"]):
    def get_by_natural_key(self, document_number: str, workflow_type: str) -> DocumentWorkflow:
        return self.get(document__document_number=document_number, workflow_type=workflow_type)


class DocumentWorkflow(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE)
    workflow_type = models.CharField(max_length=40)
    state = models.CharField(max_length=20)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    due_date = models.DateField(null=True)
    objects = WorkflowManager()

    class Meta:
        unique_together = (("document", "workflow_type"),)

    def natural_key(self) -> tuple[Any, ...]:
        return (*self.document.natural_key(), self.workflow_type)

    natural_key.dependencies = ["edms_app.document"]  # type: ignore[attr-defined]  # noqa: RUF012


class Comment(models.Model):
    """A note on any object: content_type + object_id, no foreign key to the object."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveIntegerField()
    content_object = GenericForeignKey("content_type", "object_id")
    number = models.PositiveIntegerField()
    body = models.TextField()

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["content_type", "object_id", "number"], name="comment_key"),
        )


class Link(models.Model):
    """A link to any object, its id kept as text (as admin's LogEntry.object_id is): a
    generic relation whose object_id column is not an integer, beside Comment's."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_pk = models.CharField(max_length=64)
    content_object = GenericForeignKey("content_type", "object_pk")
    label = models.CharField(max_length=40)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=["content_type", "object_pk", "label"], name="link_key"),
        )


class ScratchNote(models.Model):
    """Nothing identifies a note but its id: init --django must leave it out, saying why."""

    text = models.TextField()
