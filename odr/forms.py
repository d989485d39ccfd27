from django import forms
from django.utils.translation import gettext_lazy as _

from odr.models import Language, User


class SignupForm(forms.Form):
    """Extra sign-up fields; allauth's own form supplies email and password."""

    display_name = forms.CharField(
        label=_("Your name"),
        max_length=150,
        help_text=_("As the other participants will see it."),
    )
    preferred_language = forms.ChoiceField(label=_("Preferred language"), choices=Language.choices)

    def signup(self, request, user):
        """Fields are saved by the account adapter."""


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "phone", "preferred_language"]
