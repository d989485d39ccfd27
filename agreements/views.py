"""The draft mediation agreement of a case."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from agreements import services
from odr import policy
from odr.audit import Origin
from odr.crypto import ContentDestroyed
from sessions.policies import access_case


@login_required
def draft(request, case_id):
    case = access_case(request.user, case_id)
    if not policy.can(request.user, "agreement.view_draft", case):
        raise Http404  # observers, before the undertaking, after destruction: as if absent
    if request.method == "POST":
        try:
            services.draft_save(
                case=case, user=request.user, text=request.POST.get("text", ""), origin=Origin.from_request(request)
            )
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("The draft was saved as a new version."))
            return redirect("agreements:draft", case.public_id)
    versions = list(case.drafts.select_related("created_by"))
    try:
        text = services.draft_text(versions[0]) if versions else ""
    except ContentDestroyed:
        raise Http404 from None
    return render(
        request,
        "agreements/draft.html",
        {
            "case": case,
            "latest": versions[0] if versions else None,
            "versions": versions,
            "text": text,
            "can_edit": policy.can(request.user, "agreement.edit_draft", case),
        },
    )
