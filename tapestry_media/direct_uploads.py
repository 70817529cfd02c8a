"""Uploads straight to storage: the browser POSTs the file to the bucket, never through Django.

1. :func:`new_target` gives a presigned POST for a fresh key under
   ``tapestry_media/uploads/direct/<owner>/<token>/<name>``. Its policy fixes the key, the
   ``Content-Type`` (from the name's extension) and the size range (1 byte to
   ``MAX_UPLOAD_BYTES``), and expires after ``DIRECT_UPLOAD_EXPIRE`` seconds.
2. :func:`check_key` takes the key back and vouches for it: issued for this user (``<owner>``
   is an HMAC of the user's pk under ``SECRET_KEY``, so a client cannot make one for someone
   else, and no user id appears in the bucket), stored (one HEAD), within ``MAX_UPLOAD_BYTES``
   and of an allowed extension.
3. The claim (``tapestry_media.api.views.claim_upload``) gives the submission the public id
   :func:`claimed_id` derives from the key (unique: a key makes one submission, ever), copies
   the object server-side (:func:`copy_to_final`, S3 CopyObject, no byte through Django) to
   ``tapestry_media/uploads/<public id>/<name>`` — where no presigned policy points, so the
   owner re-POSTing to the direct key before the target expires cannot change a claimed file —
   creates the submission on that copy, and deletes the direct object once committed
   (:func:`delete_direct`). The usual upload path (``tapestry_media.uploads``) creates and
   submits its tasks.

A crash between two steps loses nothing: before the row, the copy is an orphan (``prune
--orphans`` deletes it once an hour old) and the key can be claimed again (to a new name: a
copy never overwrites an object); after the row, the direct object left behind is an orphan.
Presigning needs django-storages' S3 backend (or any storage with the same ``bucket_name`` and
``connection.meta.client``). An object uploaded but never claimed is an orphan too.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import SuspiciousOperation, ValidationError
from django.core.files.storage import Storage
from django.utils.crypto import constant_time_compare, salted_hmac

from .conf import get_settings
from .models import UPLOAD_PREFIX, Submission, upload_to
from .upload_limits import validate_upload

logger = logging.getLogger("tapestry_media.direct_uploads")

DIRECT_PREFIX = f"{UPLOAD_PREFIX}/direct"
_SALT = "tapestry_media.direct_uploads.owner"
_CLAIM_SALT = "tapestry_media.direct_uploads.claim"
_OWNER_LENGTH = 24
_NAME_LENGTH = 120
_KEY = re.compile(
    rf"^{re.escape(DIRECT_PREFIX)}/(?P<owner>[0-9a-f]{{{_OWNER_LENGTH}}})"
    r"/(?P<token>[A-Za-z0-9_-]{22})/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]{0,119})$"
)


class UploadRefused(Exception):
    """A target refused or a key that cannot become a submission; ``str()`` says why."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class StorageUnavailable(Exception):
    """The storage did not answer (connection refused, timeout, a 5xx): try again later."""


#: The largest object one S3 CopyObject copies (5 GiB): a direct upload is at most this big,
#: whatever ``MAX_UPLOAD_BYTES`` allows (the policy's limit and the claim's check say so).
COPY_LIMIT = 5 * 1024**3
KEY_IN_USE = "is in use by a submission already; upload the file again."
NOT_UPLOADED = "has no uploaded file (yet): POST the file to the upload target first."


@dataclass(frozen=True)
class Target:
    """Where and how to POST one file: a form to ``url`` with ``fields`` then ``file`` last."""

    url: str
    fields: dict[str, str]
    key: str
    content_type: str
    max_bytes: int
    expires_in: int


@dataclass(frozen=True)
class StoredUpload:
    """An uploaded object :func:`check_key` vouched for (``name`` as the storage names it)."""

    name: str
    size: int
    content_type: str
    media_kind: str = field(default="")
    #: The object's ETag at the check: the copy takes exactly this version, or none.
    etag: str = field(default="")


def upload_storage() -> Any:
    """The storage ``Submission.file`` stores in (the default storage unless the host changed
    the field)."""
    return Submission._meta.get_field("file").storage


def s3_client(storage: Any) -> Any | None:
    """The boto3 client of a django-storages S3 storage, or None for any other storage."""
    if not isinstance(getattr(storage, "bucket_name", None), str):
        return None
    client = getattr(getattr(getattr(storage, "connection", None), "meta", None), "client", None)
    return client if hasattr(client, "generate_presigned_post") else None


def available() -> bool:
    """Whether :func:`new_target` can give targets: ``DIRECT_UPLOADS`` on and a storage that
    presigns. No network."""
    return get_settings().DIRECT_UPLOADS and s3_client(upload_storage()) is not None


def owner_segment(user_pk: Any) -> str:
    return salted_hmac(_SALT, str(user_pk), algorithm="sha256").hexdigest()[:_OWNER_LENGTH]


def safe_name(filename: str) -> str:
    """The last path part of ``filename`` as a short, plain storage name (extension kept)."""
    base = re.split(r"[\\/]", filename or "")[-1].strip()
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem.strip()).lstrip(".-") or "upload"
    ext = re.sub(r"[^A-Za-z0-9]", "", ext).lower()[:10]
    stem = stem[: _NAME_LENGTH - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


def new_target(user: Any, filename: str, size: int | None = None) -> Target:
    """A presigned POST for a new key of ``user``'s. Raises :class:`UploadRefused` when the
    name's extension or the announced ``size`` is refused, or presigning is not available."""
    config = get_settings()
    storage = upload_storage()
    client = s3_client(storage) if config.DIRECT_UPLOADS else None
    if client is None:
        raise UploadRefused(
            "Direct uploads are not available: the upload storage cannot presign (it is not "
            "django-storages' S3 storage) or TAPESTRY_MEDIA['DIRECT_UPLOADS'] is False. "
            "POST the file to submissions/ as multipart/form-data instead.",
            code="direct_uploads_unavailable",
        )
    name = safe_name(filename)
    _validate(name, size)
    key = f"{DIRECT_PREFIX}/{owner_segment(user.pk)}/{secrets.token_urlsafe(16)}/{name}"
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    fields = {"Content-Type": content_type}
    conditions: list[Any] = [
        {"Content-Type": content_type},
        ["content-length-range", 1, max_bytes()],
    ]
    acl = getattr(storage, "default_acl", None)
    if acl:
        fields["acl"] = acl
        conditions.append({"acl": acl})
    post = client.generate_presigned_post(
        Bucket=storage.bucket_name,
        Key=storage._normalize_name(key),
        Fields=fields,
        Conditions=conditions,
        ExpiresIn=config.DIRECT_UPLOAD_EXPIRE,
    )
    return Target(
        url=post["url"],
        fields={str(k): str(v) for k, v in post["fields"].items()},
        key=key,
        content_type=content_type,
        max_bytes=max_bytes(),
        expires_in=config.DIRECT_UPLOAD_EXPIRE,
    )


def max_bytes() -> int:
    """The size limit of a direct upload: ``MAX_UPLOAD_BYTES``, at most :data:`COPY_LIMIT`."""
    return min(get_settings().MAX_UPLOAD_BYTES, COPY_LIMIT)


def check_key(user: Any, key: str) -> StoredUpload:
    """What ``key`` holds, if it is a key :func:`new_target` issued to ``user`` and the object
    is stored and acceptable. Raises :class:`UploadRefused`. One HEAD request; no query (the
    caller checks that no submission uses the key, in its transaction)."""
    storage = upload_storage()
    client = s3_client(storage) if get_settings().DIRECT_UPLOADS else None
    if client is None:
        raise UploadRefused(
            "Direct uploads are not available here; send the file itself as 'file'.",
            code="direct_uploads_unavailable",
        )
    match = _KEY.match(key)
    if match is None:
        raise UploadRefused(
            "is not an upload key this server issued: get one from POST submissions/uploads/.",
            code="bad_key",
        )
    if not constant_time_compare(match["owner"], owner_segment(user.pk)):
        raise UploadRefused("is not one of your uploads.", code="not_yours")
    _validate(match["name"], None)
    try:
        head = client.head_object(Bucket=storage.bucket_name, Key=storage._normalize_name(key))
    except SuspiciousOperation as exc:  # a storage location the key escapes
        raise UploadRefused("is not an upload key this server issued.", code="bad_key") from exc
    except Exception as exc:
        if _status(exc) in (403, 404):
            raise UploadRefused(NOT_UPLOADED, code="not_uploaded") from exc
        raise StorageUnavailable(f"HEAD failed: {type(exc).__name__}") from exc
    size = int(head.get("ContentLength", 0))
    kind = _validate(match["name"], size)
    if size > COPY_LIMIT:
        raise UploadRefused(
            f"is over {COPY_LIMIT} bytes, the most a direct upload can be; upload it as "
            "multipart instead.",
            code="file_too_large",
        )
    return StoredUpload(
        name=key,
        size=size,
        content_type=str(head.get("ContentType", "")),
        media_kind=kind,
        etag=str(head.get("ETag", "")),
    )


def claimed_id(key: str) -> str:
    """The public id of the submission a claim of ``key`` creates: the same for the same key
    (so the unique public id makes one submission per key), unguessable without the key and
    ``SECRET_KEY``, and in the format of :func:`~tapestry_media.models.new_submission_id`."""
    return "sub_" + salted_hmac(_CLAIM_SALT, key, algorithm="sha256").hexdigest()[:16]


def final_name(submission: Submission, stored: StoredUpload) -> str:
    """Where the claim copies ``stored``: the storage name a multipart upload of the same file
    gets (``upload_to``), or, if an object is there already (a copy a crashed claim left),
    a free name next to it: a copy never overwrites an object a prune may be deleting."""
    storage: Storage = upload_storage()
    name = upload_to(submission, stored.name.rsplit("/", 1)[1])
    try:
        while storage.exists(name):
            stem, dot, ext = name.rpartition(".")
            name = storage.get_alternative_name(stem, f"{dot}{ext}") if dot else f"{name}_"
    except Exception as exc:
        raise StorageUnavailable(f"HEAD failed: {type(exc).__name__}") from exc
    return name


def copy_to_final(stored: StoredUpload, final: str) -> None:
    """Copy the checked object to ``final`` inside the bucket (S3 CopyObject: storage copies,
    Django sends one small request). Only the version :func:`check_key` saw is copied
    (``CopySourceIfMatch``): a file replaced in between is refused, not taken unchecked."""
    storage = upload_storage()
    client = s3_client(storage)
    if client is None:
        raise UploadRefused("Direct uploads are not available here.", "direct_uploads_unavailable")
    params: dict[str, Any] = getattr(storage, "get_object_parameters", lambda name: {})(final)
    extra: dict[str, Any] = {
        **params,  # AWS_S3_OBJECT_PARAMETERS, as a multipart upload's object gets them
        "ContentType": stored.content_type,
        "MetadataDirective": "REPLACE",
    }
    acl = getattr(storage, "default_acl", None)
    if acl:
        extra["ACL"] = acl
    if stored.etag:
        extra["CopySourceIfMatch"] = stored.etag
    try:
        client.copy_object(
            Bucket=storage.bucket_name,
            Key=storage._normalize_name(final),
            CopySource={"Bucket": storage.bucket_name, "Key": storage._normalize_name(stored.name)},
            **extra,
        )
    except Exception as exc:
        status = _status(exc)
        if status in (403, 404):
            raise UploadRefused(NOT_UPLOADED, code="not_uploaded") from exc
        if status == 412:
            raise UploadRefused(
                "was uploaded again while being claimed: send the request again.",
                code="changed",
            ) from exc
        raise StorageUnavailable(f"CopyObject failed: {type(exc).__name__}") from exc


def delete_direct(key: str) -> None:
    """Delete a claimed key's direct object (after the claim's commit). A failure is logged,
    not raised: the object is no row's file, so ``prune --orphans`` deletes it later."""
    _delete(key, "the claimed direct upload")


def delete_copy(final: str) -> None:
    """Delete the copy of a claim whose row was refused (no row points to it)."""
    _delete(final, "the copy of a refused claim")


def _delete(name: str, what: str) -> None:
    try:
        upload_storage().delete(name)
    except Exception as exc:
        logger.warning(
            "could not delete %s %s (%s); prune --orphans will", what, name, type(exc).__name__
        )


def _validate(name: str, size: int | None) -> str:
    try:
        return validate_upload(Named(name, size))
    except ValidationError as exc:
        raise UploadRefused(exc.messages[0], code=str(exc.code or "invalid")) from exc


@dataclass(frozen=True)
class Named:
    """A file's name and size, as the upload checks read them."""

    name: str
    size: int | None


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None
