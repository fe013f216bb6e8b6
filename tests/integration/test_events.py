"""Events (dird/push.c, GET /v1/me/events): a running client hears at
once that mail waits for it.  A request whose cursor says it has heard
of everything waits (a long poll) until mail is stored for its user, on
any dird of the database, or until its time is up; it holds no worker
thread meanwhile.  Asked with plain curl, as any client would."""
import json
import os
import signal
import subprocess
import time

from conftest import Dird, curl, people, wait_until
from test_inbox import post, seal


class Poll:
    """GET /v1/me/events in a curl process of its own: it may wait."""

    def __init__(self, d, user, query="", name="poll"):
        self.out = os.path.join(user.dir, f"{name}-{time.monotonic_ns()}")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ["curl", "-sS", "-o", self.out, "-w", "%{http_code}",
             "--cacert", os.path.join(d.data, "ca.pem"), "--cert",
             user.cert, "--key", user.key, "-D", self.out + ".h",
             d.url + "/v1/me/events" + query],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def waiting(self):
        return self.proc.poll() is None

    def result(self, timeout=30):
        """(status, the JSON answer, seconds it took)."""
        out, err = self.proc.communicate(timeout=timeout)
        took = time.monotonic() - self.started
        assert self.proc.returncode == 0, err
        with open(self.out) as f:
            body = f.read()
        return int(out.decode()[-3:]), json.loads(body), took

    def header(self, name):
        with open(self.out + ".h") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip().lower() == name.lower():
                    return v.strip()
        return None


def now(d, user):
    r = user.req("GET", "/v1/me/events")
    assert r.status == 200, r
    return r.json()


def waiting_gauge(d):
    for line in d.metrics().splitlines():
        if line.startswith("dird_push_waiting "):
            return int(line.split()[1])
    raise AssertionError("no dird_push_waiting in /metrics")


def test_a_waiting_request_hears_of_mail_at_once(reg, tmpdir_shared):
    alice, bob, carol = (reg.user(f"{n}@example.org")
                         for n in ("alice", "bob", "carol"))
    first = now(reg.d, bob)
    assert first == {"cursor": "0", "events": []}, first
    cur = first["cursor"]
    bobs = Poll(reg.d, bob, f"?after={cur}&wait=30", "bob")
    carols = Poll(reg.d, carol, f"?after={now(reg.d, carol)['cursor']}"
                  "&wait=3", "carol")
    wait_until(lambda: waiting_gauge(reg.d) == 2, "two requests wait")
    time.sleep(0.5)
    assert bobs.waiting() and carols.waiting()
    t0 = time.monotonic()
    r = post(alice, bob.userid, seal(tmpdir_shared, alice, [bob]))
    assert r.status == 201, r
    status, ev, _ = bobs.result()
    # At once: well within a second of the post, not at the deadline.
    assert time.monotonic() - t0 < 2, time.monotonic() - t0
    assert status == 200, ev
    assert ev["events"] == [{"type": "mail", "waiting": 1}], ev
    assert ev["cursor"] == str(r.json()["id"]), ev
    # Mail for bob woke nobody else: carol's request ran to its end.
    assert carols.waiting()
    status, ev, took = carols.result()
    assert status == 200 and ev["events"] == [], ev
    assert 2.5 < took < 10, took
    # With bob's new cursor there is nothing new: he waits until his
    # time is up, and hears of nothing.
    again = Poll(reg.d, bob, f"?after={ev_cursor(bob, reg)}&wait=1")
    status, ev2, took = again.result()
    assert status == 200 and ev2["events"] == [], ev2
    assert 0.9 < took < 5, took
    # An old cursor (or none) hears at once that mail waits.
    status, ev3, took = Poll(reg.d, bob, "?after=0&wait=30").result()
    assert ev3["events"] == [{"type": "mail", "waiting": 1}], ev3
    assert took < 3, took
    assert waiting_gauge(reg.d) == 0


def ev_cursor(user, reg):
    return now(reg.d, user)["cursor"]


def test_what_a_request_for_events_may_say(reg):
    bob = reg.user("bob@example.org")
    for q, code in (("?after=x", "invalid_cursor"),
                    ("?after=-1", "invalid_cursor"),
                    ("?after=1&wait=3601", "invalid_wait"),
                    ("?after=1&wait=-5", "invalid_wait"),
                    ("?after=1&wait=1e3", "invalid_wait")):
        r = bob.req("GET", "/v1/me/events" + q)
        assert r.status == 400 and r.json()["error"]["code"] == code, (q, r)
    # Only with one's certificate.
    r = curl(reg.d, "GET", "/v1/me/events?after=0&wait=5")
    assert r.status == 401, r


def test_waiting_is_bounded(registry):
    """A request waits no longer than push_wait_max, and one user (or all
    of them together) can not hold more waiting requests than allowed."""
    reg = registry("push_wait_max=2", "push_user_waiters=2")
    bob = reg.user("bob@example.org")
    status, ev, took = Poll(reg.d, bob, "?after=0&wait=600").result()
    assert status == 200 and ev["events"] == [], ev
    assert 1.5 < took < 6, took
    polls = [Poll(reg.d, bob, "?after=0&wait=2", f"p{i}") for i in range(2)]
    wait_until(lambda: waiting_gauge(reg.d) == 2, "two requests wait")
    third = Poll(reg.d, bob, "?after=0&wait=2", "third")
    status, ev, took = third.result()
    assert status == 429, ev
    assert ev["error"]["code"] == "too_many_waiting", ev
    assert third.header("Retry-After") == "30"
    assert took < 1.5, took
    for p in polls:
        assert p.result()[0] == 200


def test_mail_stored_through_another_dird_wakes_the_request(registry,
                                                          tmpdir_shared):
    """Two dird on one database: the waiter on one hears of a post made
    through the other (NOTIFY dir_push)."""
    reg = registry("cache=shared")
    second = Dird(reg.data, extra=["--set", "cache=shared"]).start()
    try:
        alice = reg.user("alice@example.org")
        bob = reg.user("bob@example.org")
        p = Poll(second, bob, "?after=0&wait=30")
        wait_until(lambda: waiting_gauge(second) == 1, "bob waits")
        t0 = time.monotonic()
        r = post(alice, bob.userid, seal(tmpdir_shared, alice, [bob]))
        assert r.status == 201, r
        status, ev, _ = p.result()
        assert time.monotonic() - t0 < 2
        assert ev["events"] == [{"type": "mail", "waiting": 1}], ev
    finally:
        assert second.stop() == 0, second.read_log()


def test_stopping_answers_the_waiting_at_once(reg):
    bob = reg.user("bob@example.org")
    p = Poll(reg.d, bob, "?after=0&wait=60")
    wait_until(lambda: waiting_gauge(reg.d) == 1, "bob waits")
    t0 = time.monotonic()
    reg.d.proc.send_signal(signal.SIGTERM)
    status, ev, _ = p.result()
    assert status == 200 and ev["events"] == [], ev
    assert reg.d.proc.wait(timeout=30) == 0, reg.d.read_log()
    assert time.monotonic() - t0 < 5, time.monotonic() - t0


def requests_of(d, endpoint):
    n = 0
    for line in d.metrics().splitlines():
        if line.startswith(f'dird_requests_total{{endpoint="{endpoint}",'):
            n += int(line.split()[-1])
    return n


def latency_count(d):
    for line in d.metrics().splitlines():
        if line.startswith("dird_request_duration_seconds_count "):
            return int(line.split()[1])
    raise AssertionError("no dird_request_duration_seconds_count")


def test_a_long_poll_is_no_latency(reg):
    """A request that waited is counted, but kept out of the latency
    histogram: it waits by design, and would make every figure of it
    read 'slow'."""
    bob = reg.user("bob@example.org")
    before = latency_count(reg.d)
    status, ev, took = Poll(reg.d, bob, "?after=0&wait=1").result()
    assert status == 200 and took >= 0.9
    assert requests_of(reg.d, "events") == 1
    # The two /metrics reads before this one are timed; the poll is not.
    assert latency_count(reg.d) == before + 2


def test_a_dchat_does_not_hammer_a_registry_that_never_waits(registry):
    """With push_wait_max = 0 every request for events is answered at
    once; a running dchat then asks at most every 10 s, not in a loop."""
    reg = registry("push_wait_max=0")
    (bob,) = people(reg, "bob")
    bob.run()
    time.sleep(6)
    n = requests_of(reg.d, "events")
    assert 1 <= n <= 2, n
    assert bob.stop() == 0
