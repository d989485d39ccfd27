"""The court portal: a court's users see the filings made to their court
(and only those), verify and download the sealed agreement, and answer."""

import datetime
import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from agreements.models import COURT_ANSWERS, Filing, FilingEvent, FilingStatus
from agreements.selectors import filings_for_court, verify_code
from agreements.services import filing as filing_services
from agreements.services import issuing
from agreements.views import pdf_response
from odr import policy
from odr.audit import Origin


def _court(request):
    if not policy.can(request.user, "court.work"):
        raise Http404
    return policy.court_of(request.user)


def _filing(request, filing_id) -> Filing:
    try:
        filing = Filing.objects.select_related("case", "court", "agreement").get(public_id=uuid.UUID(str(filing_id)))
    except (Filing.DoesNotExist, ValueError):
        raise Http404 from None
    if not policy.can(request.user, "filing.court", filing):
        raise Http404
    return filing


def _date(value: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


@login_required
def filings(request):
    court = _court(request)
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()[:64]
    since, until = _date(request.GET.get("from", "")), _date(request.GET.get("to", ""))
    rows = filings_for_court(court=court, status=status if status in FilingStatus.values else "", number=query,
                             since=since, until=until)
    page = Paginator(rows, 25).get_page(request.GET.get("page"))
    return render(request, "agreements/court/filings.html", {
        "court": court, "page": page, "statuses": FilingStatus.choices,
        "filters": {"status": status, "q": query, "from": request.GET.get("from", ""), "to": request.GET.get("to", "")},
    })


@login_required
def filing(request, filing_id):
    item = _filing(request, filing_id)
    verification = verify_code(item.agreement.verification_code)
    return render(request, "agreements/court/filing.html", {
        "filing": item, "events": item.events.select_related("actor"), "result": verification,
        "answers": [(s, FilingStatus(s).label) for s in COURT_ANSWERS],
    })


@login_required
def filing_pdf(request, filing_id):
    item = _filing(request, filing_id)
    pdf = issuing.agreement_download_for_court(filing=item, user=request.user, origin=Origin.from_request(request))
    return pdf_response(pdf, f"mediation-agreement-{item.case.reference}.pdf", inline=False)


@login_required
@require_POST
def filing_answer(request, filing_id):
    item = _filing(request, filing_id)
    status = request.POST.get("status", "")
    if status not in COURT_ANSWERS:
        messages.error(request, _("Choose received, approved or returned."))
        return redirect("agreements:court_filing", item.public_id)
    try:
        filing_services.filing_status_set(
            filing=item, status=status, reason=request.POST.get("reason", ""), source=FilingEvent.Source.PORTAL,
            actor=request.user, origin=Origin.from_request(request),
        )
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("The filing is now “%(status)s”.") % {"status": FilingStatus(status).label})
    return redirect("agreements:court_filing", item.public_id)
