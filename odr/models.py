"""Accounts, global roles, courts and the audit log."""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    KAZAKH = "kk", _("Kazakh")
    RUSSIAN = "ru", _("Russian")
    ENGLISH = "en", _("English")


class Specialisation(models.TextChoices):
    """Categories of dispute; a mediator's specialisations use the same set."""

    FAMILY = "family", _("Family")
    LABOUR = "labour", _("Labour")
    COMMERCIAL = "commercial", _("Commercial")
    CIVIL = "civil", _("Civil")
    ADMINISTRATIVE = "administrative", _("Administrative")
    CRIMINAL_MINOR = "criminal_minor", _("Criminal (minor and medium gravity)")
    INTER_ETHNIC = "inter_ethnic", _("Inter-ethnic")
    OTHER = "other", _("Other")


class Region(models.TextChoices):
    ASTANA = "astana", _("Astana")
    ALMATY_CITY = "almaty_city", _("Almaty")
    SHYMKENT = "shymkent", _("Shymkent")
    ABAI = "abai", _("Abai Region")
    AKMOLA = "akmola", _("Akmola Region")
    AKTOBE = "aktobe", _("Aktobe Region")
    ALMATY = "almaty", _("Almaty Region")
    ATYRAU = "atyrau", _("Atyrau Region")
    EAST_KAZAKHSTAN = "east_kazakhstan", _("East Kazakhstan Region")
    ZHAMBYL = "zhambyl", _("Zhambyl Region")
    ZHETISU = "zhetisu", _("Zhetisu Region")
    WEST_KAZAKHSTAN = "west_kazakhstan", _("West Kazakhstan Region")
    KARAGANDA = "karaganda", _("Karaganda Region")
    KOSTANAY = "kostanay", _("Kostanay Region")
    KYZYLORDA = "kyzylorda", _("Kyzylorda Region")
    MANGYSTAU = "mangystau", _("Mangystau Region")
    PAVLODAR = "pavlodar", _("Pavlodar Region")
    NORTH_KAZAKHSTAN = "north_kazakhstan", _("North Kazakhstan Region")
    TURKISTAN = "turkistan", _("Turkistan Region")
    ULYTAU = "ulytau", _("Ulytau Region")


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """Everyone who signs in. Any registered user may be a party to a case."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=150)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=2, choices=Language.choices, default=Language.RUSSIAN
    )
    is_staff = models.BooleanField(_("platform admin"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    # Set only by seed_demo; exempts the account from the 2FA requirement while
    # the site runs in demo mode (settings.ODR_DEMO_MODE), never otherwise.
    is_demo = models.BooleanField(default=False, editable=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self):
        return self.display_name or self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def get_full_name(self):
        return self.display_name

    def get_short_name(self):
        return self.display_name


class Court(models.Model):
    """A court that approves mediation agreements; managed by admins."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=255)
    region = models.CharField(_("region"), max_length=32, choices=Region.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("court")
        verbose_name_plural = _("courts")

    def __str__(self):
        return self.name


class CourtUser(models.Model):
    """Binds a user to the court they work for (the global role 'court user')."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="court_user")
    court = models.ForeignKey(Court, on_delete=models.PROTECT, related_name="users")
    position = models.CharField(_("position"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("court user")
        verbose_name_plural = _("court users")

    def __str__(self):
        return f"{self.user} — {self.court}"


class MediatorKind(models.TextChoices):
    PROFESSIONAL = "professional", _("Professional mediator")
    PUBLIC = "public", _("Public mediator")


def _validate_choice_list(value, choices, what):
    allowed = {choice for choice, _label in choices}
    if not isinstance(value, list) or not value:
        raise ValidationError(_("Choose at least one %(what)s.") % {"what": what})
    unknown = [item for item in value if item not in allowed]
    if unknown:
        raise ValidationError(
            _("Unknown %(what)s: %(values)s.") % {"what": what, "values": ", ".join(map(str, unknown))}
        )


def validate_languages(value):
    _validate_choice_list(value, Language.choices, _("language"))


def validate_specialisations(value):
    _validate_choice_list(value, Specialisation.choices, _("specialisation"))


class MediatorProfile(models.Model):
    """The global role 'mediator'. Only active mediators can be chosen for cases."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="mediator_profile")
    kind = models.CharField(_("kind"), max_length=16, choices=MediatorKind.choices)
    registry_number = models.CharField(_("registry number"), max_length=64, unique=True)
    languages = models.JSONField(_("languages"), default=list, validators=[validate_languages])
    specialisations = models.JSONField(
        _("specialisations"), default=list, validators=[validate_specialisations]
    )
    region = models.CharField(_("region"), max_length=32, choices=Region.choices)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("mediator profile")
        verbose_name_plural = _("mediator profiles")

    def __str__(self):
        return f"{self.user} ({self.get_kind_display()}, {self.registry_number})"

    def get_languages_display(self):
        labels = dict(Language.choices)
        return ", ".join(str(labels.get(code, code)) for code in self.languages)

    def get_specialisations_display(self):
        labels = dict(Specialisation.choices)
        return ", ".join(str(labels.get(code, code)) for code in self.specialisations)


class AuditAction(models.TextChoices):
    """The closed set of audited actions. Add a member for every new action."""

    USER_SIGNED_UP = "user.signed_up", _("Signed up")
    USER_LOGGED_IN = "user.logged_in", _("Logged in")
    USER_LOGGED_OUT = "user.logged_out", _("Logged out")
    USER_LOGIN_FAILED = "user.login_failed", _("Login failed")
    USER_PASSWORD_CHANGED = "user.password_changed", _("Password changed")
    USER_PASSWORD_RESET = "user.password_reset", _("Password reset")
    USER_MFA_ACTIVATED = "user.mfa_activated", _("Two-factor authentication enabled")
    USER_MFA_DEACTIVATED = "user.mfa_deactivated", _("Two-factor authentication removed")
    USER_PROFILE_CHANGED = "user.profile_changed", _("Profile changed")
    CASE_CREATED = "case.created", _("Application drafted")
    CASE_UPDATED = "case.updated", _("Application changed")
    CASE_SUBMITTED = "case.submitted", _("Application filed")
    CASE_TRANSITIONED = "case.transitioned", _("Case state changed")
    CASE_TERM_EXTENSION_PROPOSED = "case.term_extension_proposed", _("Term extension proposed")
    CASE_TERM_EXTENSION_CONSENTED = "case.term_extension_consented", _("Term extension consented")
    CASE_TERM_EXTENSION_REFUSED = "case.term_extension_refused", _("Term extension refused")
    CASE_TERM_EXTENDED = "case.term_extended", _("Term extended")
    INVITATION_SENT = "invitation.sent", _("Invitation sent")
    INVITATION_ACCEPTED = "invitation.accepted", _("Invitation accepted")
    INVITATION_DECLINED = "invitation.declined", _("Invitation declined")
    INVITATION_LAPSED = "invitation.lapsed", _("Invitation lapsed")
    MEDIATOR_PROPOSED = "mediator.proposed", _("Mediator proposed")
    MEDIATOR_ACCEPTED = "mediator.accepted", _("Mediator accepted the case")
    MEDIATOR_DECLINED = "mediator.declined", _("Mediator declined the case")
    MEDIATOR_LAPSED = "mediator.lapsed", _("Mediator did not answer in time")
    AGREEMENT_TO_MEDIATE_ACCEPTED = "atm.accepted", _("Agreement to mediate accepted")
    PARTICIPANT_WITHDREW = "participant.withdrew", _("Withdrew from the mediation")
    SESSION_STARTED = "session.started", _("Mediation session started")
    SESSION_ENDED = "session.ended", _("Mediation session ended")
    LOBBY_ADMITTED = "lobby.admitted", _("Admitted to a room")
    LOBBY_DECLINED = "lobby.declined", _("Not admitted to a room")
    PARTICIPANT_MUTED = "participant.muted", _("Participant muted")
    PARTICIPANT_UNMUTED = "participant.unmuted", _("Participant unmuted")
    PARTICIPANT_REMOVED = "participant.removed", _("Participant removed from a room")
    ROOM_LOCKED = "room.locked", _("Room locked")
    ROOM_UNLOCKED = "room.unlocked", _("Room unlocked")
    CAUCUS_OPENED = "caucus.opened", _("Caucus opened")
    CAUCUS_CLOSED = "caucus.closed", _("Caucus closed")
    MESSAGE_REDACTED = "message.redacted", _("Message redacted")
    DOCUMENT_SHARED = "document.shared", _("Document shared in a room")
    UNDERTAKING_ACCEPTED = "undertaking.accepted", _("Confidentiality undertaking accepted")
    CONTACTS_SHARING_CHANGED = "participant.contacts_sharing", _("Contact sharing changed")
    TRANSCRIPT_CONSENT_GIVEN = "transcript.consent_given", _("Consent to a transcript given")
    TRANSCRIPT_CONSENT_WITHDRAWN = "transcript.consent_withdrawn", _("Consent to a transcript withdrawn")
    TRANSCRIPT_EXPORTED = "transcript.exported", _("Transcript exported")
    LEGAL_HOLD_PLACED = "case.legal_hold_placed", _("Legal hold placed")
    LEGAL_HOLD_LIFTED = "case.legal_hold_lifted", _("Legal hold lifted")
    CONTENT_DESTROYED = "case.content_destroyed", _("Case content destroyed (retention)")
    BREAK_GLASS_OPENED = "case.break_glass", _("Break-glass access to case content")
    BREAK_GLASS_VIEWED = "case.break_glass_viewed", _("Case content read under break-glass access")
    MASTER_KEY_ROTATED = "keys.master_rotated", _("Master key rotated")
    DRAFT_SAVED = "agreement.draft_saved", _("Agreement draft saved")
    DRAFT_COMMENTED = "agreement.draft_commented", _("Comment or proposal on the agreement draft")
    AGREEMENT_FROZEN = "agreement.frozen", _("Agreement frozen for signing")
    AGREEMENT_CODE_SENT = "agreement.code_sent", _("Signing code sent")
    AGREEMENT_SIGNING_REFUSED = "agreement.signing_refused", _("Signature refused (wrong code or certificate)")
    AGREEMENT_SIGNED = "agreement.signed", _("Agreement signed")
    AGREEMENT_DECLINED = "agreement.declined", _("Signing declined")
    AGREEMENT_WITHDRAWN = "agreement.withdrawn", _("Agreement withdrawn from signing")
    AGREEMENT_SEALED = "agreement.sealed", _("Agreement sealed")
    AGREEMENT_DOWNLOADED = "agreement.downloaded", _("Sealed agreement downloaded")
    FILING_SUBMITTED = "filing.submitted", _("Agreement filed with the court")
    FILING_STATUS_CHANGED = "filing.status_changed", _("Filing status changed")
    COURT_TOKEN_CREATED = "court.token_created", _("Court API token created")
    COURT_TOKEN_REVOKED = "court.token_revoked", _("Court API token revoked")


class DataKey(models.Model):
    """A data key for one case's content, stored wrapped by the master key
    named `key_id` (see odr.crypto). Destroying it (crypto-shredding) clears
    `wrapped` for good; the row stays as the record that it happened."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Set on the platform's own keys (e.g. "accounts": 2FA secrets); a case's
    # key has none.
    purpose = models.CharField(max_length=32, null=True, blank=True, unique=True)
    key_id = models.CharField(max_length=16, db_index=True)
    wrapped = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"data key {self.public_id} ({'destroyed' if self.destroyed_at else self.key_id})"


class AuditEvent(models.Model):
    """Append-only, hash-chained record of security-relevant actions.

    Each row's hash covers its own fields and the previous row's hash, so
    changing or deleting any row breaks the chain (`manage.py verify_audit`).
    Database triggers refuse UPDATE and DELETE on this table.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=64, choices=AuditAction.choices, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id", "id"])]

    def __str__(self):
        return f"#{self.id} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")


class AuditChainHead(models.Model):
    """One row: the latest hash and the count, locked while a row is appended.

    It serialises appends (so the chain never forks) and lets verify_audit
    notice rows removed from the end of the chain.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64)
    last_id = models.BigIntegerField(default=0)
    count = models.BigIntegerField(default=0)


class OutboundEmail(models.Model):
    """An email waiting for the worker, sealed with the platform's "accounts"
    data key: emails carry secrets (password-reset and verification links,
    invitation links, signing codes), so the job queue holds only this row's
    id and the row is deleted once the email is handed to the mail server.
    `kind` (the template) is the only readable part, for operators."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=128)
    sealed = models.BinaryField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self):
        return f"email {self.public_id} ({self.kind})"
