"""Backup and restore (deploy/backup.sh, deploy/restore.sh), run the way an
operator runs them: by absolute path, from an unrelated directory, with
nothing but the environment production gives them.

A site in miniature lives under tmp_path: its environment file and key files
(as /etc/odr), its file roots, and the test database. Content is written
through the product's services (joint and caucus messages, a shared document,
a draft agreement), then:

* the nightly data backup runs with the environment systemd's
  EnvironmentFile gives it, and the keys are backed up by hand into a
  separate "safe";
* the site is wiped: a brand-new empty database (createdb), the file roots
  and the key files deleted;
* restore.sh puts back the keys (and reads the settings from the restored
  environment file), the database and the files;
* a separate process, configured only by the restored environment file (and
  the new database's URL), reads every message, document and draft as it was
  written, and the audit chain verifies; with another master key it reads
  nothing.

Also: the data backup alone holds neither the master key (nor other secrets)
nor any plaintext; a tampered or incomplete backup, a wrong passphrase and a
non-empty file root are refused before anything changes; missing settings
are named.
"""

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from agreements.services import drafts
from odr import crypto
from sessions.models import RoomDocument, RoomEvent
from sessions.services import documents, rooms
from tests.asgi_server import database_url
from tests.room_client import open_session_with
from tests.sealed import document_bytes, document_name, texts

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy" / "backup.sh"
RESTORE = ROOT / "deploy" / "restore.sh"
MANAGE = ROOT / "manage.py"
SCRIPT_TIMEOUT = 120

pytestmark = pytest.mark.django_db(transaction=True)


# --- The site -------------------------------------------------------------------------------


@dataclass
class Site:
    """A production site in miniature (paths under tmp_path)."""

    key_dir: Path  # as /etc/odr
    env_file: Path
    key_files: list[Path]  # the environment file, the seal, the trust root
    media_root: Path
    private_root: Path
    backups: Path  # the nightly job's DEST_DIR
    safe: Path  # where the operator keeps the key bundles, apart from the data
    passphrase_file: Path
    elsewhere: Path  # the operator's working directory
    master_key: str
    secrets: dict[str, str]  # what must never be in a data backup

    def systemd_environment(self) -> dict[str, str]:
        """What EnvironmentFile=/etc/odr/env gives the backup service
        (KEY=value lines, surrounding quotes removed)."""
        pairs = (
            line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line
        )
        return operator_environment(**{key: value.strip('"') for key, value in pairs})


def operator_environment(**variables: str) -> dict[str, str]:
    """A clean environment: nothing of the test run's own settings leaks in."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        **variables,
    }


@pytest.fixture
def site(settings, tmp_path) -> Site:
    """The test run's master key is replaced by this site's before any content
    exists (odr.crypto reads the setting at call time)."""
    if connection.vendor != "postgresql":
        pytest.fail(
            f"backup.sh and restore.sh back up PostgreSQL; this run uses {connection.vendor} "
            "(set DATABASE_URL=postgres://...)",
            pytrace=False,
        )
    master_key = crypto.generate_master_key()
    settings.ODR_MASTER_KEY, settings.ODR_PREVIOUS_MASTER_KEYS = master_key, []

    key_dir = tmp_path / "etc-odr"
    key_dir.mkdir(mode=0o750)
    key_dir.chmod(0o750)
    seal, trust_root = key_dir / "seal.p12", key_dir / "ca.pem"
    seal.write_bytes(os.urandom(2048))
    seal.chmod(0o600)
    trust_root.write_text("-----BEGIN CERTIFICATE-----\nMIIBroot\n-----END CERTIFICATE-----\n")
    secret_values = {
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ODR_SEAL_PASSPHRASE": secrets.token_urlsafe(24),
    }
    # Created empty at installation, as the deployment does.
    media_root = tmp_path / "media"
    private_root = Path(
        settings.STORAGES["private"]["OPTIONS"]["location"]
    )  # tests/conftest.py `_private_files`
    media_root.mkdir()
    private_root.mkdir(exist_ok=True)
    env_file = key_dir / "env"
    env_file.write_text(
        "DEBUG=false\n"
        f"SECRET_KEY={secret_values['SECRET_KEY']}\n"
        "ALLOWED_HOSTS=odr.example.kz\n"
        f"DATABASE_URL={database_url()}\n"
        f"MEDIA_ROOT={media_root}\n"
        f'ODR_PRIVATE_ROOT="{private_root}"\n'
        f"ODR_MASTER_KEY={master_key}\n"
        f"ODR_SEAL_PKCS12={seal}\n"
        f"ODR_SEAL_PASSPHRASE={secret_values['ODR_SEAL_PASSPHRASE']}\n"
        f"ODR_TRUST_ROOTS={trust_root}\n"
        # A value with spaces and <>: the scripts read the file, never run it.
        "DEFAULT_FROM_EMAIL=ODR Mediation <no-reply@odr.example.kz>\n"
    )
    env_file.chmod(0o600)
    safe = tmp_path / "safe"
    safe.mkdir()
    passphrase_file = safe / "passphrase"
    passphrase_file.write_text(secrets.token_urlsafe(32) + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return Site(
        key_dir=key_dir,
        env_file=env_file,
        key_files=[env_file, seal, trust_root],
        media_root=media_root,
        private_root=private_root,
        backups=tmp_path / "backups",
        safe=safe,
        passphrase_file=passphrase_file,
        elsewhere=elsewhere,
        master_key=master_key,
        secrets={"ODR_MASTER_KEY": master_key, **secret_values},
    )


def run(script: Path, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )


def back_up(site: Site) -> tuple[Path, Path]:
    """The nightly data backup (as systemd runs it), then the keys by hand."""
    data = run(BACKUP, str(site.backups), env=site.systemd_environment(), cwd=site.elsewhere)
    assert data.returncode == 0, data.stderr
    backup_dir = Path(data.stdout.strip())
    assert backup_dir.parent == site.backups and re.fullmatch(
        r"odr-\d{8}T\d{6}Z", backup_dir.name
    ), data.stdout
    assert sorted(p.name for p in backup_dir.iterdir()) == [
        "SHA256SUMS",
        "database.dump",
        "info.txt",
        "media.tar.gz",
        "private.tar.gz",
    ]

    keys = run(
        BACKUP,
        "--keys-only",
        str(site.safe),
        cwd=site.elsewhere,
        env=operator_environment(
            ODR_ENV_FILE=str(site.env_file), ODR_KEYS_PASSPHRASE_FILE=str(site.passphrase_file)
        ),
    )
    assert keys.returncode == 0, keys.stderr
    bundle = Path(keys.stdout.strip())
    assert bundle.parent == site.safe and re.fullmatch(
        r"odr-keys-\d{8}T\d{6}Z\.tar\.gpg", bundle.name
    ), keys.stdout
    return backup_dir, bundle


def restore(
    site: Site,
    backup_dir: Path,
    bundle: Path,
    *,
    database: str,
    passphrase_file: Path | None = None,
) -> subprocess.CompletedProcess:
    """On the new machine: the environment file comes back from the bundle;
    only the database (a fresh one) is named in the environment."""
    return run(
        RESTORE,
        str(backup_dir),
        "--keys",
        str(bundle),
        cwd=site.elsewhere,
        env=operator_environment(
            ODR_ENV_FILE=str(site.env_file),
            DATABASE_URL=database,
            ODR_KEYS_PASSPHRASE_FILE=str(passphrase_file or site.passphrase_file),
        ),
    )


def wipe(site: Site) -> None:
    """Everything but the backups: the file roots and the keys."""
    for path in (site.media_root, site.private_root, site.key_dir):
        shutil.rmtree(path, ignore_errors=True)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def new_database():
    """Empty databases made with createdb, as for a new machine; dropped after."""
    params = connection.settings_dict
    user, host, port = (
        params.get("USER") or "postgres",
        params.get("HOST") or "127.0.0.1",
        params.get("PORT") or 5432,
    )
    options = ["--host", str(host), "--port", str(port), "--username", user]
    env = {**os.environ, **({"PGPASSWORD": params["PASSWORD"]} if params.get("PASSWORD") else {})}
    made = []

    def make() -> str:
        name = f"{params['NAME']}_restored_{uuid.uuid4().hex[:8]}"
        subprocess.run(["createdb", *options, name], env=env, check=True, timeout=60)
        made.append(name)
        return f"postgres://{user}@{host}:{port}/{name}"

    yield make
    for name in made:
        subprocess.run(
            ["dropdb", *options, "--if-exists", "--force", name], env=env, check=True, timeout=60
        )


def table_count(url: str) -> int:
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0]


# --- The content ----------------------------------------------------------------------------


@dataclass
class Content:
    """What was written, as it must read again."""

    case_id: str
    messages: list[str]
    documents: list[tuple[str, bytes]]
    drafts: list[str]
    media: dict[str, bytes]
    private: dict[str, bytes]

    def plaintexts(self) -> list[bytes]:
        return [
            *(text.encode() for text in self.messages + self.drafts),
            *(name.encode() for name, _ in self.documents),
            *(data for _, data in self.documents),
        ]


@pytest.fixture
def content(site, active_case, mediator, party_a, party_b) -> Content:
    joint = open_session_with(active_case, mediator, party_a, party_b)
    claimant = active_case.participants.get(user=party_a)
    caucus = rooms.caucus_open(room=joint, user=mediator, party_id=claimant.public_id)
    for room, user, body in [
        (joint, party_a, "Предлагаю 450 000 ₸ за забор — backup canary one"),
        (joint, party_b, "Біз 500 000 ₸ ұсынамыз — backup canary two"),
        (caucus, party_a, "Between us: I would take 400 000 ₸ — backup canary three"),
    ]:
        rooms.message_post(room=room, user=user, client_id=uuid.uuid4(), body=body)
    documents.document_share(
        room=joint,
        user=party_a,
        upload=SimpleUploadedFile(
            "Смета забора.txt", "Смета № 17: 450 000 ₸ — backup canary four\n".encode()
        ),
    )
    drafts.draft_save(
        case=active_case, user=mediator, terms="Стороны согласились: 470 000 ₸ — backup canary five"
    )
    # Nothing of the product writes to MEDIA_ROOT yet; whatever will is backed up too.
    (site.media_root / "branding").mkdir()
    (site.media_root / "branding" / "logo.svg").write_text(
        "<svg xmlns='http://www.w3.org/2000/svg'/>"
    )

    events = RoomEvent.objects.filter(room__case=active_case, kind="message").order_by(
        "room_id", "seq"
    )
    shared = RoomDocument.objects.filter(room__case=active_case).order_by("pk")
    written = Content(
        case_id=str(active_case.public_id),
        messages=texts(events),
        documents=[(document_name(d), document_bytes(d)) for d in shared],
        drafts=[drafts.draft_text(d) for d in active_case.drafts.order_by("version")],
        media=files_under(site.media_root),
        private=files_under(site.private_root),
    )
    assert len(written.messages) == 3 and len(written.documents) == 1 and len(written.drafts) == 1
    assert written.private, "the shared document is stored under the private root"
    return written


# What a separate process reads, configured by the environment it is given;
# first the audit chain is verified (exit 1 when broken), as after a restore.
READ_CONTENT = """
import base64, json
from django.core.management import call_command
from django.db import connection
from agreements.services.drafts import draft_text
from sessions.models import Case, RoomDocument, RoomEvent
from tests.sealed import document_bytes, document_name, texts
call_command("verify_audit")
case = Case.objects.get(public_id="{case_id}")
events = RoomEvent.objects.filter(room__case=case, kind="message").order_by("room_id", "seq")
shared = RoomDocument.objects.filter(room__case=case).order_by("pk")
print(json.dumps({{
    "database": connection.settings_dict["NAME"],
    "messages": texts(events),
    "documents": [[document_name(d), base64.b64encode(document_bytes(d)).decode()] for d in shared],
    "drafts": [draft_text(d) for d in case.drafts.order_by("version")],
}}))
"""


def manage(*args: str, site: Site, **variables: str) -> subprocess.CompletedProcess:
    """manage.py in its own process, configured as the services are: by the
    environment file (plus `variables`, which win over it)."""
    env = operator_environment(ODR_ENV_FILE=str(site.env_file), **variables)
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        env=env,
        cwd=site.elsewhere,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )


# --- Tests ----------------------------------------------------------------------------------


def test_when_backed_up_wiped_and_restored_then_another_process_reads_everything_again(
    site, content, new_database
):
    keys_before = {path: (path.read_bytes(), path.stat().st_mode) for path in site.key_files}
    key_dir_mode = site.key_dir.stat().st_mode
    backup_dir, bundle = back_up(site)

    wipe(site)
    restored_database = new_database()
    assert table_count(restored_database) == 0
    result = restore(site, backup_dir, bundle, database=restored_database)
    assert result.returncode == 0, result.stderr
    for step in (
        "manage.py migrate",
        "manage.py retention_sweep",
        "manage.py verify_audit",
        "restart",
    ):
        assert step in result.stderr, f"the next steps name {step!r}:\n{result.stderr}"

    # The keys are back where the settings name them, as they were.
    assert {
        path: (path.read_bytes(), path.stat().st_mode) for path in site.key_files
    } == keys_before
    assert site.key_dir.stat().st_mode == key_dir_mode
    # The files are back in their roots.
    assert files_under(site.media_root) == content.media
    assert files_under(site.private_root) == content.private

    # Another process, with nothing but the restored environment file and the
    # new database, finds the audit chain intact and reads every piece of
    # content as it was written.
    read = manage(
        "shell",
        "-c",
        READ_CONTENT.format(case_id=content.case_id),
        site=site,
        DATABASE_URL=restored_database,
    )
    assert read.returncode == 0, read.stderr
    seen = json.loads(read.stdout.strip().splitlines()[-1])
    assert seen["database"] == restored_database.rsplit("/", 1)[1]
    assert seen["messages"] == content.messages
    assert [(name, base64.b64decode(data)) for name, data in seen["documents"]] == content.documents
    assert seen["drafts"] == content.drafts
    assert "Audit chain intact" in read.stdout

    # The same restored data under another master key: nothing opens.
    stranger = manage(
        "shell",
        "-c",
        READ_CONTENT.format(case_id=content.case_id),
        site=site,
        DATABASE_URL=restored_database,
        ODR_MASTER_KEY=crypto.generate_master_key(),
    )
    assert stranger.returncode != 0
    assert "UndecryptableError" in stranger.stderr, stranger.stderr
    assert not any(text in stranger.stdout for text in content.messages + content.drafts)


def _backup_contents(backup_dir: Path) -> bytes:
    """Every byte a reader of the data backup can see: its files, the
    database as SQL (the dump itself is compressed), the archives' members."""
    sql = subprocess.run(
        ["pg_restore", "--file=-", str(backup_dir / "database.dump")],
        capture_output=True,
        check=True,
        timeout=SCRIPT_TIMEOUT,
    ).stdout
    members = []
    for archive in ("media.tar.gz", "private.tar.gz"):
        with tarfile.open(backup_dir / archive) as tar:
            members += [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]
    raw = [path.read_bytes() for path in sorted(backup_dir.iterdir())]
    return b"\n".join([*raw, sql, *members])


def test_when_the_data_backup_is_stolen_then_it_holds_no_key_and_no_plaintext(site, content):
    backup_dir, bundle = back_up(site)
    seen = _backup_contents(backup_dir)

    # The search reads what is really there: clear metadata, and the sealed files.
    assert b"Aliya Claimant" in seen
    assert content.case_id.encode() in seen
    assert all(sealed in seen for sealed in content.private.values())

    raw_master_key = crypto.parse_master_key(site.master_key)
    for secret in (
        *site.secrets.values(),
        raw_master_key,
        base64.b64encode(raw_master_key),
        raw_master_key.hex(),
    ):
        secret = secret.encode() if isinstance(secret, str) else secret
        assert secret not in seen, "a key or secret is in the data backup"
    for plaintext in content.plaintexts():
        assert plaintext not in seen, f"plaintext in the data backup: {plaintext[:40]!r}"
    # Nor are the keys readable in their own bundle without the passphrase.
    assert site.master_key.encode() not in bundle.read_bytes()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _wrong_passphrase(site: Site, backup_dir: Path, bundle: Path) -> Path:
    wrong = site.safe / "wrong-passphrase"
    wrong.write_text(secrets.token_urlsafe(32) + "\n")
    return wrong


# Each spoils a good backup, its key bundle or the new machine, and returns the
# passphrase file to restore with (None: the right one); then what restore.sh
# must say.
SPOILERS = {
    "a byte of the database dump changed": (
        lambda site, backup_dir, bundle: _flip_one_byte(backup_dir / "database.dump"),
        "checksums",
    ),
    "a byte of the room documents changed": (
        lambda site, backup_dir, bundle: _flip_one_byte(backup_dir / "private.tar.gz"),
        "checksums",
    ),
    "the media archive missing": (
        lambda site, backup_dir, bundle: (backup_dir / "media.tar.gz").unlink(),
        "media.tar.gz is missing",
    ),
    "the checksums missing": (
        lambda site, backup_dir, bundle: (backup_dir / "SHA256SUMS").unlink(),
        "SHA256SUMS is missing",
    ),
    "a byte of the key bundle changed": (
        lambda site, backup_dir, bundle: _flip_one_byte(bundle),
        "does not decrypt",
    ),
    "the wrong passphrase": (_wrong_passphrase, "does not decrypt"),
    "a file root not empty": (
        lambda site, backup_dir, bundle: (site.private_root / "stray").mkdir(parents=True),
        "is not empty",
    ),
}


@pytest.mark.parametrize("spoiler", SPOILERS, ids=list(SPOILERS))
def test_when_a_backup_is_spoiled_or_a_root_in_use_then_restore_refuses_and_changes_nothing(
    site, new_database, spoiler
):
    backup_dir, bundle = back_up(site)
    wipe(site)
    spoil, message = SPOILERS[spoiler]
    passphrase_file = spoil(site, backup_dir, bundle)
    target = new_database()

    result = restore(site, backup_dir, bundle, database=target, passphrase_file=passphrase_file)

    assert result.returncode != 0
    assert message in result.stderr and "Nothing was restored" in result.stderr, result.stderr
    assert table_count(target) == 0
    assert not site.media_root.exists() and not site.key_dir.exists()


def test_when_a_setting_is_missing_then_the_scripts_name_it(site):
    backup_dir, bundle = back_up(site)
    systemd = site.systemd_environment()

    without_database = {k: v for k, v in systemd.items() if k != "DATABASE_URL"}
    result = run(BACKUP, str(site.backups), env=without_database, cwd=site.elsewhere)
    assert result.returncode != 0 and "DATABASE_URL is not set" in result.stderr, result.stderr

    result = run(
        BACKUP,
        "--keys-only",
        str(site.safe),
        env=operator_environment(ODR_ENV_FILE=str(site.env_file)),
        cwd=site.elsewhere,
    )
    assert result.returncode != 0 and "ODR_KEYS_PASSPHRASE_FILE is not set" in result.stderr, (
        result.stderr
    )

    # (A database that does not exist: were the check missing, nothing is harmed.)
    without_roots = {
        **{k: v for k, v in systemd.items() if k not in ("MEDIA_ROOT", "ODR_PRIVATE_ROOT")},
        "DATABASE_URL": database_url() + "_absent",
    }
    result = run(RESTORE, str(backup_dir), env=without_roots, cwd=site.elsewhere)
    assert result.returncode != 0 and "MEDIA_ROOT is not set" in result.stderr, result.stderr

    result = run(RESTORE, str(backup_dir), "--keys", str(bundle), env=systemd, cwd=site.elsewhere)
    assert result.returncode != 0 and "ODR_KEYS_PASSPHRASE_FILE is not set" in result.stderr, (
        result.stderr
    )
