"""Documents shared in a room: checked by content, sealed with the case's
data key, stored outside the web root."""

import os
import unicodedata

import filetype
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from odr.audit import SYSTEM, Origin
from odr.models import AuditAction, User
from sessions.models import EventKind, Room, RoomDocument
from sessions.services import confidentiality, rooms
from sessions.services.rooms import RoomRefused

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"
# What may be shared, as detected from the bytes; the uploader's name and
# Content-Type are never trusted.
ALLOWED_TYPES = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    DOCX,
    ODT,
    "text/plain",
}
_TEXT_CONTROLS_ALLOWED = {"\t", "\n", "\r", "\f"}


def sniff(upload: UploadedFile) -> str | None:
    """The file's type from its content: a known binary signature, or UTF-8
    text without control characters; None otherwise."""
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    if b"\x00" in head:
        return None
    data = b"".join(upload.chunks())
    upload.seek(0)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(unicodedata.category(c) == "Cc" and c not in _TEXT_CONTROLS_ALLOWED for c in text):
        return None
    return "text/plain"


# The extensions each detected type may keep; the first is added otherwise.
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    DOCX: (".docx",),
    ODT: (".odt",),
    "text/plain": (".txt",),
}


def clean_name(name: str, content_type: str) -> str:
    """A display name for the file: no path, no control characters, and an
    extension that matches what the file is. A text file named `offer.html`
    or `logo.svg` is saved as `offer.html.txt`: once downloaded, it opens as
    text, never as a web page with scripts."""
    name = os.path.basename(name.replace("\\", "/"))
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    name = (name or _("document"))[:200]
    allowed = EXTENSIONS.get(content_type, ())
    if allowed and not name.lower().endswith(allowed):
        name = name.rstrip(". ") + allowed[0]
    return name


def document_share(
    *, room: Room, user: User, upload: UploadedFile, origin: Origin = SYSTEM
) -> RoomDocument:
    """Share a file in a room: a sequenced `document` event and an audit row."""
    if upload.size > settings.ODR_UPLOAD_MAX_BYTES:
        raise RoomRefused(
            _("The file is larger than %(limit)d MB.") % {"limit": settings.ODR_UPLOAD_MAX_BYTES // (1024 * 1024)},
            code="too_large",
        )
    content_type = sniff(upload)
    if content_type not in ALLOWED_TYPES:
        raise RoomRefused(
            _("This kind of file cannot be shared. Share a PDF, an image, a DOCX or ODT document, or plain text."),
            code="bad_request",
        )
    upload.seek(0)
    plaintext = upload.read()
    document = None
    try:
        with transaction.atomic():
            room = rooms.lock_room(room)
            current = rooms.check_may_speak(room=room, user=user)
            cipher = confidentiality.case_cipher(room.case)
            name = clean_name(upload.name or "", content_type)
            document = RoomDocument(
                room=room, shared_by=current.participant, content_type=content_type, size=len(plaintext)
            )
            document.name_sealed = cipher.seal_text(name, aad=confidentiality.document_aad(document, "name"))
            sealed = cipher.seal(plaintext, aad=confidentiality.document_aad(document, "file"))
            document.file.save("upload", ContentFile(sealed), save=False)
            document.save()
            document.name = name
            rooms.append_event(room, EventKind.DOCUMENT, actor=current.participant, document=document)
            rooms.audit_room(
                AuditAction.DOCUMENT_SHARED, user=user, origin=origin, room=room,
                document=str(document.public_id), size=document.size, content_type=content_type,
            )
    except BaseException:
        # Nothing half written: a file whose row did not commit is removed.
        if document is not None and document.file.name:
            document.file.storage.delete(document.file.name)
        raise
    return document
