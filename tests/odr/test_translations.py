"""The interface in Russian and Kazakh (odr/locale).

* Every entry of each catalogue is translated, none is fuzzy, the plural
  forms are the language's own (ru three, kk two), and every placeholder of
  the English text is kept; `msgfmt --check` agrees.
* The committed .mo is what the .po compiles to, so nobody forgets to run
  compilemessages after editing a translation; and every string the code
  marks for translation is in the catalogues (makemessages was run, and
  xgettext could see it).
* Pages come out in the visitor's language (the `django_language` cookie, the
  browser's Accept-Language, a signed-in user's preferred language), and so
  do the platform's error messages and the sign-in error.
"""

import ast
import gettext
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

LOCALE_DIR = Path(settings.LOCALE_PATHS[0])
LANGUAGES = ["ru", "kk"]
PLURAL_FORMS = {
    "ru": "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
    "kk": "nplurals=2; plural=(n!=1);",
}
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
SOURCE_PACKAGES = ["odr", "sessions", "agreements"]
# The gettext family: where the msgid is among the positional arguments.
MSGID_ARGUMENT = {
    "gettext": 0, "gettext_lazy": 0, "gettext_noop": 0, "ngettext": 0, "ngettext_lazy": 0,
    "pgettext": 1, "pgettext_lazy": 1, "npgettext": 1, "npgettext_lazy": 1,
}
TEMPLATE_TRANS = re.compile(r"""\{%\s*trans(?:late)?\s+(?:"([^"]*)"|'([^']*)')""")


def po_path(language, locale_dir=LOCALE_DIR):
    return Path(locale_dir) / language / "LC_MESSAGES" / "django.po"


# Ours (makemessages' own), and any further locale path that supplies words
# for other apps: each must be complete, checked and compiled.
CATALOGUES = [
    pytest.param(po_path(language, locale_dir), id=f"{Path(locale_dir).name}-{language}")
    for locale_dir in settings.LOCALE_PATHS for language in LANGUAGES
    if po_path(language, locale_dir).exists() or Path(locale_dir) == LOCALE_DIR
]


def po_entries(path):
    """The live (not obsolete) entries of a .po file: dicts with the flags,
    msgid, msgid_plural and msgstr (a list: one item, or one per plural form)."""
    entries, entry, field = [], None, None

    def flush():
        nonlocal entry
        if entry and "msgid" in entry:
            entries.append(entry)
        entry = None

    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if not line or line.startswith("#~"):
            flush()
            continue
        if entry is None:
            entry = {"flags": set(), "msgstr": {}}
        if line.startswith("#,"):
            entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif match := re.match(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")$", line):
            keyword, index, value = match.group(1), match.group(2), ast.literal_eval(match.group(3))
            if keyword.startswith("msgstr"):
                field = ("msgstr", int(index or 0))
                entry["msgstr"][field[1]] = value
            else:
                field = (keyword, None)
                entry[keyword] = value
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if field[0] == "msgstr":
                entry["msgstr"][field[1]] += value
            else:
                entry[field[0]] += value
        else:
            raise AssertionError(f"{path}: cannot read the line {line!r}")
    return entries


def marked_in_python(path):
    """The msgids a module marks with the gettext family (imported from
    django.utils.translation, under any name), f-strings included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {
        alias.asname or alias.name: MSGID_ARGUMENT[alias.name]
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation"
        for alias in node.names if alias.name in MSGID_ARGUMENT
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            argument = node.args[names[node.func.id]] if len(node.args) > names[node.func.id] else None
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                yield argument.value


def marked_in_templates(path):
    for match in TEMPLATE_TRANS.finditer(path.read_text(encoding="utf-8")):
        yield match.group(1) if match.group(1) is not None else match.group(2)


@pytest.mark.parametrize("language", LANGUAGES)
def test_when_the_code_marks_a_string_for_translation_then_the_catalogue_has_it(language):
    """A word the code marks but the catalogue lacks stays English for
    everyone: either makemessages was not run, or xgettext cannot see the
    call (a gettext call inside an f-string, for one)."""
    root = Path(settings.BASE_DIR)
    sources = itertools.chain.from_iterable((root / package).rglob("*") for package in SOURCE_PACKAGES)
    marked = {}
    for path in sources:
        if "migrations" in path.parts or "locale" in path.parts or not path.is_file():
            continue
        if path.suffix == ".py":
            found = marked_in_python(path)
        elif path.suffix in (".html", ".txt") and "templates" in path.parts:
            found = marked_in_templates(path)
        else:
            continue
        for msgid in found:
            marked.setdefault(msgid, str(path.relative_to(root)))
    for path in (root / "templates").rglob("*.html"):
        for msgid in marked_in_templates(path):
            marked.setdefault(msgid, str(path.relative_to(root)))
    assert len(marked) > 500

    catalogue = {entry["msgid"] for entry in po_entries(po_path(language))}
    missing = {msgid: where for msgid, where in marked.items() if msgid not in catalogue}
    assert missing == {}


@pytest.fixture
def site_language(settings):
    """The site's own default language (odr/settings.py), which the rest of
    the suite replaces with English: Django falls back to it for whatever a
    language's catalogues lack."""
    from odr import settings as project_settings

    settings.LANGUAGE_CODE = project_settings.LANGUAGE_CODE
    return settings.LANGUAGE_CODE


def msgfmt():
    program = shutil.which("msgfmt")
    assert program, "msgfmt (GNU gettext) is needed: `make test` installs it"
    return program


@pytest.mark.parametrize("path", CATALOGUES)
def test_when_a_catalogue_is_read_then_every_entry_is_translated_and_none_is_fuzzy(path):
    language = path.parent.parent.name
    header, *entries = po_entries(path)
    assert header["msgid"] == "" and "fuzzy" not in header["flags"]
    assert f"Plural-Forms: {PLURAL_FORMS[language]}\n" in header["msgstr"][0]
    assert f"Language: {language}\n" in header["msgstr"][0]
    assert len(entries) > (500 if path.is_relative_to(LOCALE_DIR) else 0)

    nplurals = int(PLURAL_FORMS[language].split(";")[0].split("=")[1])
    problems = []
    for entry in entries:
        msgid = entry["msgid"]
        if "fuzzy" in entry["flags"]:
            problems.append(("fuzzy", msgid))
        expected_forms = nplurals if "msgid_plural" in entry else 1
        if sorted(entry["msgstr"]) != list(range(expected_forms)):
            problems.append(("wrong number of forms", msgid))
        for translated in entry["msgstr"].values():
            if not translated.strip():
                problems.append(("empty", msgid))
            if sorted(set(PLACEHOLDER.findall(translated))) != sorted(set(PLACEHOLDER.findall(msgid))):
                problems.append(("placeholders differ", msgid, translated))
            if translated.endswith("\n") != msgid.endswith("\n") or translated.startswith("\n") != msgid.startswith("\n"):
                problems.append(("newlines differ", msgid))
    assert problems == []


@pytest.mark.parametrize("path", CATALOGUES)
def test_when_msgfmt_checks_a_catalogue_then_it_finds_nothing_wrong_or_untranslated(path, tmp_path):
    result = subprocess.run(
        [msgfmt(), "--check", "--statistics", "-o", str(tmp_path / "check.mo"), str(path)],
        check=False, capture_output=True, text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    statistics = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ translated messages\.", statistics), statistics


@pytest.mark.parametrize("path", CATALOGUES)
def test_when_the_po_is_compiled_afresh_then_it_matches_the_committed_mo(path, tmp_path):
    fresh = tmp_path / "fresh.mo"
    subprocess.run([msgfmt(), "-o", str(fresh), str(path)], check=True)
    committed = path.with_suffix(".mo")
    assert committed.exists(), f"{committed} is missing: run `manage.py compilemessages`"
    with committed.open("rb") as ours, fresh.open("rb") as theirs:
        committed_catalogue = gettext.GNUTranslations(ours)
        fresh_catalogue = gettext.GNUTranslations(theirs)
    # Compared as catalogues, not bytes, so that another gettext version's
    # layout of the same messages is not a difference.
    assert committed_catalogue._catalog == fresh_catalogue._catalog, (
        f"{committed} is stale: run `manage.py compilemessages`"
    )


@pytest.mark.parametrize(("n", "expected"), [
    (1, "Остался 1 день"), (2, "Осталось 2 дня"), (5, "Осталось 5 дней"), (11, "Осталось 11 дней"),
    (21, "Остался 21 день"), (22, "Осталось 22 дня"), (112, "Осталось 112 дней"),
])
def test_when_russian_counts_days_then_the_noun_takes_the_right_form(n, expected):
    with translation.override("ru"):
        text = translation.ngettext("%(days)s day left", "%(days)s days left", n) % {"days": n}
    assert text == expected


@pytest.mark.parametrize(("how", "language", "heading"), [
    ("cookie", "ru", "Урегулируйте спор с помощью онлайн-медиации"),
    ("cookie", "kk", "Дауыңызды онлайн-медиация арқылы реттеңіз"),
    ("cookie", "en", "Resolve your dispute through online mediation"),
    ("browser", "kk", "Дауыңызды онлайн-медиация арқылы реттеңіз"),
    ("browser", "ru", "Урегулируйте спор с помощью онлайн-медиации"),
])
def test_when_a_visitor_opens_the_home_page_then_it_is_in_their_language(
    client, db, site_language, how, language, heading,
):
    if how == "cookie":
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        response = client.get(reverse("home"))
    else:
        response = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'<html lang="{language}">' in html
    assert heading in html
    if language != "en":
        assert "Resolve your dispute through online mediation" not in html
        assert "How it works" not in html


def test_when_a_signed_in_user_prefers_kazakh_then_their_pages_are_in_kazakh_whatever_the_cookie(
    client, site_language, party_b,
):
    client.force_login(party_b)  # preferred_language = kk
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "ru"
    html = client.get(reverse("mediation:dashboard")).content.decode()
    assert "Менің істерім" in html
    assert "Мои дела" not in html and "My cases" not in html


KAZAKH_LETTERS = set("әғқңөұүһіӘҒҚҢӨҰҮҺІ")


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_when_the_password_is_wrong_then_the_sign_in_error_is_in_the_visitors_language(
    client, site_language, party_a, language,
):
    """django-allauth brings Russian but no Kazakh, and Django falls back to
    the site's language (ru) for what the Kazakh catalogues lack: a Kazakh
    visitor is told in Russian until Kazakh words for allauth are provided."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.post(reverse("account_login"), {"login": party_a.email, "password": "not-the-password"})
    html = response.content.decode()
    errors = list(response.context["form"].non_field_errors())
    assert len(errors) == 1
    assert {"ru": "Войти", "kk": "Кіру"}[language] in html  # our own words, in base.html
    russian = "Указанные вами адрес электронной почты и/или пароль неверны."
    if language == "ru":
        assert errors == [russian]
    else:
        assert errors != [russian] and "password" not in errors[0]
        assert set(errors[0]) & KAZAKH_LETTERS, errors[0]


@pytest.mark.parametrize(("language", "error"), [
    ("ru", "Это не PDF-файл."),
    ("kk", "Бұл PDF-файл емес."),
])
def test_when_a_non_pdf_is_uploaded_to_the_verification_page_then_the_error_is_in_the_visitors_language(
    client, db, site_language, language, error,
):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    upload = SimpleUploadedFile("agreement.pdf", b"just some text, not a PDF", content_type="application/pdf")
    response = client.post(reverse("agreements:verify"), {"file": upload})
    html = response.content.decode()
    assert response.status_code == 200
    assert error in html
    assert "This is not a PDF file." not in html
