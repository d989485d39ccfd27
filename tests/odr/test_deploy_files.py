"""The deployment files agree with the settings and with each other.

deploy/env.example lists exactly the variables odr/settings.py reads; nginx
accepts deploy/nginx/ as installed; deploy/docker-compose.yml runs the
topology of deploy/systemd/ (the same Daphne and worker command lines, the
same nginx site); nginx's body limit admits the largest upload the
application accepts; the systemd units pass `systemd-analyze verify`; the
image's HEALTHCHECK reports on a real Daphne. No database: these read files
and run the real tools (nginx, systemd-analyze, Daphne).
"""

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from django.conf import settings

from tests.asgi_server import DaphneProcess, free_port
from tests.topology import NGINX, nginx_site, nginx_upstream, self_signed_certificate

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SETTINGS = ROOT / "odr" / "settings.py"
ENV_EXAMPLE = DEPLOY / "env.example"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
SYSTEMD = DEPLOY / "systemd"
DOCKER_UPSTREAM = DEPLOY / "docker" / "odr-upstream.conf"
HEALTHCHECK = DEPLOY / "docker" / "healthcheck.py"


def variables_settings_reads() -> set[str]:
    """Names passed as a literal to any `env.<cast>(...)` call in settings.py."""
    names = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def variables_env_example_names() -> set[str]:
    """Assignments in deploy/env.example, set (`NAME=value`) or shown commented out (`# NAME=value`)."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))


def test_when_settings_read_a_variable_then_env_example_lists_it():
    read = variables_settings_reads()
    assert {"SECRET_KEY", "DATABASE_URL", "ODR_MASTER_KEY", "EMAIL_URL"} <= read, (
        "the settings parser found too little"
    )
    missing = read - variables_env_example_names()
    assert not missing, f"deploy/env.example does not list {sorted(missing)}"


def test_when_env_example_names_a_variable_then_settings_read_it():
    stale = variables_env_example_names() - variables_settings_reads()
    assert not stale, (
        f"deploy/env.example lists {sorted(stale)}, which odr/settings.py does not read"
    )


# --- nginx ----------------------------------------------------------------------------


def test_when_the_nginx_files_are_installed_then_nginx_accepts_them(tmp_path):
    """`nginx -t` on deploy/nginx/*.conf inside a minimal main configuration,
    included in the order sites-enabled/* gives them (the site first)."""
    cert, key = self_signed_certificate(tmp_path)
    (tmp_path / "static").mkdir()
    (tmp_path / "acme").mkdir()
    site = nginx_site(
        https_port=free_port(),
        http_port=free_port(),
        cert=cert,
        key=key,
        static_root=tmp_path / "static",
        acme_root=tmp_path / "acme",
    )
    (tmp_path / "odr-site.conf").write_text(site)
    (tmp_path / "odr-upstream.conf").write_text(nginx_upstream([free_port(), free_port()]))
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp_path / ('tmp-' + kind)};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"""pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
{temp_paths}
    include {tmp_path / "odr-site.conf"};
    include {tmp_path / "odr-upstream.conf"};
}}
"""
    )
    result = subprocess.run(
        [
            NGINX,
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "early.log"),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def body_limit_bytes(conf: str) -> list[int]:
    units = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    return [
        int(number) * units[unit.lower()]
        for number, unit in re.findall(
            r"^\s*client_max_body_size\s+(\d+)([kKmMgG]?);", conf, flags=re.MULTILINE
        )
    ]


def test_when_the_largest_file_is_uploaded_then_nginx_lets_it_through():
    """The body carries the multipart envelope on top of the file, so nginx's
    limit must exceed the application's own (which refuses with a message)."""
    limits = body_limit_bytes((DEPLOY / "nginx" / "odr-site.conf").read_text())
    assert limits, "odr-site.conf sets no client_max_body_size"
    for limit in limits:
        assert limit > settings.ODR_UPLOAD_MAX_BYTES
        assert limit > settings.ODR_VERIFY_MAX_BYTES


def location_directives(conf: str, opening: str) -> list[str]:
    """The directives of the last location block that opens with `opening`
    (the HTTPS server's), without comments."""
    body = conf[conf.rindex(opening) + len(opening):]
    body = body[: body.index("\n    }")]
    lines = (line.split("#", 1)[0].strip() for line in body.splitlines())
    return [line for line in lines if line]


def test_when_verify_is_rate_limited_by_nginx_then_it_is_otherwise_proxied_as_every_page():
    """/verify/ has a location of its own for its limit_req; everything else
    about proxying it must stay as for the rest of the site."""
    site = (DEPLOY / "nginx" / "odr-site.conf").read_text()
    verify = location_directives(site, "location = /verify/ {")
    pages = location_directives(site, "location / {")
    limits = [line for line in verify if line.startswith("limit_req")]
    assert [line for line in verify if not line.startswith("limit_req")] == pages
    assert "limit_req_status 429;" in limits
    assert any(re.fullmatch(r"limit_req zone=odr_verify burst=\d+ nodelay;", line) for line in limits), limits
    assert re.search(r"^limit_req_zone \$binary_remote_addr zone=odr_verify:\d+m rate=\d+r/[sm];$", site, flags=re.M)


# --- systemd --------------------------------------------------------------------------


def exec_start(unit: Path) -> list[str]:
    """The ExecStart= command line of a unit, continuation lines joined."""
    text = unit.read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def test_when_systemd_reads_the_units_then_it_reports_nothing(tmp_path):
    """`systemd-analyze verify` in a root of its own: the units under
    /etc/systemd/system, the system's units beside them, and each program an
    Exec line names present (a stub where it is installed only on the server),
    so that what remains is the units themselves. It exits 0 on an unknown
    key or a value it ignores, so any output fails the test too."""
    root = tmp_path / "root"
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    system_units = next(
        p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()
    )
    shutil.copytree(system_units, root / system_units.relative_to("/"), symlinks=True)
    for unit in SYSTEMD.iterdir():
        shutil.copy(unit, units / unit.name)
        for line in unit.read_text().replace("\\\n", " ").splitlines():
            if re.match(r"Exec\w+=", line):
                program = Path(shlex.split(line.split("=", 1)[1])[0].lstrip("-@+!:"))
                (root / program.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
                if program.exists():
                    shutil.copy(program, root / program.relative_to("/"))
                else:
                    (root / program.relative_to("/")).write_text("#!/bin/sh\n")
                (root / program.relative_to("/")).chmod(0o755)
    # Templates are verified as instances, as odr.target enables them.
    names = [
        unit.name.replace("@.service", "@8001.service" if "daphne" in unit.name else "@1.service")
        for unit in sorted(SYSTEMD.iterdir())
    ]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", *names],
        cwd=units,
        check=False,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- Docker Compose -------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def without_address(args: list[str]) -> list[str]:
    """Daphne's arguments less its bind address and port (loopback ports under
    systemd, the container's port under Compose)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-b", "-p"):
            skip = True
        else:
            kept.append(arg)
    return kept


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def container_argv(command: list[str] | str) -> list[str]:
    """A service's command as the process sees it: Compose's `$$` is `$`, and
    a `sh -c "exec ..."` wrapper is the command it runs."""
    argv = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2].replace("$$", "$"))
    return argv[1:] if argv[0] == "exec" else argv


def test_when_compose_is_read_then_it_has_the_services_of_the_topology():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web1", "web2", "worker", "nginx"} <= set(services)
    assert re.fullmatch(r"postgres:1[56](\b.*)?", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7(\b.*)?", services["redis"]["image"])
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]


def test_when_compose_starts_daphne_then_it_runs_the_systemd_command_line():
    systemd = exec_start(SYSTEMD / "odr-daphne@.service")
    # Our entry point (odr/server.py: drains on SIGTERM), not the `daphne` script.
    assert Path(systemd[0]).name == "python" and systemd[1:3] == ["-m", "odr.server"]
    services = compose()["services"]
    for name in ("web1", "web2"):
        argv = container_argv(services[name]["command"])
        assert argv[0] == "python"
        assert without_address(argv[1:]) == without_address(systemd[1:])
        assert option(argv, "-b") == "0.0.0.0"
        assert option(argv, "-p") == "8000"
    assert "--proxy-headers" in systemd and "--application-close-timeout" in systemd


def duration_seconds(value: str) -> float:
    """`20`, `20s`, `1min 30s`, `1m30s`: systemd's and Compose's spellings."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(min|sec|s|m|)", value.strip())
    assert parts and "".join(f"{n}{u}" for n, u in parts) == value.replace(" ", ""), value
    return sum(float(number) * units[unit] for number, unit in parts)


def unit_setting(unit: Path, name: str) -> str:
    (value,) = re.findall(rf"^{name}=(.*)$", unit.read_text(), flags=re.MULTILINE)
    return value


def test_when_a_daphne_is_stopped_then_its_grace_period_ends_before_the_supervisor_kills_it():
    """A Daphne is gone within ODR_SHUTDOWN_GRACE_SECONDS of SIGTERM
    (tests/system/test_server_lifecycle.py); systemd and Compose send SIGKILL
    after their own stop timeouts, which must leave room for the drain."""
    grace = settings.ODR_SHUTDOWN_GRACE_SECONDS
    unit = SYSTEMD / "odr-daphne@.service"
    assert unit_setting(unit, "KillSignal") == "SIGTERM"
    assert grace + 5 <= duration_seconds(unit_setting(unit, "TimeoutStopSec"))
    services = compose()["services"]
    for name in ("web1", "web2"):
        assert grace + 5 <= duration_seconds(services[name]["stop_grace_period"])


def test_when_the_image_runs_without_a_command_then_it_serves_as_the_web_services_do():
    cmd = re.search(
        r"^CMD (\[.*?\])$",
        DOCKERFILE.read_text().replace("\\\n", ""),
        flags=re.MULTILINE | re.DOTALL,
    )
    assert json.loads(cmd.group(1)) == container_argv(compose()["services"]["web1"]["command"])


def test_when_compose_starts_the_worker_then_it_runs_the_systemd_command_line():
    systemd = exec_start(SYSTEMD / "odr-worker@.service")
    argv = container_argv(compose()["services"]["worker"]["command"])
    assert argv[0] == "python"
    assert argv[1:4] == systemd[1:4] == ["manage.py", "db_worker", "--no-reload"]
    # Unique per instance: the host and instance under systemd, the container here.
    assert option(systemd, "--worker-id").startswith("odr-worker-")
    assert option(argv, "--worker-id").startswith("odr-worker-$")


def test_when_compose_starts_the_application_then_migrations_and_static_files_come_first():
    services = compose()["services"]
    script = " ".join(container_argv(services["migrate"]["command"]))
    assert "manage.py migrate" in script and "manage.py collectstatic" in script
    for name in ("web1", "web2", "worker"):
        assert (
            services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        )
        assert services[name]["env_file"]


def mounts(service: dict) -> dict[str, str]:
    """Container path → source (a path relative to deploy/ or a volume name)."""
    pairs = (volume.split(":")[:2] for volume in service["volumes"])
    return {target: source for source, target in pairs}


def test_when_compose_starts_nginx_then_it_serves_the_site_file_unchanged_in_front_of_the_web_services():
    services = compose()["services"]
    nginx = mounts(services["nginx"])
    sites = [source for source in nginx.values() if source.endswith("odr-site.conf")]
    assert sites and (DEPLOY / sites[0]).resolve() == (DEPLOY / "nginx" / "odr-site.conf").resolve()
    upstreams = [source for source in nginx.values() if source.endswith("odr-upstream.conf")]
    assert upstreams and (DEPLOY / upstreams[0]).resolve() == DOCKER_UPSTREAM.resolve()
    # The static files collectstatic writes are where the site's alias serves them.
    alias = re.search(r"alias (\S+?)/?;", (DEPLOY / "nginx" / "odr-site.conf").read_text()).group(1)
    assert nginx[alias] == mounts(services["migrate"])[alias]
    # The certificate directory the site names.
    certificate = re.search(
        r"ssl_certificate\s+(\S+);", (DEPLOY / "nginx" / "odr-site.conf").read_text()
    ).group(1)
    assert str(Path(certificate).parent) in nginx


def test_when_nginx_runs_under_compose_then_its_upstream_is_the_systemd_one_with_the_web_services():
    docker = DOCKER_UPSTREAM.read_text()
    systemd = (DEPLOY / "nginx" / "odr-upstream.conf").read_text()
    assert re.findall(r"^\s*upstream (\w+)", docker, flags=re.MULTILINE) == re.findall(
        r"^\s*upstream (\w+)", systemd, flags=re.MULTILINE
    )
    for directive in ("least_conn;", "keepalive 16;"):
        assert directive in docker and directive in systemd
    servers = re.findall(r"^\s*server (\S+) (.*);$", docker, flags=re.MULTILINE)
    web = {name for name in compose()["services"] if re.fullmatch(r"web\d+", name)}
    assert {address for address, _ in servers} == {f"{name}:8000" for name in web}
    (systemd_options,) = set(
        re.findall(r"^\s*server 127\.0\.0\.1:\d+ (.*);$", systemd, flags=re.MULTILINE)
    )
    for _, options in servers:
        assert options.replace("resolve ", "") == systemd_options


# --- The image's HEALTHCHECK ------------------------------------------------------------


def run_healthcheck(port: int, allowed_hosts: str) -> int:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), str(port)],
        env={"ALLOWED_HOSTS": allowed_hosts, "PATH": "/usr/bin:/bin"},
        check=False,
        capture_output=True,
    ).returncode


def test_when_daphne_runs_in_production_mode_then_the_image_healthcheck_passes_only_for_an_allowed_host(
    tmp_path,
):
    healthcheck = re.search(
        r"^HEALTHCHECK .*?CMD (\[.*?\])$",
        DOCKERFILE.read_text().replace("\\\n", ""),
        flags=re.MULTILINE,
    )
    assert json.loads(healthcheck.group(1))[1:] == ["/opt/odr/healthcheck.py", "8000"]
    allowed_hosts = ".odr.example.kz,odr.example.kz"
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "odr.settings",
        "DEBUG": "false",
        "SECRET_KEY": "healthcheck-" * 5,
        "ODR_MASTER_KEY": "A" * 43 + "=",
        "ALLOWED_HOSTS": allowed_hosts,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "ODR_PRIVATE_ROOT": str(tmp_path / "private"),
    }
    daphne = DaphneProcess(free_port(), env, tmp_path / "daphne.log", args=("--proxy-headers",))
    try:
        assert run_healthcheck(daphne.port, allowed_hosts) == 0, daphne.log()
        # Django refuses a name outside ALLOWED_HOSTS (400): the probe says unhealthy.
        assert run_healthcheck(daphne.port, "elsewhere.example.kz") == 1
    finally:
        daphne.stop()
    assert run_healthcheck(daphne.port, allowed_hosts) == 1
