"""Access control of the mediation agreement, tested as an attacker would.

1. The policy as tables (policy.can per role) for every agreement action, in
   each state an agreement goes through: a draft being written; a version
   being signed; after the claimant signed; a declined round; a withdrawn
   round; the sealed agreement (the case settled); the sealed agreement once
   retention destroyed the case's content.
2. Every URL of agreements/urls.py over HTTP (the real middleware stack), per
   role and state: status codes, or what the request did.
3. Forged ids: another case's agreement or draft under this case's URLs, and
   random ids, get 404 and change nothing.
4. Stored XSS: comments, proposals, decline reasons and the draft's sections
   are escaped on every page that shows them.
5. The sealed PDF: every download audited, served as an attachment, not cached.

Roles: the claimant, the respondent, the respondent's representative, the
case's mediator, an observer, another mediator, a court user, an
administrator, a stranger, anonymous. The signatories are the two parties and
the mediator only (not the representative, not the observer).
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from agreements.models import Agreement, AgreementStatus, DraftComment, SignerStatus, SigningCode
from agreements.services import drafts, issuing, signing
from odr import policy
from odr.models import AuditAction, AuditEvent
from sessions.models import Case, CaseStatus, Role
from sessions.services import intake, invitations, mediators, retention
from tests.agreements.conftest import RU_TERMS, complete_fields, emailed_code, totp_code
from tests.case_fixtures import accept_all_invitations, accept_atm, accept_undertaking
from tests.conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db

ROLES = [
    "claimant", "respondent", "representative", "mediator", "observer",
    "other_mediator", "court_user", "admin", "stranger", "anonymous",
]
SIGNATORIES = {"claimant", "respondent", "mediator"}
# Those who read the draft and keep the sealed agreement: not observers.
READERS = {"claimant", "respondent", "representative", "mediator"}


# --- The world: one case, its people, its agreement ------------------------------------------------


@pytest.fixture
def people(one_user_per_role):
    return one_user_per_role


@dataclass
class World:
    case: Case
    people: dict
    run_jobs: Callable
    agreement: Agreement | None = None

    def user(self, role):
        return self.people[role]

    def refresh(self) -> None:
        self.case.refresh_from_db()
        if self.agreement is not None:
            self.agreement = Agreement.objects.select_related("case", "draft").get(pk=self.agreement.pk)


@pytest.fixture
def world(dev_pki, active_case, people, draft_factory, run_jobs, outbox, origin) -> World:
    """An active case with a representative (of the respondent) and an
    observer, both bound by the undertaking, and two versions of the draft
    (kk-ru), the mediator's. No signing round yet."""
    case = active_case
    representation = invitations.invitation_create(
        case=case, actor=people["respondent"], role=Role.REPRESENTATIVE, name="Rustem Representative",
        email=people["representative"].email, origin=origin,
    )
    invitations.invitation_accept(invitation=representation, user=people["representative"], origin=origin)
    observation = invitations.invitation_create(
        case=case, actor=people["mediator"], role=Role.OBSERVER, name="Olga Observer",
        email=people["observer"].email, origin=origin,
    )
    invitations.invitation_accept(invitation=observation, user=people["observer"], origin=origin)
    for role in ("representative", "observer"):
        accept_undertaking(case, people[role], origin)
    draft_factory()
    draft_factory(**{"ru.terms": RU_TERMS + " Проценты не начисляются."})
    case.refresh_from_db()
    assert case.participants.get(user=people["representative"]).represents.user == people["respondent"]
    return World(case, people, run_jobs)


def freeze(world: World) -> Agreement:
    world.agreement = signing.agreement_freeze(
        case=world.case, user=world.user("mediator"), draft=world.case.drafts.first(), origin=ORIGIN
    )
    return world.agreement


def sign(world: World, role: str) -> None:
    """The role signs: the parties with a code sent by email, the mediator
    with their authenticator app."""
    user, agreement = world.user(role), world.agreement
    if role == "mediator":
        code = totp_code(user)
    else:
        signing.signing_code_send(agreement=agreement, user=user, origin=ORIGIN)
        world.run_jobs()
        code = emailed_code(user)
    signing.agreement_sign(agreement=agreement, user=user, document_sha256=agreement.frozen_sha256, consent=True,
                           code=code, origin=ORIGIN)


def seal(world: World) -> Agreement:
    freeze(world)
    for role in ("claimant", "respondent", "mediator"):
        sign(world, role)
    world.run_jobs()
    world.refresh()
    assert world.agreement.status == AgreementStatus.SEALED
    assert world.case.status == CaseStatus.SETTLED
    return world.agreement


def destroy(world: World) -> None:
    """Retention: the case's content is destroyed on its date."""
    assert retention.case_content_destroy(case_id=world.case.pk, now=retention.destruction_date(world.case))
    world.refresh()
    assert world.case.content_destroyed_at is not None


def reach(world: World, state: str) -> None:
    if state == "draft":
        pass
    elif state == "signing":
        freeze(world)
    elif state == "claimant_signed":
        freeze(world)
        sign(world, "claimant")
        assert dict(world.agreement.signers.values_list("role", "status")) == {
            Role.CLAIMANT: SignerStatus.SIGNED, Role.RESPONDENT: SignerStatus.PENDING,
            Role.MEDIATOR: SignerStatus.PENDING,
        }
    elif state == "declined":
        freeze(world)
        signing.agreement_decline(agreement=world.agreement, user=world.user("respondent"),
                                  reason="The date does not suit us.", origin=ORIGIN)
    elif state == "withdrawn":
        freeze(world)
        signing.agreement_withdraw(agreement=world.agreement, user=world.user("mediator"),
                                   reason="A typo in the terms.", origin=ORIGIN)
    elif state == "sealed":
        seal(world)
    elif state == "destroyed":
        seal(world)
        destroy(world)
    else:
        raise AssertionError(state)
    world.refresh()


# --- 1. The policy, as tables ------------------------------------------------------------------------

# Actions on the case (drafting), and on one signing round (an Agreement).
CASE_ACTIONS = ("agreement.view_page", "agreement.view_draft", "agreement.edit_draft", "agreement.comment",
                "agreement.freeze")
ROUND_ACTIONS = ("agreement.sign", "agreement.decline", "agreement.withdraw", "agreement.download", "agreement.file")

DRAFTING = {
    # The agreement page and the draft: the parties, the representative and
    # the mediator; never observers, nor anyone outside the case.
    "agreement.view_page": READERS,
    "agreement.view_draft": READERS,
    # Only the mediator writes versions and freezes one for signing.
    "agreement.edit_draft": {"mediator"},
    "agreement.freeze": {"mediator"},
    # Everyone who reads comments (proposals are how the parties ask for changes).
    "agreement.comment": READERS,
}
ENDED_ROUND = {
    "agreement.sign": set(),
    "agreement.decline": set(),
    "agreement.withdraw": set(),
    "agreement.download": set(),
    "agreement.file": set(),
}
AGREEMENT_POLICY = {
    # A draft, no signing round yet (so no round to act on).
    "draft": DRAFTING,
    # A version frozen for signing. Who may draft or freeze does not change
    # (the services refuse a new version or a second round while one is
    # signed); the signatories sign or decline, the mediator may withdraw it.
    "signing": {
        **DRAFTING,
        "agreement.sign": SIGNATORIES,
        "agreement.decline": SIGNATORIES,
        "agreement.withdraw": {"mediator"},
        "agreement.download": set(),
        "agreement.file": set(),
    },
    # The claimant signed: signing is over for them, declining is not.
    "claimant_signed": {
        **DRAFTING,
        "agreement.sign": {"respondent", "mediator"},
        "agreement.decline": SIGNATORIES,
        "agreement.withdraw": {"mediator"},
        "agreement.download": set(),
        "agreement.file": set(),
    },
    # A round declined (or withdrawn) is over; the draft is open for revision.
    "declined": {**DRAFTING, **ENDED_ROUND},
    "withdrawn": {**DRAFTING, **ENDED_ROUND},
    # Sealed, the case settled: the draft is read-only; the sealed agreement
    # is the parties', the representative's and the mediator's.
    "sealed": {
        "agreement.view_page": READERS,
        "agreement.view_draft": READERS,
        "agreement.edit_draft": set(),
        "agreement.comment": set(),
        "agreement.freeze": set(),
        "agreement.sign": set(),
        "agreement.decline": set(),
        "agreement.withdraw": set(),
        "agreement.download": READERS,
        # Filing with the court: a party or the mediator.
        "agreement.file": SIGNATORIES,
    },
    # Retention destroyed the case's content: the draft is gone for
    # everyone; the page and the sealed agreement stay for the same people.
    "destroyed": {
        "agreement.view_page": READERS,
        "agreement.view_draft": set(),
        "agreement.edit_draft": set(),
        "agreement.comment": set(),
        "agreement.freeze": set(),
        "agreement.sign": set(),
        "agreement.decline": set(),
        "agreement.withdraw": set(),
        "agreement.download": READERS,
        # Filing with the court: a party or the mediator.
        "agreement.file": SIGNATORIES,
    },
}

# Every agreement action tabled here (test_policy_table checks that every
# registered action is covered by a table somewhere).
AGREEMENT_ACTIONS = frozenset(action for table in AGREEMENT_POLICY.values() for action in table)

# A filing of the sealed agreement: its status for everyone who opens the
# agreement page; the filing itself for the users of its court only.
FILING_POLICY = {
    "filing.view": READERS,
    "filing.court": {"court_user"},
}
FILING_ACTIONS = frozenset(FILING_POLICY)


def allowed(world: World, action: str, obj) -> set[str]:
    return {role for role in ROLES if policy.can(world.user(role), action, obj)}


def test_every_registered_agreement_action_is_tabled_here():
    registered = {action for action in policy.registered_actions() if action.startswith("agreement.")}
    assert AGREEMENT_ACTIONS == registered == {*CASE_ACTIONS, *ROUND_ACTIONS}


@pytest.mark.parametrize("state", list(AGREEMENT_POLICY))
def test_when_the_agreement_is_in_a_state_then_its_policy_is_as_tabled(world, state):
    reach(world, state)
    table = AGREEMENT_POLICY[state]
    # Every action is tabled wherever it has an object to act on.
    assert set(table) == {*CASE_ACTIONS, *(ROUND_ACTIONS if world.agreement is not None else ())}
    actual = {
        action: allowed(world, action, world.case if action in CASE_ACTIONS else world.agreement)
        for action in table
    }
    assert actual == table


# --- 2. The matrix over HTTP -------------------------------------------------------------------------

# Answers, beside status codes.
LOGIN = "login"  # 302 to the login page
REAUTH = "reauth"  # 302 to allauth's re-authentication page
REFUSED = "refused"  # 302 back to the agreement page, nothing done
PDF = "pdf"  # 200, application/pdf
# What a POST (or the audited download) did.
SAVED, COMMENTED, FROZEN, CODE_SENT, DECLINED, WITHDRAWN, DOWNLOADED = (
    "saved", "commented", "frozen", "code sent", "declined", "withdrawn", "downloaded (pdf, audited)"
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: Callable[[World], str]
    data: Callable[[World, str], dict] | None = None
    reauthenticated: bool = False  # the browser re-authenticated first
    effect: Callable[[World], object] | None = None  # a snapshot; changed → `label`
    label: str = ""


def _case_url(name):
    return lambda w: reverse(f"agreements:{name}", args=[w.case.public_id])


def _round_url(name):
    return lambda w: reverse(f"agreements:{name}", args=[w.case.public_id, w.agreement.public_id])


def _latest_id(w: World) -> str:
    return str(w.case.drafts.first().public_id)


def _draft_form(w: World, role: str) -> dict:
    fields = complete_fields("kk-ru")
    fields["ru.terms"] = f"{RU_TERMS} Редакция: {role} {uuid.uuid4().hex[:6]}."
    return {"layout": "kk-ru", **fields}


def _downloads(w: World) -> int:
    return AuditEvent.objects.filter(action=AuditAction.AGREEMENT_DOWNLOADED,
                                     object_id=str(w.case.public_id)).count()


ENDPOINTS = {
    "agreement page": Endpoint("get", _case_url("agreement")),
    "draft page": Endpoint("get", _case_url("draft")),
    "draft save": Endpoint("post", _case_url("draft"), _draft_form,
                           effect=lambda w: w.case.drafts.count(), label=SAVED),
    "compare": Endpoint("get", _case_url("compare")),
    "comment": Endpoint("post", _case_url("comment"),
                        lambda w, role: {"draft": _latest_id(w), "text": f"A comment by the {role}."},
                        effect=lambda w: DraftComment.objects.filter(draft__case=w.case).count(), label=COMMENTED),
    "freeze": Endpoint("post", _case_url("freeze"), lambda w, role: {"draft": _latest_id(w)},
                       effect=lambda w: w.case.agreements.count(), label=FROZEN),
    "sign page": Endpoint("get", _round_url("sign")),
    "sign page, re-authenticated": Endpoint("get", _round_url("sign"), reauthenticated=True),
    "send code, re-authenticated": Endpoint(
        "post", _round_url("sign"), lambda w, role: {"action": "send_code"}, reauthenticated=True,
        effect=lambda w: SigningCode.objects.filter(agreement__case=w.case).count(), label=CODE_SENT),
    "decline": Endpoint("post", _round_url("decline"),
                        lambda w, role: {"action": "decline", "reason": "We do not agree with the date."},
                        effect=lambda w: w.case.agreements.filter(status=AgreementStatus.DECLINED).count(),
                        label=DECLINED),
    "withdraw": Endpoint("post", _round_url("decline"),
                         lambda w, role: {"action": "withdraw", "reason": "A typo in the terms."},
                         effect=lambda w: w.case.agreements.filter(status=AgreementStatus.WITHDRAWN).count(),
                         label=WITHDRAWN),
    "frozen pdf": Endpoint("get", _round_url("frozen_pdf")),
    "sealed pdf": Endpoint("get", _round_url("sealed_pdf"), effect=_downloads, label=DOWNLOADED),
    "verify": Endpoint("get", lambda w: reverse("agreements:verify")),
    "verify upload": Endpoint("post", lambda w: reverse("agreements:verify"), lambda w, role: {}),
}
CASE_ENDPOINTS = ["agreement page", "draft page", "draft save", "compare", "comment", "freeze", "verify",
                  "verify upload"]


def row(claimant, respondent, representative, mediator, observer) -> dict:
    """One line of the matrix: the answers of the case's people as given;
    everyone else cannot tell the case exists (404), and anonymous visitors
    are sent to sign in."""
    return {
        "claimant": claimant, "respondent": respondent, "representative": representative,
        "mediator": mediator, "observer": observer,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    }


PUBLIC = {role: 200 for role in ROLES}  # the verification page: everyone, signed in or not
NOT_FOUND = row(404, 404, 404, 404, 404)

HTTP_MATRIX = {
    "draft": {
        "agreement page": row(200, 200, 200, 200, 404),
        "draft page": row(200, 200, 200, 200, 404),
        "draft save": row(403, 403, 403, SAVED, 404),
        "compare": row(200, 200, 200, 200, 404),
        "comment": row(COMMENTED, COMMENTED, COMMENTED, COMMENTED, 404),
        # Who may not freeze cannot see a freeze URL either.
        "freeze": row(404, 404, 404, FROZEN, 404),
        "verify": PUBLIC,
        "verify upload": PUBLIC,
    },
    "signing": {
        "agreement page": row(200, 200, 200, 200, 404),
        "draft page": row(200, 200, 200, 200, 404),
        # The mediator's form says the version is frozen; nothing saved.
        "draft save": row(403, 403, 403, 200, 404),
        "compare": row(200, 200, 200, 200, 404),
        "comment": row(COMMENTED, COMMENTED, COMMENTED, COMMENTED, 404),
        "freeze": row(404, 404, 404, REFUSED, 404),
        # Re-authentication is asked of those who read the draft (the
        # representative too, told after it that they do not sign), never
        # before the 404 of those who may not know the case.
        "sign page": row(REAUTH, REAUTH, REAUTH, REAUTH, 404),
        # The representative reads the draft but does not sign.
        "sign page, re-authenticated": row(200, 200, 404, 200, 404),
        "send code, re-authenticated": row(CODE_SENT, CODE_SENT, 404, CODE_SENT, 404),
        "decline": row(DECLINED, DECLINED, REFUSED, DECLINED, 404),
        "withdraw": row(REFUSED, REFUSED, REFUSED, WITHDRAWN, 404),
        "frozen pdf": row(PDF, PDF, PDF, PDF, 404),
        "sealed pdf": NOT_FOUND,
        "verify": PUBLIC,
        "verify upload": PUBLIC,
    },
    "sealed": {
        "agreement page": row(200, 200, 200, 200, 404),
        "draft page": row(200, 200, 200, 200, 404),
        "draft save": row(403, 403, 403, 403, 404),
        "compare": row(200, 200, 200, 200, 404),
        "comment": row(REFUSED, REFUSED, REFUSED, REFUSED, 404),
        "freeze": NOT_FOUND,
        "sign page": row(REAUTH, REAUTH, REAUTH, REAUTH, 404),
        "sign page, re-authenticated": row(200, 200, 404, 200, 404),
        "send code, re-authenticated": row(REFUSED, REFUSED, 404, REFUSED, 404),
        "decline": row(REFUSED, REFUSED, REFUSED, REFUSED, 404),
        "withdraw": row(REFUSED, REFUSED, REFUSED, REFUSED, 404),
        "frozen pdf": row(PDF, PDF, PDF, PDF, 404),
        "sealed pdf": row(DOWNLOADED, DOWNLOADED, DOWNLOADED, DOWNLOADED, 404),
        "verify": PUBLIC,
        "verify upload": PUBLIC,
    },
    "destroyed": {
        # Only the page with the sealed agreement, and its download, remain.
        "agreement page": row(200, 200, 200, 200, 404),
        "draft page": NOT_FOUND,
        "draft save": NOT_FOUND,
        "compare": NOT_FOUND,
        "comment": NOT_FOUND,
        "freeze": NOT_FOUND,
        "sign page": NOT_FOUND,
        "sign page, re-authenticated": NOT_FOUND,
        "send code, re-authenticated": NOT_FOUND,
        "decline": NOT_FOUND,
        "withdraw": NOT_FOUND,
        "frozen pdf": NOT_FOUND,
        "sealed pdf": row(DOWNLOADED, DOWNLOADED, DOWNLOADED, DOWNLOADED, 404),
        "verify": PUBLIC,
        "verify upload": PUBLIC,
    },
}


def client_as(world: World, role: str, *, reauthenticated: bool = False) -> Client:
    """A browser signed in as the role (force_login: no recent
    authentication), re-authenticated with the password if asked."""
    client = Client()
    if role != "anonymous":
        client.force_login(world.user(role))
        if reauthenticated:
            response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
            assert response.status_code == 302, response.content[:500]
    return client


def answer(world: World, response):
    """A response as the tables name it."""
    if response.status_code == 302:
        location = response["Location"].split("?")[0]
        if location.startswith(reverse("account_login")):
            return LOGIN
        if location.startswith(reverse("account_reauthenticate")):
            return REAUTH
        if location == reverse("agreements:agreement", args=[world.case.public_id]):
            return REFUSED
        return f"→ {location}"
    if response.status_code == 200 and response["Content-Type"] == "application/pdf":
        return PDF
    return response.status_code


def visit(world: World, clients: dict, role: str, endpoint: Endpoint):
    client = clients[role, endpoint.reauthenticated and role != "anonymous"]
    before = endpoint.effect(world) if endpoint.effect else None
    url = endpoint.url(world)
    if endpoint.method == "get":
        response = client.get(url)
    else:
        response = client.post(url, endpoint.data(world, role))
    if endpoint.effect is not None and endpoint.effect(world) != before:
        assert response.status_code in (200, 302), (role, url, response.status_code)
        return endpoint.label
    return answer(world, response)


def restore(world: World, state: str) -> None:
    """Back to the state under test after a request that changed it (a
    version frozen in the draft state; a round ended while signing)."""
    world.refresh()
    if state == "draft":
        for open_round in world.case.agreements.filter(status=AgreementStatus.SIGNING):
            signing.agreement_withdraw(agreement=open_round, user=world.user("mediator"),
                                       reason="Back to drafting.", origin=ORIGIN)
    elif state == "signing" and world.agreement.status != AgreementStatus.SIGNING:
        freeze(world)


@pytest.mark.parametrize("state", list(HTTP_MATRIX))
def test_when_each_role_requests_each_agreement_url_then_the_answer_is_as_tabled(world, state):
    reach(world, state)
    table = HTTP_MATRIX[state]
    if world.agreement is None:
        assert set(table) == set(CASE_ENDPOINTS)
    else:
        assert set(table) == set(ENDPOINTS)  # every URL of agreements/urls.py, GET and POST
    clients = {(role, fresh): client_as(world, role, reauthenticated=fresh)
               for role in ROLES for fresh in ((False, True) if role != "anonymous" else (False,))}
    actual = {}
    for name in table:
        actual[name] = {}
        for role in ROLES:
            actual[name][role] = visit(world, clients, role, ENDPOINTS[name])
            restore(world, state)
    wrong = [(name, role, actual[name][role], table[name][role])
             for name in table for role in ROLES if actual[name][role] != table[name][role]]
    assert not wrong, "\n".join(f"{n} as {r}: got {a!r}, expected {e!r}" for n, r, a, e in wrong)


def test_when_a_version_is_being_signed_then_the_mediator_still_reads_it_on_the_draft_page(world):
    """The mediator may read the draft (agreement.view_draft) and gets a 200
    for its page; while a version is signed the page must show its words, as
    it does for the parties (the editor is closed, so the preview is due)."""
    reach(world, "signing")
    url = reverse("agreements:draft", args=[world.case.public_id])
    for role in ("claimant", "representative", "mediator"):
        html = client_as(world, role).get(url).content.decode()
        assert 'id="draft-form"' not in html, role  # nobody edits a version being signed
        assert 'id="draft-text"' in html and escape(RU_TERMS) in html, role


def test_when_a_stranger_asks_for_the_sign_page_then_not_found_without_a_password_prompt(world):
    """However they ask (GET or POST, any action), nobody outside the case
    is offered re-authentication: that would tell them the agreement exists."""
    reach(world, "signing")
    url = reverse("agreements:sign", args=[world.case.public_id, world.agreement.public_id])
    for role in ("stranger", "other_mediator", "court_user", "admin", "observer"):
        client = client_as(world, role)
        assert client.get(url).status_code == 404, role
        for action in ("send_code", "sign", ""):
            response = client.post(url, {"action": action, "code": "123456", "consent": "yes",
                                         "document_sha256": world.agreement.frozen_sha256})
            assert response.status_code == 404, (role, action)
    assert not SigningCode.objects.exists()
    assert set(world.agreement.signers.values_list("status", flat=True)) == {SignerStatus.PENDING}


# --- 3. Forged ids -------------------------------------------------------------------------------------


@pytest.fixture
def case_b(world, user_factory, mediator_factory, application_factory, draft_factory, origin) -> World:
    """Another active case, with people of its own and a draft."""
    claimant = user_factory("b-claimant@example.kz", display_name="Berik Claimant")
    respondent = user_factory("b-respondent@example.kz", display_name="Bota Respondent")
    b_mediator = mediator_factory("b-mediator@example.kz", display_name="Baurzhan Mediator")
    case = intake.case_file(
        claimant=claimant, application=application_factory(respondent, mediator=b_mediator), origin=origin
    )
    accept_all_invitations(case, respondent, origin=origin)
    mediators.mediator_answer(case=case, user=b_mediator, accept=True, reason="", origin=origin)
    for user in (claimant, respondent, b_mediator):
        accept_atm(case, user, origin)
    for user in (claimant, respondent, b_mediator):
        accept_undertaking(case, user, origin)
    case.refresh_from_db()
    draft_factory(case=case, user=b_mediator)
    return World(case, {"claimant": claimant, "respondent": respondent, "mediator": b_mediator}, world.run_jobs)


def _round_urls(case_id, agreement_id) -> dict[str, tuple[str, str, dict]]:
    """Every URL that names a signing round: (method, url, data)."""
    return {
        "sign page": ("get", reverse("agreements:sign", args=[case_id, agreement_id]), {}),
        "send code": ("post", reverse("agreements:sign", args=[case_id, agreement_id]), {"action": "send_code"}),
        "decline": ("post", reverse("agreements:decline", args=[case_id, agreement_id]),
                    {"action": "decline", "reason": "Forged."}),
        "withdraw": ("post", reverse("agreements:decline", args=[case_id, agreement_id]),
                     {"action": "withdraw", "reason": "Forged."}),
        "frozen pdf": ("get", reverse("agreements:frozen_pdf", args=[case_id, agreement_id]), {}),
        "sealed pdf": ("get", reverse("agreements:sealed_pdf", args=[case_id, agreement_id]), {}),
    }


def _request(client, method, url, data):
    return client.get(url) if method == "get" else client.post(url, data)


def _snapshot() -> tuple:
    """Everything a forged request could have written."""
    return (
        AuditEvent.objects.count(), SigningCode.objects.count(), DraftComment.objects.count(),
        Agreement.objects.count(),
        sorted(Agreement.objects.values_list("pk", "status")),
    )


def test_when_another_cases_agreement_id_is_put_under_this_cases_url_then_not_found_and_nothing_happens(
    world, case_b
):
    reach(world, "signing")
    freeze(case_b)
    # This case's signatories, and case B's claimant, each re-authenticated
    # (signing in is audited: the browsers are ready before the snapshot).
    clients = {role: client_as(world, role, reauthenticated=True) for role in ("claimant", "mediator")}
    b_client = client_as(case_b, "claimant", reauthenticated=True)
    before = _snapshot()
    for role, client in clients.items():
        for name, (method, url, data) in _round_urls(world.case.public_id, case_b.agreement.public_id).items():
            assert _request(client, method, url, data).status_code == 404, (role, name)
        # The same browser reaches its own round (the 404s are about the id).
        own = _round_urls(world.case.public_id, world.agreement.public_id)
        assert client.get(own["sign page"][1]).status_code == 200
        assert client.get(own["frozen pdf"][1]).status_code == 200
    # Case B's own signatory gets nothing through case A's URL either.
    for name, (method, url, data) in _round_urls(world.case.public_id, case_b.agreement.public_id).items():
        assert _request(b_client, method, url, data).status_code == 404, name
    assert _snapshot() == before
    case_b.refresh()
    assert case_b.agreement.status == AgreementStatus.SIGNING


def test_when_ids_are_random_then_not_found_and_nothing_happens(world):
    reach(world, "signing")
    clients = {role: client_as(world, role, reauthenticated=True) for role in ("claimant", "mediator")}
    before = _snapshot()
    for role, client in clients.items():
        # A random round id under this case's URL.
        for name, (method, url, data) in _round_urls(world.case.public_id, uuid.uuid4()).items():
            assert _request(client, method, url, data).status_code == 404, (role, name)
        # A random case id, with this case's real round id and draft id.
        fake_case = uuid.uuid4()
        for name, (method, url, data) in _round_urls(fake_case, world.agreement.public_id).items():
            assert _request(client, method, url, data).status_code == 404, (role, "fake case", name)
        draft_id = _latest_id(world)
        for name in ("agreement", "draft", "compare"):
            assert client.get(reverse(f"agreements:{name}", args=[fake_case])).status_code == 404, (role, name)
        for name in ("comment", "freeze"):
            response = client.post(reverse(f"agreements:{name}", args=[fake_case]), {"draft": draft_id, "text": "x"})
            assert response.status_code == 404, (role, name)
    assert _snapshot() == before


def test_when_another_cases_draft_is_posted_to_comment_or_freeze_then_not_found_and_nothing_written(
    world, case_b
):
    b_draft = case_b.case.drafts.get()
    comment_url = reverse("agreements:comment", args=[world.case.public_id])
    freeze_url = reverse("agreements:freeze", args=[world.case.public_id])
    attempts = [
        # This case's people, posting case B's draft (or a made-up one) to this case's URLs.
        ("claimant", comment_url, {"draft": str(b_draft.public_id), "text": "Forged comment."}),
        ("claimant", comment_url, {"draft": str(b_draft.public_id), "text": "", "section": "ru.terms",
                                   "proposal": "Forged proposal."}),
        ("mediator", comment_url, {"draft": str(b_draft.public_id), "text": "Forged comment."}),
        ("mediator", freeze_url, {"draft": str(b_draft.public_id)}),
        ("mediator", freeze_url, {"draft": str(uuid.uuid4())}),
        ("mediator", freeze_url, {"draft": "not-a-uuid"}),
        ("claimant", comment_url, {"draft": "not-a-uuid", "text": "Forged comment."}),
        ("claimant", comment_url, {"text": "No draft named."}),
    ]
    clients = {role: client_as(world, role) for role in ("claimant", "mediator")}
    b_mediator = client_as(case_b, "mediator")
    before = _snapshot()
    for role, url, data in attempts:
        assert clients[role].post(url, data).status_code == 404, (role, url, data)
    # Case B's mediator, posting their own draft to case A's URLs.
    assert b_mediator.post(freeze_url, {"draft": str(b_draft.public_id)}).status_code == 404
    assert b_mediator.post(comment_url, {"draft": str(b_draft.public_id), "text": "x"}).status_code == 404
    assert _snapshot() == before
    assert not b_draft.comments.exists() and not case_b.case.agreements.exists()
    assert not world.case.agreements.exists()
    # The same browsers, naming this case's own draft, are heard (the 404s are about the id).
    own = _latest_id(world)
    assert clients["claimant"].post(comment_url, {"draft": own, "text": "A real comment."}).status_code == 302
    assert clients["mediator"].post(freeze_url, {"draft": own}).status_code == 302
    assert world.case.drafts.get(public_id=own).comments.count() == 1
    assert world.case.agreements.filter(status=AgreementStatus.SIGNING).count() == 1


def test_when_case_bs_sealed_pdf_is_asked_for_under_case_as_url_then_not_found_and_nothing_audited(world, case_b):
    seal(world)
    seal(case_b)
    forged = reverse("agreements:sealed_pdf", args=[world.case.public_id, case_b.agreement.public_id])
    clients = {role: client_as(world, role) for role in READERS}
    b_claimant = client_as(case_b, "claimant")
    before = _snapshot()
    for role, client in clients.items():
        assert client.get(forged).status_code == 404, role
        # ... while their own sealed agreement is theirs to download.
        own = client.get(reverse("agreements:sealed_pdf", args=[world.case.public_id, world.agreement.public_id]))
        assert own.status_code == 200 and own.content == issuing.sealed_pdf(world.agreement), role
    assert b_claimant.get(forged).status_code == 404
    downloads = AuditEvent.objects.filter(action=AuditAction.AGREEMENT_DOWNLOADED)
    assert not downloads.filter(details__agreement=str(case_b.agreement.public_id)).exists()
    # The four own downloads were recorded, nothing else.
    assert AuditEvent.objects.count() == before[0] + len(READERS)
    assert downloads.count() == len(READERS)
    case_b.refresh()
    assert case_b.agreement.status == AgreementStatus.SEALED


# --- 4. Stored XSS -------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOADS = (SCRIPT, IMG)


def assert_escaped(response, *, where: str, times: int = 1) -> None:
    """Neither payload is on the page as markup; each is there, escaped
    (at least `times` times: once per place that shows it)."""
    assert response.status_code == 200, where
    html = response.content.decode()
    for payload in PAYLOADS:
        assert payload not in html, (where, payload)
        assert html.count(escape(payload)) >= times, (where, payload, html.count(escape(payload)))
    assert "<img src=x" not in html and "<script>alert" not in html, where


def test_when_people_write_markup_then_every_agreement_page_shows_it_escaped(world):
    mediator, claimant, respondent = world.user("mediator"), world.user("claimant"), world.user("respondent")
    # A version whose sections carry the payloads (appended to the previous
    # wording, so that the comparison shows them as one insertion).
    previous = drafts.draft_content(world.case.drafts.first())
    hostile = {
        **previous,
        "ru.terms": f"{previous['ru.terms']}\n{SCRIPT}\n{IMG}",
        "kk.performance": f"{previous['kk.performance']}\n{SCRIPT}\n{IMG}",
    }
    drafts.draft_save(case=world.case, user=mediator, fields=hostile, layout="kk-ru", origin=ORIGIN)
    latest = world.case.drafts.first()
    drafts.draft_comment(draft=latest, user=claimant, text=f"Look: {SCRIPT} and {IMG}", origin=ORIGIN)
    proposal = drafts.draft_comment(draft=latest, user=respondent, text="", section="ru.subject",
                                    proposal=f"{SCRIPT}\n{IMG}", origin=ORIGIN)
    case_id = world.case.public_id

    as_claimant, as_mediator = client_as(world, "claimant", reauthenticated=True), client_as(world, "mediator")
    # The draft page: the mediator's editor (the sections in textareas, and a
    # proposal taken as the starting wording), the parties' preview.
    draft_url = reverse("agreements:draft", args=[case_id])
    assert_escaped(as_mediator.get(draft_url), where="editor", times=2)
    assert_escaped(as_mediator.get(f"{draft_url}?proposal={proposal.public_id}"), where="editor from proposal",
                   times=3)
    assert_escaped(as_claimant.get(draft_url), where="draft preview", times=2)
    # The comparison with the previous version.
    compare = as_claimant.get(reverse("agreements:compare", args=[case_id]))
    assert_escaped(compare, where="compare", times=2)
    assert "<ins>" in compare.content.decode()

    # A round declined with a hostile reason, then the version frozen again.
    freeze(world)
    signing.agreement_decline(agreement=world.agreement, user=claimant, reason=f"No: {SCRIPT} {IMG}", origin=ORIGIN)
    freeze(world)

    # The agreement page: the draft's preview (two sections), the comment,
    # the proposal and the earlier round's reason.
    for client, who in ((as_claimant, "claimant"), (as_mediator, "mediator")):
        assert_escaped(client.get(reverse("agreements:agreement", args=[case_id])), where=f"agreement page, {who}",
                       times=5)
    # The sign page shows the frozen version's words.
    sign_page = as_claimant.get(reverse("agreements:sign", args=[case_id, world.agreement.public_id]))
    assert_escaped(sign_page, where="sign page", times=2)
    # The public verification page echoes the code typed.
    verify = Client().get(reverse("agreements:verify"), {"code": f"{SCRIPT}{IMG}"})
    assert verify.status_code == 200
    assert SCRIPT not in verify.content.decode() and IMG not in verify.content.decode()
    assert escape(f"{SCRIPT}{IMG}") in verify.content.decode()


# --- 5. The sealed PDF's download ----------------------------------------------------------------------


def test_when_the_sealed_agreement_is_downloaded_then_each_download_is_audited_and_not_cached(world):
    seal(world)
    url = reverse("agreements:sealed_pdf", args=[world.case.public_id, world.agreement.public_id])
    pdf = issuing.sealed_pdf(world.agreement)
    downloads = AuditEvent.objects.filter(action=AuditAction.AGREEMENT_DOWNLOADED)
    assert not downloads.exists()

    who = ["claimant", "claimant", "representative", "mediator"]
    for role in who:
        response = client_as(world, role).get(url, HTTP_USER_AGENT=f"browser of the {role}")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        disposition = response["Content-Disposition"]
        assert disposition.startswith("attachment;") and f"{world.case.reference}.pdf" in disposition
        assert "no-store" in response["Cache-Control"]
        assert response.content == pdf and pdf.startswith(b"%PDF-")

    events = list(downloads.order_by("id"))
    assert [e.actor_id for e in events] == [world.user(role).pk for role in who]
    for event, role in zip(events, who, strict=True):
        assert event.object_id == str(world.case.public_id)
        assert event.details["agreement"] == str(world.agreement.public_id)
        assert event.details["sha256"] == world.agreement.sealed_sha256
        assert event.user_agent == f"browser of the {role}"

    # Anyone, signed in or not, may check it on the public page by its code.
    verify = Client().get(reverse("agreements:verify"), {"code": world.agreement.verification_code.lower()})
    assert verify.status_code == 200 and verify.context["result"].valid

    # Refused downloads are not served, and not recorded as downloads.
    for role in ("observer", "stranger", "admin"):
        assert client_as(world, role).get(url).status_code == 404, role
    assert downloads.count() == len(who)

    # After retention destroyed the case's content, the same, for the same people.
    destroy(world)
    response = client_as(world, "respondent").get(url)
    assert response.status_code == 200 and response.content == pdf
    assert response["Content-Disposition"].startswith("attachment;") and "no-store" in response["Cache-Control"]
    assert downloads.count() == len(who) + 1
    assert downloads.order_by("id").last().actor_id == world.user("respondent").pk



def test_when_a_sealed_agreement_is_filed_then_the_filing_rules_are_as_tabled(world, user_factory):
    from agreements.services.filing import filing_submit
    from odr.models import Court, CourtUser
    from tests.conftest import enable_totp

    seal(world)
    court = world.user("court_user").court_user.court
    Case.objects.filter(pk=world.case.pk).update(court=court, court_case_number="2-100/2026")
    world.refresh()
    filing = filing_submit(agreement=world.agreement, user=world.user("claimant"), origin=ORIGIN)

    for action, expected in FILING_POLICY.items():
        assert allowed(world, action, filing) == expected, action
    # A user of another court does not reach it.
    elsewhere = Court.objects.create(code="elsewhere", name="Another Court", region=court.region)
    clerk = enable_totp(user_factory("clerk@elsewhere.kz"))
    CourtUser.objects.create(user=clerk, court=elsewhere)
    assert not policy.can(clerk, "filing.court", filing)
