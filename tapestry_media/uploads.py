"""What saving an upload does: a new file becomes tasks, each submitted after commit.

One save of a :class:`~tapestry_media.models.Submission`, top to bottom:

1. ``pre_save`` → :func:`prepare`. If the save stores a file the row did not hold
   (:func:`file_changed`), a new file generation starts (:func:`start_generation`): the old
   generation's unfinished tasks are superseded — task rows first, then the submission row, the
   lock order of the webhook path, so a new file and a result arriving together cannot
   deadlock — the status is reset, the file facts filled in, and every step's metadata checked
   before the file field stores the file, so a refused upload leaves nothing behind.
2. Django writes the row (and stores the file).
3. ``post_save`` → :func:`on_upload_saved`. For the same decision, the generation's tasks are
   created; their submit jobs are enqueued once the transaction commits.
4. ``Submission.save`` records the name it stored in ``Submission.stored_file_name``.

Both steps decide from the instance alone: the file it holds against ``stored_file_name``, the
name the database holds as far as the instance knows (see the model). A save that changes
nothing therefore costs no query and submits nothing. :func:`resubmit` runs the same steps for
the stored file. Raw saves (fixture loads) do nothing: the receivers skip them.
"""

from __future__ import annotations

from django.db import router, transaction

from . import pipeline
from .models import Submission, SubmissionStatus


def file_changed(submission: Submission) -> bool:
    """Whether saving ``submission`` stores a file its row does not hold yet. A file column
    that was deferred and never touched cannot have changed."""
    if "file" in submission.get_deferred_fields():
        return False
    current = submission.file.name if submission.file else ""
    return bool(current) and current != submission.stored_file_name


def prepare(submission: Submission) -> None:
    """Before the row is written: start a new generation if the file changed."""
    if file_changed(submission):
        start_generation(submission)


def on_upload_saved(submission: Submission) -> None:
    """After the row is written: a changed file gets its generation's tasks."""
    if file_changed(submission):
        pipeline.create_tasks_for_upload(submission)


def start_generation(submission: Submission) -> None:
    """Make ``submission`` (not yet saved) the start of a new file generation."""
    if not submission._state.adding:
        submission.file_generation += 1
        pipeline.supersede_old_generations(submission)
    submission.status = SubmissionStatus.PENDING
    submission.processed_at = None
    if not getattr(submission.file, "_committed", True):  # a new upload, not the stored file
        upload = submission.file.file
        size = getattr(upload, "size", None)
        submission.file_size = size if size is not None else submission.file_size
        submission.content_type = getattr(upload, "content_type", "") or submission.content_type
    if not submission.media_kind:
        submission.media_kind = pipeline.detect_media_kind(
            submission.file.name or "", submission.content_type
        )
    pipeline.check_upload_metadata(submission)  # before the file field's pre_save stores it


def resubmit(submission_pk: int) -> bool:
    """Process the same stored file again as a new generation: the old generation's unfinished
    tasks are superseded and the pipeline's tasks created (and submitted after commit) with new
    correlation and idempotency keys — the very path a new file takes. Returns whether the
    submission had a file to resubmit."""
    using = router.db_for_write(Submission)
    with transaction.atomic(using=using):
        submission = Submission.objects.using(using).filter(pk=submission_pk).first()
        if submission is None or not submission.file:
            return False
        start_generation(submission)
        submission.save(using=using)  # the same file: the receivers find nothing to do
        pipeline.create_tasks_for_upload(submission)
    return True
