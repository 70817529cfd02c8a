"""The example project as tests/test_schemathesis.py runs it: its own settings, plus what a
fuzzing run needs, and the data the run starts from. Run with ``example_project`` on the path.

- a fast password hasher: every request authenticates with HTTP Basic, and the production
  hasher costs ~0.3 s a check, which would spend the time budget on hashing;
- rate limits high enough for a few hundred requests in a minute: the 429 answer is documented
  and tested in tests/test_api_policy.py; here it would only hide the operations behind it.
"""

from __future__ import annotations

from example.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    "DEFAULT_THROTTLE_RATES": {
        "tapestry_media": "100000/minute",
        "tapestry_media_write": "100000/minute",
    }
}


def seed(username: str, password: str) -> None:
    """A non-staff user with uploads whose tasks are in every shape the API shows: waiting,
    succeeded with an output URL, failed after an earlier attempt; and another user's upload
    that must stay out of sight."""
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile

    from tapestry_media.models import Submission
    from tapestry_media.status import Status

    users = get_user_model().objects
    user = users.create_user(username, password=password)
    other = users.create_user("other", password="other-password")
    for owner, title in ((user, "waiting"), (user, "done"), (other, "not yours")):
        Submission.objects.create(
            uploader=owner,
            title=title,
            campaign="summer-launch",
            metadata={"order_id": "A-1"},
            file=ContentFile(b"\x00" * 64, name=f"{title.replace(' ', '-')}.mp4"),
        )
    done = Submission.objects.get(title="done")
    first, *rest = done.current_tasks().order_by("pk")
    first.status = Status.SUCCEEDED
    first.output = {"url": "https://cdn.example.com/out/video.mp4", "format": "mp4"}
    first.output_url = "https://cdn.example.com/out/video.mp4"
    first.progress = 100
    first.save()
    for task in rest:
        task.status = Status.FAILED
        task.error = {"kind": "input_refused", "message": "not a video"}
        task.attempt = 2
        task.attempts = [
            {"attempt": 1, "remote_id": "task_old", "status": "failed", "error": None,
             "ended_at": "2026-01-01T00:00:00+00:00"}
        ]  # fmt: skip
        task.save()
