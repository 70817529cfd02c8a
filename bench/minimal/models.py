"""Minimal tables for the peers of the webhook benchmark (``bench/views.py``).

A task row and an event row as a host's own webhook receiver would keep them: the event's unique
key dedups deliveries, the task is found by its remote id; for the ``upload`` peer, an upload row
whose status follows its tasks'. Unique *constraints* rather than
``unique=True``, so PostgreSQL gets one index each and no ``varchar_pattern_ops`` copy: an event
insert maintains 2 index entries, a task update none when it is HOT (no indexed column changes).
"""

from __future__ import annotations

from django.db import models


class PeerUpload(models.Model):
    status = models.CharField(max_length=12)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"upload {self.pk}"


class PeerTask(models.Model):
    upload = models.ForeignKey(PeerUpload, null=True, on_delete=models.CASCADE)
    remote_id = models.CharField(max_length=128)
    status = models.CharField(max_length=12)
    progress = models.PositiveSmallIntegerField(null=True)
    output_url = models.URLField(max_length=2000, blank=True)
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("remote_id",), name="peer_task_remote_id")]

    def __str__(self) -> str:
        return self.remote_id


class PeerEvent(models.Model):
    dedup_key = models.CharField(max_length=200)
    remote_task_id = models.CharField(max_length=128)
    status = models.CharField(max_length=40)
    body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=("dedup_key",), name="peer_event_dedup_key")]

    def __str__(self) -> str:
        return self.dedup_key
