"""The agreement as a document: its words laid out per language, the frozen
PDF with one signature box per signatory, and the stamp text of a box.

Layout is WeasyPrint's; the signature boxes become PDF signature fields at
the positions WeasyPrint reports for them (`Page.anchors`)."""

import datetime
import io
from dataclasses import dataclass

import segno
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields

from agreements import texts
from agreements.models import LAYOUT_LANGUAGES
from odr.pdf import FONT_FACES, render_document

CSS_PX_TO_PT = 0.75


@dataclass(frozen=True)
class Person:
    name: str
    role: str  # claimant, respondent, mediator
    field: str = ""


def verify_url(code: str = "") -> str:
    url = settings.SITE_URL.rstrip("/") + reverse("agreements:verify")
    return f"{url}?code={code}" if code else url


def _role_label(role: str, languages) -> str:
    return " / ".join(texts.LABELS[language][role] for language in languages)


def document_context(*, reference: str, layout: str, content: dict[str, str], people: list[Person],
                     date: datetime.date, verification_code: str = "") -> dict:
    """What the document templates need, every word in the document's own
    language(s)."""
    languages = LAYOUT_LANGUAGES[layout]
    labels = []
    for language in languages:
        words = dict(texts.LABELS[language], language=language)
        words["people"] = [{"name": p.name, "role": texts.LABELS[language][p.role]} for p in people]
        labels.append(words)
    rows = []
    for number, key in enumerate(texts.FIELDS[1:], start=1):  # the place is in the heading
        rows.append([
            {"language": language, "number": number, "heading": texts.LABELS[language][key],
             "text": content.get(f"{language}.{key}", "")}
            for language in languages
        ])
    places = [content.get(f"{language}.place", "") for language in languages]
    for words, place in zip(labels, places, strict=True):
        words["place_value"] = place
    return {
        "languages": languages,
        "columns": len(languages),
        "labels": labels,
        "rows": rows,
        "reference": reference,
        "date": date.strftime("%d.%m.%Y"),
        "case_label": " / ".join(texts.LABELS[language]["case"] for language in languages),
        "page_label": " / ".join(texts.LABELS[language]["page"] for language in languages),
        "signatures_title": " / ".join(texts.LABELS[language]["signatures"] for language in languages),
        "signers": [{"name": p.name, "role": _role_label(p.role, languages), "field": p.field} for p in people],
        "verification_code": verification_code,
        "verify_url": verify_url(),
    }


def render_frozen_pdf(doc: dict) -> bytes:
    """The PDF to be signed: the agreement, then the signature page with a
    verification code, a QR code to the verification page and an empty
    signature field per signatory."""
    qr = segno.make(verify_url(doc["verification_code"]), error="m")
    html = render_to_string(
        "agreements/pdf/agreement.html",
        {"doc": doc, "font_faces": FONT_FACES, "qr_svg": qr.svg_inline(scale=3, omitsize=True)},
    )
    document = render_document(html)
    boxes = {}
    for index, page in enumerate(document.pages):
        for signer in doc["signers"]:
            if signer["field"] in page.anchors:
                boxes[signer["field"]] = (index, page.height, page.anchors[signer["field"]])
    missing = [s["field"] for s in doc["signers"] if s["field"] not in boxes]
    if missing:
        raise RuntimeError(f"The layout lost the signature boxes {missing}.")
    writer = IncrementalPdfFileWriter(io.BytesIO(document.write_pdf()))
    for name, (index, height, (x1, y1, x2, y2)) in boxes.items():
        # CSS pixels from the top-left → PDF points from the bottom-left.
        box = (x1 * CSS_PX_TO_PT, (height - y2) * CSS_PX_TO_PT, x2 * CSS_PX_TO_PT, (height - y1) * CSS_PX_TO_PT)
        fields.append_signature_field(writer, fields.SigFieldSpec(sig_field_name=name, on_page=index, box=box))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def render_body_html(doc: dict) -> str:
    """The agreement's words as HTML for the signing page (same template as the PDF)."""
    return render_to_string("agreements/pdf/body.html", {"doc": doc})


def stamp_text(*, name: str, role: str, method: str, signed_at: datetime.datetime, layout: str) -> str:
    """What a signer's box shows once signed: who, as what, when, and how."""
    languages = LAYOUT_LANGUAGES[layout]
    when = timezone.localtime(signed_at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "\n".join([
        " / ".join(texts.LABELS[language]["signed"] for language in languages) + f": {name}",
        _role_label(role, languages),
        when,
        *(texts.LABELS[language][method] for language in languages),
    ])
