"""The audit log: append a hash-chained row, verify the chain.

`audit_record` is called by services inside their transaction, so a state
change and its audit row commit or roll back together.
"""

import datetime
import hashlib
import json
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from odr.models import AuditAction, AuditChainHead, AuditEvent, User

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Origin:
    """Where a request came from, recorded with every audit row and consent."""

    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> "Origin":
        return cls(
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        )


SYSTEM = Origin()


def _row_hash(event: AuditEvent) -> str:
    payload = {
        "id": event.id,
        "at": event.at.astimezone(datetime.timezone.utc).isoformat(),
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": event.details,
        "prev": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def audit_record(
    *,
    action: AuditAction,
    actor: User | None,
    origin: Origin = SYSTEM,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """Append one row to the chain, inside the caller's transaction."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(getattr(obj, "public_id", None) or obj.pk)
    with transaction.atomic():
        head, _created = AuditChainHead.objects.select_for_update().get_or_create(
            id=1, defaults={"last_hash": GENESIS_HASH}
        )
        event = AuditEvent(
            id=head.last_id + 1,
            at=timezone.now(),
            actor=actor if actor is not None and actor.pk else None,
            actor_label=(actor.email if actor is not None and actor.pk else "system"),
            action=AuditAction(action).value,
            object_type=object_type,
            object_id=object_id,
            ip=origin.ip,
            user_agent=origin.user_agent[:512],
            details=details or {},
            prev_hash=head.last_hash,
        )
        event.hash = _row_hash(event)
        event.save(force_insert=True)
        head.last_hash = event.hash
        head.last_id = event.id
        head.count += 1
        head.save(update_fields=["last_hash", "last_id", "count"])
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    problems: list[str]
    last_hash: str


def audit_verify(*, batch_size: int = 2000) -> ChainReport:
    """Recompute every row's hash and link; compare the end with the head."""
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    expected_id = 1
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        if event.id != expected_id:
            problems.append(f"row #{expected_id} is missing (next row is #{event.id})")
        if event.prev_hash != expected_prev:
            problems.append(f"row #{event.id} does not link to the row before it")
        if _row_hash(event) != event.hash:
            problems.append(f"row #{event.id} was changed after it was written")
        expected_prev = event.hash
        expected_id = event.id + 1
        checked += 1
    head = AuditChainHead.objects.filter(id=1).first()
    if head is None:
        if checked:
            problems.append("the chain head is missing")
    else:
        if head.count != checked or head.last_id != expected_id - 1:
            problems.append(
                f"the chain head records {head.count} rows ending at #{head.last_id}, "
                f"found {checked} ending at #{expected_id - 1}"
            )
        if head.last_hash != expected_prev:
            problems.append("the last row's hash does not match the chain head")
    return ChainReport(ok=not problems, checked=checked, problems=problems, last_hash=expected_prev)
