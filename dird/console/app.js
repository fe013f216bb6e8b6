// The DIR administration console: plain JavaScript over the admin API
// (docs/irp.md), with the administrator's client certificate that the
// browser presents.  Everything it shows is set as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const opt = { method: method, headers: {} };
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body);
  }
  const r = await fetch(path, opt);
  const text = await r.text();
  let j = null;
  try {
    j = JSON.parse(text);
  } catch (e) {
    j = null;
  }
  if (!r.ok) {
    throw new Error(j && j.error ? j.error.message : r.status + " " + text);
  }
  return j !== null ? j : text;
}

function say(msg, bad) {
  const s = $("status");
  s.textContent = msg;
  s.className = bad ? "bad" : "ok";
}

async function guard(fn) {
  try {
    await fn();
  } catch (e) {
    say(e.message, true);
  }
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(parent, label, fn) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", () => guard(fn));
  parent.appendChild(b);
  return b;
}

const enc = encodeURIComponent;

async function users() {
  const j = await api("GET", "/v1/admin/users");
  const tb = $("users-body");
  tb.replaceChildren();
  for (const u of j.users) {
    const tr = document.createElement("tr");
    tr.dataset.userid = u.userid;
    cell(tr, u.userid);
    cell(tr, u.name);
    cell(tr, u.role);
    cell(tr, u.enabled ? "enabled" : "disabled");
    const td = cell(tr, "");
    const act = u.enabled ? "disable" : "enable";
    button(td, u.enabled ? "Disable" : "Enable", async () => {
      await api("POST", `/v1/admin/users/${enc(u.userid)}/${act}`);
      say(`${u.userid}: ${act}d`);
      await users();
    });
    button(td, "New code", async () => {
      const c = await api("POST", `/v1/admin/users/${enc(u.userid)}/codes`,
        {});
      say(`enrolment code for ${u.userid}: ${c.code} (until ${c.expires_at})`);
    });
    tb.appendChild(tr);
  }
}

async function requests() {
  const j = await api("GET", "/v1/admin/requests");
  const tb = $("requests-body");
  tb.replaceChildren();
  for (const q of j.requests) {
    const tr = document.createElement("tr");
    tr.dataset.request = q.id;
    cell(tr, q.id);
    cell(tr, q.userid);
    cell(tr, q.proof);
    cell(tr, q.source || "");
    cell(tr, q.created_at);
    cell(tr, q.expires_at);
    const td = cell(tr, "");
    button(td, "Approve", async () => {
      const r = await api("POST", `/v1/admin/requests/${q.id}/approve`);
      say(`request ${q.id} approved: certificate ${r.serial} for ${q.userid}`);
      await requests();
    });
    const why = document.createElement("input");
    why.placeholder = "reason";
    why.setAttribute("aria-label", `reason to reject request ${q.id}`);
    td.appendChild(why);
    button(td, "Reject", async () => {
      await api("POST", `/v1/admin/requests/${q.id}/reject`,
        why.value ? { reason: why.value } : {});
      say(`request ${q.id} rejected`);
      await requests();
    });
    tb.appendChild(tr);
  }
  if (j.requests.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, "no request waits for a decision");
    td.colSpan = 7;
    tb.appendChild(tr);
  }
}

const REASONS = ["unspecified", "keyCompromise", "affiliationChanged",
  "superseded", "cessationOfOperation", "privilegeWithdrawn"];

async function certs() {
  const user = $("search-user").value.trim();
  const j = await api("GET", "/v1/admin/certificates" +
    (user ? "?user=" + enc(user) : ""));
  const tb = $("certs-body");
  tb.replaceChildren();
  for (const c of j.certificates) {
    const tr = document.createElement("tr");
    tr.dataset.serial = c.serial;
    cell(tr, c.serial, "mono");
    cell(tr, c.userid);
    cell(tr, c.status);
    cell(tr, c.not_after);
    const td = cell(tr, "");
    if (c.status === "valid") {
      const sel = document.createElement("select");
      sel.setAttribute("aria-label", `reason to revoke ${c.serial}`);
      for (const r of REASONS) {
        const o = document.createElement("option");
        o.value = r;
        o.textContent = r;
        sel.appendChild(o);
      }
      td.appendChild(sel);
      button(td, "Revoke", async () => {
        await api("POST", `/v1/admin/certificates/${enc(c.serial)}/revoke`,
          { reason: sel.value });
        say(`certificate ${c.serial} revoked (${sel.value})`);
        await certs();
      });
    }
    tb.appendChild(tr);
  }
}

async function audit() {
  const j = await api("GET", "/v1/admin/audit?limit=200");
  const p = $("audit-chain");
  if (j.intact) {
    p.textContent = `chain intact: ${j.rows} rows verified`;
    p.className = "ok";
  } else {
    p.textContent = `chain DAMAGED: ${j.problems} problems in ${j.rows} rows`;
    p.className = "bad";
  }
  const tb = $("audit-body");
  tb.replaceChildren();
  for (const a of j.entries) {
    const tr = document.createElement("tr");
    for (const f of ["id", "at", "actor", "action", "target", "serial",
      "source", "detail"]) cell(tr, a[f]);
    tb.appendChild(tr);
  }
}

async function health() {
  const state = $("health-state");
  try {
    await api("GET", "/healthz");
    state.textContent = "serving, database reachable";
    state.className = "ok";
  } catch (e) {
    state.textContent = "not healthy: " + e.message;
    state.className = "bad";
  }
  const m = await api("GET", "/metrics");
  $("health-metrics").textContent = String(m).split("\n")
    .filter((l) => l.startsWith("dird_") && !l.includes("_bucket"))
    .join("\n");
}

const VIEWS = { users, requests, certs, audit, health };

function show(name) {
  if (!(name in VIEWS)) name = "users";
  for (const v of Object.keys(VIEWS)) {
    $("view-" + v).hidden = v !== name;
    const b = $("nav-" + v);
    if (v === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  say("");
  guard(VIEWS[name]);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("nav button")) {
    b.addEventListener("click", () => {
      location.hash = b.dataset.view;
    });
  }
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  $("user-add").addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard(async () => {
      const u = await api("POST", "/v1/admin/users", {
        userid: $("add-userid").value.trim(),
        name: $("add-name").value.trim(),
      });
      say(`added ${u.userid}`);
      $("add-userid").value = "";
      $("add-name").value = "";
      await users();
    });
  });
  $("cert-search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    guard(certs);
  });
  show(location.hash.slice(1));
});
