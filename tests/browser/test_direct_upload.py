"""The example site's upload form with a storage that presigns (moto on 127.0.0.1, behind the
POST-policy layer of tests/s3.py): Chromium sends the file straight to the bucket with a
progress bar, then creates the submission from its key; no request to the site carries it."""

from __future__ import annotations

from typing import Any

import pytest

from tapestry_media.models import Submission

from ..s3 import running_server, use_s3
from .site import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.once]

#: Records what the progress label says, in sessionStorage (it survives the navigation).
WATCH_LABEL = """() => {
  const label = document.querySelector('[data-upload-progress-label]');
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem('labels') || '[]');
    seen.push(label.textContent);
    sessionStorage.setItem('labels', JSON.stringify(seen));
  }).observe(label, {childList: true, characterData: true, subtree: true});
}"""


s3 = pytest.fixture(scope="module")(running_server)


@pytest.mark.django_db(transaction=True)
def test_the_upload_form_sends_the_file_straight_to_storage(
    browser, site, live_server, s3, settings, user, tmp_path
) -> None:
    bucket = s3.new_bucket()
    use_s3(settings, s3, bucket, expire=300)
    clip = tmp_path / "beach-day.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * (3 * 1024 * 1024))

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(20_000)
    sent: list[tuple[str, str, int]] = []
    page.on(
        "request",
        lambda r: sent.append((r.method, r.url, len(r.post_data_buffer or b""))),
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/upload/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    page.click(".auth button[type=submit]")
    page.wait_for_url("**/upload/")
    assert page.get_attribute("form.upload-form", "data-upload-mode") == "direct"
    page.evaluate(WATCH_LABEL)
    page.set_input_files("input[type=file]", str(clip))
    page.fill("input[name=title]", "Beach day")
    page.click(".upload-form button[type=submit]")
    page.wait_for_url("**/submissions/sub_*/")

    # the message the plain form's redirect shows, once (the URL is the page's own again)
    assert page.url.endswith("/")
    assert "uploaded" not in page.url
    flash = page.locator('[data-flash~="processing"]')
    assert flash.count() == 1
    assert "Processing has started" in flash.inner_text()

    sub = Submission.objects.get()
    assert sub.title == "Beach day"
    # claimed: copied in the bucket to the submission's own name, the direct object deleted
    assert sub.file.name == f"tapestry_media/uploads/{sub.public_id}/beach-day.mp4"
    assert sub.file_size == clip.stat().st_size
    assert s3.keys(bucket) == [sub.file.name]
    assert sorted(sub.tasks.values_list("name", flat=True)) == ["poster", "video"]

    labels: list[Any] = page.evaluate("JSON.parse(sessionStorage.getItem('labels') || '[]')")
    assert "Uploading… 100 %" in labels, labels
    assert "Uploaded. Starting processing…" in labels
    # The file went to the bucket in one POST (its size is the stored object's, above); the
    # site got two small API calls. (Chromium does not expose a file body to Playwright, so
    # the byte count that proves the site read none of it is tests/test_direct_uploads.py's.)
    to_storage = [method for method, url, _ in sent if url.startswith(s3.endpoint)]
    to_api = [(url, size) for method, url, size in sent if "/tapestry/api/" in url]
    assert to_storage == ["POST"]
    assert [url.split("/tapestry/api/")[1] for url, _ in to_api] == [
        "submissions/uploads/",
        "submissions/",
    ]
    assert all(0 < size <= 4096 for _, size in to_api), to_api
    page.screenshot(path=str(ARTIFACTS / "direct-upload.png"))
    context.close()
