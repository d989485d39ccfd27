"""Reading sealed content back in tests, through the product's own cipher."""

from sessions.models import RoomDocument, RoomEvent
from sessions.services import confidentiality


def opened(events) -> list[RoomEvent]:
    """Events (of one case) with `.text` opened; '' when redacted or destroyed."""
    events = list(events.select_related("room__case", "document") if hasattr(events, "select_related") else events)
    if not events:
        return []
    return confidentiality.reveal_events(events, events[0].room.case)


def texts(events) -> list[str]:
    return [event.text for event in opened(events)]


def document_name(document: RoomDocument) -> str:
    cipher = confidentiality.case_cipher(document.room.case)
    return confidentiality.reveal_document(document, cipher).name


def document_bytes(document: RoomDocument) -> bytes:
    return confidentiality.document_content(document, confidentiality.case_cipher(document.room.case))


def messages_of(case) -> list[RoomEvent]:
    """Every message of the case, opened."""
    return opened(RoomEvent.objects.filter(room__case=case, kind="message").order_by("room_id", "seq"))
