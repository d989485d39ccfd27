from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from odr.audit import Origin
from odr.forms import ProfileForm
from odr.http import safe_next
from odr.models import Language
from odr.services import user_profile_update


@never_cache
def keepalive(request):
    """Renews the session (SESSION_SAVE_EVERY_REQUEST) while someone works in
    a room over the WebSocket alone; 401 once it has expired."""
    return HttpResponse(status=204 if request.user.is_authenticated else 401)


def home(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "odr/home.html")


@login_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user_profile_update(
            user=request.user, changes=form.cleaned_data, origin=Origin.from_request(request)
        )
        messages.success(request, _("Your profile was saved."))
        return redirect("profile")
    return render(request, "odr/profile.html", {"form": form})


@require_POST
def language_switch(request):
    """Switch the interface language; a signed-in user's preference is saved."""
    language = request.POST.get("language", "")
    next_url = safe_next(request, request.POST.get("next"), "/")
    if language not in Language.values:
        messages.error(request, _("Unknown language."))
        return redirect(next_url)
    if request.user.is_authenticated:
        user_profile_update(
            user=request.user,
            changes={"preferred_language": language},
            origin=Origin.from_request(request),
        )
    translation.activate(language)
    response = redirect(next_url)
    response.set_cookie("django_language", language, samesite="Lax", max_age=365 * 24 * 3600)
    return response
