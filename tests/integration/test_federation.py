"""Federation, the administrator's side: which other domains' CAs this
registry accepts, and by what rule (dirctl federation, reg_fed_* in
dird/reg.c, schema 005).  Each change is audited; what is refused leaves
the rules as they were."""
import subprocess

import pytest

FP = "AB:" + "cd" * 30 + ":EF"          # as people paste it
FP_NORM = "ab" + "cd" * 30 + "ef"


def rules(reg):
    """{domain: (rule, fingerprint, added_by)} from `dirctl federation
    list`."""
    out = {}
    for line in reg.ctl("federation", "list").stdout.splitlines():
        domain, rule, fp, _when, by = line.split()
        out[domain] = (rule, fp, by)
    return out


def audit_since(reg, since):
    q = ("SELECT string_agg(concat_ws('|', action, target, "
         "coalesce(detail, '-')), E'\\n' ORDER BY id) FROM audit_log "
         f"WHERE id > {since}")
    return [tuple(x.split("|")) for x in reg.sql(q).splitlines()]


def last_id(reg):
    return int(reg.sql("SELECT coalesce(max(id), 0) FROM audit_log"))


def test_add_replace_remove_audited(reg):
    since = last_id(reg)
    assert rules(reg) == {}
    r = reg.ctl("federation", "add", "Example.NET", "--ca-fingerprint", FP)
    assert r.stdout.strip() == "Example.NET: pinned", r.stdout
    got = rules(reg)
    assert list(got) == ["example.net"], got
    assert got["example.net"][:2] == ("pinned", FP_NORM), got
    reg.ctl("federation", "add", "example.com", "--refuse")
    reg.ctl("federation", "add", "example.net", "--dane")
    assert rules(reg)["example.net"][:2] == ("dane", "-")
    assert rules(reg)["example.com"][:2] == ("refused", "-")
    reg.ctl("federation", "remove", "example.com")
    assert list(rules(reg)) == ["example.net"]
    assert audit_since(reg, since) == [
        ("federation.set", "example.net", f"rule=pinned ca={FP_NORM}"),
        ("federation.set", "example.com", "rule=refused"),
        ("federation.set", "example.net", "rule=dane"),
        ("federation.remove", "example.com", "-")]
    out = reg.ctl("audit", "verify").stdout
    assert "audit log intact" in out, out


@pytest.mark.parametrize("args, rc, says", [
    (["example.org", "--dane"], 2, "this registry's own domain"),
    (["exa mple.net", "--dane"], 2, "DNS labels"),
    (["bad-.example", "--dane"], 2, "DNS labels"),
    (["a..example", "--dane"], 2, "DNS labels"),
    (["example.net", "--ca-fingerprint", "abc"], 2, "64 hex digits"),
    (["example.net", "--ca-fingerprint", "zz" * 32], 2, "64 hex digits"),
    (["example.net", "--ca-fingerprint", "ab" * 33], 2, "64 hex digits"),
    (["example.net", "--dane", "--refuse"], 2, "usage"),
    (["example.net"], 2, "usage"),
])
def test_refused_changes_nothing(reg, args, rc, says):
    reg.ctl("federation", "add", "example.info", "--refuse")
    before, since = rules(reg), last_id(reg)
    r = reg.ctl("federation", "add", *args, check=False)
    assert r.returncode == rc, (r.returncode, r.stderr)
    assert says in r.stderr, r.stderr
    assert rules(reg) == before
    assert last_id(reg) == since


def test_remove_unknown_and_schema_checks(reg):
    r = reg.ctl("federation", "remove", "example.net", check=False)
    assert r.returncode == 1 and "no federation rule for example.net" in \
        r.stderr, r.stderr
    # The table itself refuses what dirctl would: a pinned rule without
    # a fingerprint, a fingerprint on another rule, an upper-case
    # domain, an unknown rule.
    for values in ("('example.net', 'pinned', NULL, 'x')",
                   f"('example.net', 'dane', '{FP_NORM}', 'x')",
                   "('Example.net', 'dane', NULL, 'x')",
                   "('example.net', 'maybe', NULL, 'x')"):
        with pytest.raises(subprocess.CalledProcessError) as e:
            reg.sql("INSERT INTO federation (domain, rule, ca_sha256, "
                    f"added_by) VALUES {values}")
        assert "violates check constraint" in e.value.stderr, e.value.stderr
    assert reg.sql("SELECT count(*) FROM federation") == "0"
