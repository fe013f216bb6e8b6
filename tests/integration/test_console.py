"""The web console (dird/console/, api_console.c) as an administrator
meets it: headless Chromium (Debian's chromium and chromedriver, driven
by Selenium) that presents the administrator's client certificate from
its NSS database, chosen by the AutoSelectCertificateForUrls policy.  It
lists users, approves a pending request, revokes a certificate and
shows the audit chain verified; a user who is no administrator is
refused.  Screenshots of each page are kept in DIR_BUILD/artifacts."""
import fcntl
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BUILD, DOMAIN, curl, openssl

from test_requests import ask, listed, poll

POLICY_DIR = "/etc/chromium/policies/managed"
ARTIFACTS = os.path.join(BUILD, "artifacts")

needs = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")
         and shutil.which("pk12util")),
    reason="chromium, chromedriver and pk12util are installed by "
    "scripts/deps")


class Browser:
    """Headless Chromium whose NSS database holds user's certificate and
    key and trusts the registry's CA."""

    def __init__(self, reg, user, d, name):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        home = os.path.join(d, name + "-home")
        nss = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nss)
        subprocess.run(["certutil", "-N", "-d", "sql:" + nss,
                        "--empty-password"], check=True)
        p12 = os.path.join(d, name + ".p12")
        openssl("pkcs12", "-export", "-in", user.cert, "-inkey", user.key,
                "-out", p12, "-passout", "pass:x", "-name", name)
        subprocess.run(["pk12util", "-i", p12, "-d", "sql:" + nss, "-W",
                        "x"], check=True, capture_output=True)
        subprocess.run(["certutil", "-A", "-d", "sql:" + nss, "-n", "dirca",
                        "-t", "C,,", "-i", os.path.join(reg.data, "ca.pem")],
                       check=True)
        opt = webdriver.ChromeOptions()
        opt.binary_location = shutil.which("chromium")
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--window-size=1280,900",
                  "--user-data-dir=" + os.path.join(d, name + "-profile")):
            opt.add_argument(a)
        env = dict(os.environ, HOME=home)
        self.d = webdriver.Chrome(service=Service(
            shutil.which("chromedriver"), env=env), options=opt)
        self.base = f"https://localhost:{reg.d.port}"

    def open(self, path):
        self.d.get(self.base + path)

    def wait(self, what, cond, timeout=30):
        """Until cond(driver) holds.  The page draws its tables anew
        after each action: an element read while that happens is looked
        for again."""
        from selenium.common.exceptions import (
            NoSuchElementException, StaleElementReferenceException)
        from selenium.webdriver.support.ui import WebDriverWait
        try:
            return WebDriverWait(self.d, timeout, ignored_exceptions=(
                NoSuchElementException, StaleElementReferenceException)
            ).until(lambda d: cond(d))
        except Exception:
            page = self.d.find_element("tag name", "body").text
            raise AssertionError(f"{what}; the page says: {page}")

    def text(self, css):
        return self.d.find_element("css selector", css).text

    def click(self, css):
        """Click what css finds, as soon as it can be (found again if
        the page drew it anew meanwhile)."""
        def go(d):
            d.find_element("css selector", css).click()
            return True
        self.wait(f"{css} to be clicked", go)

    def shot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        self.d.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))

    def quit(self):
        self.d.quit()


@pytest.fixture
def policy():
    """Chromium picks the one certificate it has for https://localhost
    (any port).  The policy is a file of the machine's, shared by suites
    that run at once (CI runs two): each holds a shared lock on it while
    it runs, and the last one out removes it (the empty lock file, in
    /tmp, stays, so that all take the same lock)."""
    if os.geteuid() != 0:
        pytest.skip("the certificate policy of Chromium is set as root")
    os.makedirs(POLICY_DIR, exist_ok=True)
    path = os.path.join(POLICY_DIR, "dir-tests.json")
    lock = os.open(os.path.join(tempfile.gettempdir(),
                                "dir-tests-chromium-policy.lock"),
                   os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(lock, fcntl.LOCK_SH)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"AutoSelectCertificateForUrls": [json.dumps({
            "pattern": "https://localhost", "filter": {}})]}, f)
    os.rename(tmp, path)
    yield path
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(path)
    except OSError:
        pass  # another suite still uses it: it removes it
    os.close(lock)


def test_the_console_to_administrators_only_with_a_strict_policy(reg):
    admin = reg.user(f"root@{DOMAIN}", admin=True)
    eve = reg.user(f"eve@{DOMAIN}")
    r = curl(reg.d, "GET", "/admin/")
    assert r.status == 401, r
    r = eve.req("GET", "/admin/")
    assert r.status == 403, r
    out = os.path.join(reg.data, "console.hdr")
    p = subprocess.run(["curl", "-sS", "-D", out, "-o", "/dev/null",
                        "--cacert", os.path.join(reg.data, "ca.pem"),
                        "--cert", admin.cert, "--key", admin.key,
                        reg.d.url + "/admin/"], capture_output=True)
    assert p.returncode == 0, p.stderr
    with open(out) as f:
        hdr = f.read().lower()
    assert "content-type: text/html" in hdr
    assert "content-security-policy: default-src 'none'; script-src " \
        "'self'" in hdr
    assert "frame-ancestors 'none'" in hdr and "x-frame-options: deny" in hdr
    r = admin.req("GET", "/admin/app.js")
    assert r.status == 200 and "use strict" in r.body
    r = admin.req("GET", "/admin/nothing.html")
    assert r.status == 404


@needs
def test_an_administrator_works_in_the_console(reg, policy, tmpdir_shared):
    admin = reg.user(f"root@{DOMAIN}", admin=True)
    gus = reg.user(f"gus@{DOMAIN}")
    fay = reg.user(f"fay@{DOMAIN}", enrol=False)
    reg.ctl("user", "policy", fay.userid, "approve")
    status, _, pending = ask(reg, fay, reg.code(fay.userid))
    assert status == 202
    b = Browser(reg, admin, tmpdir_shared, "admin")
    try:
        # Users, and one added from the page.
        b.open("/admin/#users")
        b.wait("the users to be listed", lambda d: gus.userid in b.text(
            "#users-body"))
        b.shot("console-users")
        b.d.find_element("id", "add-userid").send_keys(f"hal@{DOMAIN}")
        b.d.find_element("id", "add-name").send_keys("Hal")
        b.click("#user-add button[type=submit]")
        b.wait("the new user", lambda d: f"hal@{DOMAIN}" in b.text(
            "#users-body"))
        assert f"hal@{DOMAIN}" in reg.ctl("user", "list").stdout
        # The pending request, approved.
        b.click("#nav-requests")
        rid = next(iter(listed(reg)))
        row = f'#requests-body tr[data-request="{rid}"]'
        b.wait("the pending request", lambda d: fay.userid in b.text(row))
        b.shot("console-requests")
        b.click(row + " button")
        b.wait("the approval", lambda d: "approved" in b.text("#status"))
        r = poll(reg, pending["request"])
        assert r.status == 200 and r.json()["userid"] == fay.userid, r
        # gus's certificate, revoked with a reason.
        b.click("#nav-certs")
        b.d.find_element("id", "search-user").send_keys(gus.userid)
        b.click("#cert-search button[type=submit]")
        row = f'#certs-body tr[data-serial="{gus.serial}"]'
        b.wait("gus's certificate", lambda d: "valid" in b.text(row))
        from selenium.webdriver.support.ui import Select

        def choose(d):
            Select(d.find_element("css selector", row + " select")
                   ).select_by_value("superseded")
            return True
        b.wait("the reason to be chosen", choose)
        b.shot("console-certificates")
        b.click(row + " button")
        b.wait("the revocation", lambda d: "revoked" in b.text(row))
        assert gus.req("GET", "/v1/me").status == 401
        assert "superseded" in reg.sql(
            "SELECT detail FROM audit_log WHERE action = 'cert.revoke'")
        # The audit log, its chain verified, with what was just done.
        b.click("#nav-audit")
        b.wait("the audit chain", lambda d: "chain intact" in b.text(
            "#audit-chain"))
        body = b.text("#audit-body")
        assert "request.approve" in body and "cert.revoke" in body
        b.shot("console-audit")
        b.click("#nav-health")
        b.wait("the health", lambda d: "serving" in b.text("#health-state"))
        assert "dird_" in b.text("#health-metrics")
        b.shot("console-health")
    finally:
        b.quit()
    reg.ctl("audit", "verify")


@needs
def test_a_user_who_is_no_administrator_is_refused(reg, policy,
                                                   tmpdir_shared):
    eve = reg.user(f"eve@{DOMAIN}")
    b = Browser(reg, eve, tmpdir_shared, "eve")
    try:
        b.open("/admin/")
        b.wait("the refusal", lambda d: "forbidden" in d.find_element(
            "tag name", "body").text)
        b.shot("console-refused")
        assert "Users" not in b.d.find_element("tag name", "body").text
    finally:
        b.quit()
