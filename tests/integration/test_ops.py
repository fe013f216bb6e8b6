"""The operators' kit: install layout, manual pages, systemd unit,
container files, readiness notification (issue: operators' kit)."""
import configparser
import os
import re
import signal
import socket
import subprocess

import pytest
import yaml

from conftest import BUILD, ROOT, SCHEMA_VERSION, Dird, dirctl, run

PROGS = {"dird": ("dird", "dird", "docs/man/dird.8"),
         "dirctl": ("dirctl", "dirctl", "docs/man/dirctl.8"),
         "dchat": ("client", "dchat", "docs/man/dchat.1")}


def help_options(prog):
    sub, exe, _ = PROGS[prog]
    out = run([os.path.join(BUILD, sub, exe), "--help"]).stdout
    return set(re.findall(r"--[a-z][a-z0-9-]*", out)) | {"--help",
                                                         "--version"}


@pytest.mark.parametrize("prog", sorted(PROGS))
def test_help_matches_manual_page(prog):
    with open(os.path.join(ROOT, PROGS[prog][2])) as f:
        page = f.read().replace("\\-", "-")
    opts = help_options(prog)
    assert len(opts) >= 4
    missing = [o for o in opts if o not in page]
    assert not missing, f"{prog} --help names {missing}, the page does not"
    p = run(["man", "--warnings", "-l", os.path.join(ROOT, PROGS[prog][2])],
            env={"MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"})
    assert "EXAMPLES" in p.stdout and not p.stderr.strip(), p.stderr


def test_install_layout_and_schema_found(tmpdir_shared):
    dest = os.path.join(tmpdir_shared, "root")
    run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
         "--destdir", dest])
    prefix = dest + run(["meson", "introspect", "--buildoptions", BUILD]
                        ).stdout.split('"name": "prefix", "value": "')[1]\
        .split('"')[0]
    for path in ("sbin/dird", "bin/dirctl", "bin/dchat",
                 "share/dir/schema/001_init.sql", "share/man/man8/dird.8",
                 "share/man/man8/dirctl.8", "share/man/man1/dchat.1"):
        assert os.path.exists(os.path.join(prefix, path)), path
    # The installed dirctl finds the installed schema, beside itself.
    data = os.path.join(tmpdir_shared, "data")
    ctl = os.path.join(prefix, "bin", "dirctl")
    env = {k: v for k, v in os.environ.items() if k != "DIR_SCHEMA_DIR"}
    p = subprocess.run([ctl, "--data", data, "init", "--domain",
                        "example.org"], env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([ctl, "--data", data, "migrate"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"schema version {SCHEMA_VERSION}" in p.stdout
    assert os.path.realpath(p.stdout.split("migrations from ")[1].strip()
                            .rstrip(")")) == \
        os.path.realpath(os.path.join(prefix, "share", "dir", "schema"))


def test_systemd_unit():
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(os.path.join(ROOT, "dist", "systemd", "dird.service"))
    svc = cp["Service"]
    assert svc["Type"] == "notify"
    assert svc["User"] == "dir" and svc["Group"] == "dir"
    assert svc["ProtectSystem"] == "strict"
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["ReadWritePaths"] == "/var/lib/dir"
    assert svc["CapabilityBoundingSet"] == ""
    argv = svc["ExecStart"].split()
    assert argv[0].endswith("/sbin/dird")
    assert set(a for a in argv if a.startswith("--")) <= help_options("dird")
    assert "--data" in argv and "/var/lib/dir" in argv
    # systemctl reload: SIGHUP to dird itself (dird(8), SIGNALS).
    assert svc["ExecReload"].split() == ["/bin/kill", "-HUP", "$MAINPID"]


def test_compose_file_names_services_ports_volumes():
    with open(os.path.join(ROOT, "docker", "compose.yaml")) as f:
        c = yaml.safe_load(f)
    assert set(c["services"]) == {"db", "dird"}
    dird = c["services"]["dird"]
    assert "4604:4604" in dird["ports"]
    assert "4606:4606" in dird["ports"]  # CRL and OCSP over plain HTTP
    assert "dirdata:/var/lib/dir" in dird["volumes"]
    assert any("/healthz" in part for part in dird["healthcheck"]["test"])
    assert dird["depends_on"]["db"]["condition"] == "service_healthy"
    assert "DIR_DSN" in dird["environment"]
    assert "host=db" in dird["environment"]["DIR_DSN"]
    assert dird["build"]["dockerfile"] == "docker/Dockerfile"
    assert set(c["volumes"]) == {"pgdata", "dirdata"}
    assert c["services"]["db"]["image"].startswith("postgres:")


def test_dockerfile_uses_the_readme_build_steps():
    with open(os.path.join(ROOT, "docker", "Dockerfile")) as f:
        df = f.read()
    stages = re.findall(r"^FROM (\S+)", df, re.M)
    assert stages == ["debian:12", "debian:12-slim"]
    build, runtime = df.split("FROM debian:12-slim")
    # The same steps as scripts/test and scripts/registry, which the
    # README's two commands run.
    scripts = ""
    for s in ("test", "registry"):
        with open(os.path.join(ROOT, "scripts", s)) as f:
            scripts += f.read()
    for step in ("scripts/deps", "meson setup build", "ninja -C build"):
        assert step in build and step in scripts, step
    assert "-dev" not in runtime
    assert re.search(r"^USER dir$", runtime, re.M)
    assert "useradd --system" in runtime
    assert "EXPOSE 4604" in runtime and "HEALTHCHECK" in runtime


def test_readiness_notification_and_syslog_mode(pg, tmpdir_shared):
    data = os.path.join(tmpdir_shared, "data")
    dirctl(data, "--dsn", pg.dsn(pg.new_database()), "init", "--domain",
           "example.org")
    path = os.path.join(tmpdir_shared, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    os.environ["NOTIFY_SOCKET"] = path
    try:
        d = Dird(data, extra=["--syslog"]).start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        assert sock.recv(256) == b"READY=1"
        d.proc.send_signal(signal.SIGTERM)
        assert sock.recv(256) == b"STOPPING=1"
        assert d.proc.wait(30) == 0
    finally:
        d.stop()
        sock.close()
    # With --syslog nothing goes to standard error.
    assert d.read_log() == ""
