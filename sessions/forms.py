from django import forms
from django.forms import formset_factory
from django.utils.translation import gettext_lazy as _

from odr.models import Court, Language, Specialisation
from sessions.models import CaseStatus
from sessions.selectors import mediator_users


class MediatorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        profile = user.mediator_profile
        return (
            f"{user.display_name} — {profile.get_kind_display()}, {profile.get_region_display()}; "
            f"{profile.get_languages_display()}; {profile.get_specialisations_display()}"
        )


class ApplicationForm(forms.Form):
    category = forms.ChoiceField(
        label=_("Category of the dispute"), choices=[("", "—"), *Specialisation.choices]
    )
    description = forms.CharField(
        label=_("Short description of the dispute"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("What the dispute is about, in a few sentences. Do not include confidential details yet."),
    )
    language = forms.ChoiceField(label=_("Language of the procedure"), choices=Language.choices)
    court = forms.ModelChoiceField(
        label=_("Court (if the dispute is already before a court)"),
        queryset=Court.objects.filter(is_active=True),
        required=False,
        empty_label=_("Not before a court"),
    )
    court_case_number = forms.CharField(label=_("Court case number"), max_length=64, required=False)
    mediator = MediatorChoiceField(
        label=_("Mediator"),
        queryset=mediator_users(),
        required=False,
        empty_label=_("Assign one for me"),
    )

    def clean(self):
        data = super().clean()
        if data.get("court_case_number") and not data.get("court"):
            self.add_error("court", _("Choose the court the case number belongs to."))
        return data


class OtherPartyForm(forms.Form):
    name = forms.CharField(label=_("Other party's name"), max_length=150)
    email = forms.EmailField(label=_("Other party's email"))


OtherPartyFormSet = formset_factory(
    OtherPartyForm, extra=0, min_num=1, validate_min=True, max_num=20, validate_max=True
)


class ChooseMediatorForm(forms.Form):
    mediator = MediatorChoiceField(
        label=_("Mediator"), queryset=mediator_users(), required=False, empty_label=_("Assign one for me")
    )

    def __init__(self, *args, case=None, **kwargs):
        super().__init__(*args, **kwargs)
        if case is not None:
            self.fields["mediator"].queryset = mediator_users(case=case)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        choices=[(CaseStatus.SETTLED, CaseStatus.SETTLED.label), (CaseStatus.NOT_SETTLED, CaseStatus.NOT_SETTLED.label)],
        widget=forms.RadioSelect,
    )


class TermExtensionForm(forms.Form):
    new_ends_on = forms.DateField(label=_("New end of the term"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class InviteForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    email = forms.EmailField(label=_("Email"))
