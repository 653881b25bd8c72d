// qledger explorer: plain JavaScript, no build step, no third-party code.
// Every fact comes from the node through the local read-only proxy; the
// transaction page re-checks the inclusion proof and the checkpoint
// signature here, with WebCrypto.
"use strict";

const main = document.getElementById("main");
let timer = null;

// h builds an element; text is always set as text, never parsed as HTML.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function table(headers, rows, label) {
  return h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { "data-label": headers[i] }, c))))));
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${r.status} ${body.code || ""}: ${body.error || r.statusText}`);
  return body;
}

async function getText(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  return r.text();
}

function show(title, ...content) {
  document.title = `${title} · qledger explorer`;
  main.replaceChildren(h("h1", {}, title), ...content);
  main.focus();
}

function time(ns) {
  return ns ? new Date(Number(BigInt(ns) / 1000000n)).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "—";
}

const short = (s) => (s ? s.slice(0, 12) + "…" : "—");
const link = (href, text) => h("a", { href }, text);

// ---- bytes and hashes ----

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
function unhex(s) {
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error("not hex: " + s);
  return Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16));
}
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const utf8 = (s) => new TextEncoder().encode(s);
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
async function sha256(b) { return new Uint8Array(await crypto.subtle.digest("SHA-256", b)); }
const leafHash = (data) => sha256(concat([0], data));
const nodeHash = (l, r) => sha256(concat([1], l, r));

// RFC 9162 2.1.3.2: the root an inclusion proof leads to.
async function inclusionRoot(index, size, leaf, proof) {
  if (index >= size) throw new Error("leaf index past the tree");
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error("proof too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("proof too short");
  return r;
}

// RFC 9162 2.1.4.2: does proof show the tree (size1, root1) is a prefix
// of (size2, root2)?
async function consistent(size1, root1, size2, root2, proof) {
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (size1 === 0 || size1 > size2 || proof.length === 0) return false;
  let path = proof;
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...proof];
  let fn = size1 - 1, sn = size2 - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr); sr = await nodeHash(c, sr);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}

// ---- checkpoints (C2SP signed notes) ----

function parseCheckpoint(noteText) {
  const split = noteText.indexOf("\n\n");
  if (split < 0) throw new Error("not a signed note");
  const text = noteText.slice(0, split + 1);
  const lines = text.split("\n");
  const sigs = noteText.slice(split + 2).split("\n").filter((l) => l.startsWith("\u2014 "))
    .map((l) => { const [, name, b64] = l.split(" "); return { name, bytes: unb64(b64) }; });
  return { text, origin: lines[0], size: Number(lines[1]), root: unb64(lines[2]), ext: lines.slice(3, -1), sigs };
}

// verifySignature checks the note's Ed25519 signature under the verifier
// key "name+hash+base64(1 || public key)": true, false, or null when the
// browser has no Ed25519.
async function verifySignature(cp, vkey) {
  // name+hash+key: the key's base64 may hold "+" too.
  const i = vkey.indexOf("+"), j = vkey.indexOf("+", i + 1);
  const name = vkey.slice(0, i), keyHash = vkey.slice(i + 1, j), b64 = vkey.slice(j + 1);
  const raw = unb64(b64);
  if (raw[0] !== 1 || raw.length !== 33) return false;
  const sig = cp.sigs.find((s) => s.name === name && hex(s.bytes.slice(0, 4)) === keyHash);
  if (!sig) return false;
  let key;
  try {
    key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
  } catch (e) {
    return null;
  }
  return crypto.subtle.verify({ name: "Ed25519" }, key, sig.bytes.slice(4), utf8(cp.text));
}

// ---- pages ----

async function overview() {
  const st = await getJSON("/v1/cluster");
  const sections = [];
  for (const g of st.groups || []) {
    let head = null;
    try { head = await getJSON(`/v1/groups/${g.group}/head`); } catch (e) { head = { error: e.message }; }
    sections.push(h("section", { "aria-labelledby": `g${g.group}` },
      h("h2", { id: `g${g.group}` }, `Group ${g.group}`, " ", link(`#/group/${g.group}`, "blocks")),
      head.error ? h("p", { class: "bad" }, head.error) :
        table(["height", "log size", "log root", "time", "signed by"], [[
          head.height ? link(`#/group/${g.group}/block/${head.height}`, String(head.height)) : "0",
          String(head.log_size), h("span", { class: "hash" }, head.log_root), time(head.timestamp), head.signer ? short(head.signer) : "unsigned",
        ]], `group ${g.group} head`),
      table(["member", "role", "suffrage", "leader", "health"],
        (g.members || []).map((m) => [h("span", { class: "hash" }, short(m.id)), m.role || "—", m.suffrage, m.leader ? "leader" : "",
          m.healthy ? h("span", { class: "ok" }, "healthy") : h("span", { class: "bad" }, m.reason || m.gossip)]),
        `group ${g.group} members`)));
  }
  show("Cluster", h("p", { class: "muted" }, `Answered by node ${short(st.node.id)}; refreshes every 5 s.`), ...sections);
  timer = setTimeout(route, 5000);
}

async function blocks(g, from) {
  const head = await getJSON(`/v1/groups/${g}/head`);
  const per = 20;
  const start = from || Math.max(1, head.height - per + 1);
  const list = head.height ? (await getJSON(`/v1/groups/${g}/blocks?from=${start}&limit=${per}`)).blocks : [];
  show(`Group ${g}: blocks ${start}–${start + list.length - 1} of ${head.height}`,
    table(["height", "hash", "transactions", "log size", "time"],
      list.slice().reverse().map((b) => [link(`#/group/${g}/block/${b.height}`, String(b.height)), h("span", { class: "hash" }, short(b.hash)),
        String(b.tx_count), String(b.log_size), time(b.timestamp)]), `blocks of group ${g}`),
    h("p", { class: "pager" },
      start > 1 ? link(`#/group/${g}?from=${Math.max(1, start - per)}`, "← older") : "",
      start + per <= head.height ? link(`#/group/${g}?from=${start + per}`, "newer →") : ""));
}

async function block(g, height) {
  const b = await getJSON(`/v1/groups/${g}/blocks/${height}`);
  show(`Group ${g}, block ${b.height}`,
    table(["field", "value"], [
      ["hash", h("span", { class: "hash" }, b.hash)], ["previous", h("span", { class: "hash" }, b.prev_hash)],
      ["time", time(b.timestamp)], ["transactions", String(b.tx_count)], ["transaction root", h("span", { class: "hash" }, b.tx_root)],
      ["log size", String(b.log_size)], ["log root", h("span", { class: "hash" }, b.log_root)],
    ], "block header"),
    h("h2", {}, "Transactions"),
    table(["ID", "kind", "submitter", "withheld"], b.txs.map((t, i) => [link(`#/tx/${t.id}?group=${g}`, short(t.id)),
      t.tx.kind === "exec" ? link(`#/record/${g}/${b.height}/${i}`, "execution record") : t.tx.kind, t.tx.submitter || "—", t.withheld ? "yes" : ""]),
      "transactions"),
    h("p", {}, height > 1 ? link(`#/group/${g}/block/${height - 1}`, "← previous block") : "", " ", link(`#/group/${g}/block/${Number(height) + 1}`, "next block →")));
}

async function tx(id, group) {
  const q = group !== undefined ? `?group=${group}` : "";
  const t = await getJSON(`/v1/tx/${id}${q}`);
  const g = t.group;
  const [noteText, key] = await Promise.all([getText(`/v1/groups/${g}/checkpoint`), getJSON(`/v1/groups/${g}/checkpoint/key`)]);
  const checks = [];
  const check = (ok, what) => checks.push({ ok, what });
  let verified = true;
  try {
    const cp = parseCheckpoint(noteText);
    const sig = await verifySignature(cp, key.verifier_key);
    if (sig === null) check(null, "checkpoint signature: not checked (this browser has no Ed25519 in WebCrypto)");
    else { check(sig, `checkpoint signature (Ed25519, key ${key.verifier_key.split("+").slice(0, 2).join("+")})`); verified &&= sig; }
    check(cp.origin === key.origin, `checkpoint origin ${cp.origin}`); verified &&= cp.origin === key.origin;
    const leaf = unhex(t.leaf_hash);
    if (t.tx_bytes) {
      const ok = equal(await leafHash(unb64(t.tx_bytes)), leaf);
      check(ok, "leaf hash = SHA-256(0x00 ‖ transaction bytes)"); verified &&= ok;
    } else {
      check(null, "transaction bytes withheld from this caller: the leaf hash is taken as given");
    }
    const root = await inclusionRoot(t.proof.leaf_index, t.proof.tree_size, leaf, t.proof.hashes.map(unhex));
    const incl = equal(root, unhex(t.proof.root));
    check(incl, `inclusion proof: leaf ${t.proof.leaf_index} in the log of size ${t.proof.tree_size} (${t.proof.hashes.length} hashes)`);
    verified &&= incl;
    let cons;
    if (t.proof.tree_size === cp.size) {
      cons = equal(root, cp.root);
    } else {
      const [a, b] = t.proof.tree_size < cp.size ? [t.proof.tree_size, cp.size] : [cp.size, t.proof.tree_size];
      const c = await getJSON(`/v1/groups/${g}/proof/consistency?from=${a}&to=${b}`);
      const [ra, rb] = t.proof.tree_size < cp.size ? [root, cp.root] : [cp.root, root];
      cons = await consistent(a, ra, b, rb, c.hashes.map(unhex));
    }
    check(cons, `the proof's tree is the checkpoint's log (size ${cp.size}) or consistent with it`);
    verified &&= cons;
  } catch (e) {
    check(false, "verification error: " + e.message);
    verified = false;
  }
  show(`Transaction ${short(t.id)}`,
    h("p", { id: "verdict", class: verified ? "ok" : "bad", role: "status", "data-page": location.hash },
      verified ? "✓ Inclusion verified in this browser against the signed checkpoint" : "✗ Verification FAILED"),
    h("ul", { class: "checks", "aria-label": "checks" }, checks.map((c) =>
      h("li", { class: c.ok === null ? "muted" : c.ok ? "ok" : "bad" }, c.ok === null ? "– " : c.ok ? "✓ " : "✗ ", c.what))),
    h("p", { class: "muted" }, "Taken on trust: that the note key belongs to a node of this cluster — the explorer proxy checked its endorsement against the cluster CA (",
      key.node, "); and that the checkpoint is the one everyone else sees (compare it with a witness)."),
    table(["field", "value"], [
      ["ID", h("span", { class: "hash" }, t.id)], ["group", String(g)], ["block", link(`#/group/${g}/block/${t.height}`, String(t.height))],
      ["leaf index", String(t.index)], ["kind", t.tx.kind], ["submitter", t.tx.submitter || "—"],
      ["idempotency key", t.tx.idempotency_key || "—"], ["payload bytes", t.tx.payload ? String(unb64(t.tx.payload).length) : "withheld"],
      ["leaf hash", h("span", { class: "hash" }, t.leaf_hash)],
    ], "transaction"));
}

async function record(g, height, i) {
  const v = await getJSON(`/x/record?group=${g}&height=${height}&tx=${i}`);
  const r = v.record, e = r.election;
  const role = (id) => (id === e.executor ? "executor (winner)" : id === e.verifier ? "verifier (runner-up)" : id === e.tie_breaker ? "tie-breaker" : "");
  const outvoted = (r.executions || []).filter((x) => x.hash && x.hash !== r.result_hash);
  show(`Execution of ${r.function} ${r.function_version}`,
    h("p", { id: "outcome", class: r.agreed ? "ok" : "bad" },
      `Outcome: ${r.outcome}`, r.agreed ? (r.verified ? " — agreed and verified" : " — agreed, not verified (no verifier ran)") : " — executions conflict, no majority"),
    table(["field", "value"], [
      ["request", h("span", { class: "hash" }, r.request_id)], ["caller", r.caller || "—"], ["route", r.route || "—"],
      ["transaction", link(`#/tx/${v.tx_id}?group=${g}`, short(v.tx_id))], ["block", link(`#/group/${g}/block/${height}`, `${g}/${height}`)],
      ["code hash", h("span", { class: "hash" }, r.code_hash)], ["input hash", h("span", { class: "hash" }, r.input_hash)],
      ["result hash", h("span", { class: "hash" }, r.result_hash)], ["exit code", String(r.exit_code)],
      ["conflict", r.conflict || "—"], ["time", time(r.timestamp)],
    ], "execution record"),
    h("h2", {}, "Election"),
    h("p", { class: "muted" }, `Key ${e.key_id}, key commitment `, h("span", { class: "hash" }, short(e.key_commitment)),
      ". Candidates in rank order: the lowest h wins."),
    table(["rank", "node", "h", "nonce commitment", "stake", "role"],
      e.candidates.map((c, k) => [String(k + 1), h("span", { class: "hash" }, short(c.node_id)), h("span", { class: "hash" }, short(c.h)),
        h("span", { class: "hash" }, short(c.nonce)), h("span", { class: "hash" }, short(c.stake)), role(c.node_id)]), "election candidates"),
    h("h2", {}, "Executions"),
    table(["node", "outcome", "exit code", "result hash", "time", "error"],
      (r.executions || []).map((x) => [h("span", { class: "hash" }, short(x.node_id)), x.outcome || "—", String(x.exit_code),
        h("span", { class: x.hash && x.hash !== r.result_hash ? "hash bad" : "hash" }, short(x.hash)), `${x.micros} µs`, x.error || ""]),
      "executions"),
    outvoted.length ? h("p", { class: "bad" }, "Outvoted: ", outvoted.map((x) => short(x.node_id)).join(", ")) : h("p", { class: "muted" }, "No node was outvoted."));
}

async function functions() {
  const f = await getJSON("/v1/functions");
  show("Deployed functions", table(["name", "version", "code hash", "memory pages", "timeout", "without a verifier", "deployed at height"],
    f.functions.map((x) => [x.name, x.version, h("span", { class: "hash" }, short(x.code_hash)), String(x.memory_pages), `${x.timeout_ms} ms`, x.unverified || "—", String(x.height)]),
    "functions"));
}

async function data(filter) {
  const d = await getJSON("/v1/data");
  const items = d.items.filter((x) => !filter || x.data_id === filter || (x.description || "").includes(filter));
  show(filter ? `Shared data matching “${filter}”` : "Shared data",
    h("p", { class: "muted" }, "Metadata only: the explorer never fetches shares."),
    table(["data ID", "description", "scheme", "shares (threshold)", "held by groups", "uploader", "readers", "height"],
      items.map((x) => [x.data_id, x.description || "—", x.scheme, `${x.shares} (${x.threshold})`, x.groups.join(", "), x.uploader || "—",
        x.readers && x.readers.length ? x.readers.join(", ") : "anyone", String(x.height)]), "shared data items"),
    d.unreachable && d.unreachable.length ? h("p", { class: "bad" }, `Groups that did not answer: ${d.unreachable.join(", ")}`) : "");
}

// keys shows the key manager of the node the explorer talks to: each pool
// the quantum-keyed channel's gateway takes keys from, and the error rate
// (QBER) of the QKD blocks that filled it.
async function keys() {
  const k = await getJSON("/v1/keymanager");
  const pct = (x) => `${(100 * x).toFixed(2)} %`;
  if (k.key_manager === "none") {
    show("Key manager", h("p", { id: "keymanager", "data-kind": k.key_manager },
      "This node runs no quantum-keyed channel, so it has no key manager to show."));
    return;
  }
  if (k.key_manager === "external") {
    show("Key manager", h("p", { id: "keymanager", "data-kind": k.key_manager },
      `This node's quantum-keyed channel (gateway SAE ${k.gateway_sae}) takes its keys from an external ETSI GS QKD 014 key manager; `,
      "its pools and QBER are not visible from the node. Ask that key manager's operator."));
    return;
  }
  const sections = k.pools.map((p, n) => {
    const done = p.recent_blocks.filter((b) => !b.aborted);
    const mean = done.length ? done.reduce((a, b) => a + b.qber, 0) / done.length : null;
    return h("section", { "aria-labelledby": `pool${n}` },
      h("h2", { id: `pool${n}` }, `Pool ${p.master_sae} → ${p.slave_sae}`),
      table(["stored keys", "capacity", "waiting for the slave", "key size"], [[
        String(p.stored_keys), String(p.max_keys), String(p.pending_keys), `${p.key_size_bits} bits`]], `pool ${p.master_sae} to ${p.slave_sae}`),
      h("p", {}, mean === null ? "No completed QKD block yet." :
        `Mean QBER of the last ${done.length} completed block${done.length === 1 ? "" : "s"}: ${pct(mean)} (abort threshold ${pct(done[0].qber_threshold)}).`),
      table(["block", "ended", "QBER", "threshold", "sifted bits", "keys issued", "result"],
        p.recent_blocks.slice().reverse().map((b) => [String(b.block), new Date(b.time).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"),
          h("span", { class: b.aborted ? "bad" : "" }, pct(b.qber)), pct(b.qber_threshold), String(b.sifted_bits), `${b.keys} (${b.key_bits} bits)`,
          b.aborted ? h("span", { class: "bad" }, "aborted: " + (b.abort_reason || "")) : h("span", { class: "ok" }, "completed")]),
        `recent QKD blocks of pool ${p.master_sae} to ${p.slave_sae}`));
  });
  show("Key manager", h("p", { id: "keymanager", "data-kind": k.key_manager, class: "muted" },
    `The key manager beside the node the explorer talks to (gateway SAE ${k.gateway_sae}). No key material is shown. Refreshes every 5 s.`),
    ...(sections.length ? sections : [h("p", {}, "It has no pools.")]));
  timer = setTimeout(route, 5000);
}

// find resolves a 64-hex-digit ID: a transaction, else an invocation of
// the explorer's own certificate; invocation IDs are per caller, so for
// anyone else's it asks whose.
async function find(id) {
  try {
    const t = await getJSON(`/v1/tx/${id}`);
    location.replace(`#/tx/${id}?group=${t.group}`);
    return;
  } catch (e) {
    if (!e.message.startsWith("404")) throw e;
  }
  try {
    await getJSON(`/v1/invocations/${id}`);
    location.replace(`#/invocation/${id}`);
    return;
  } catch (e) {
    if (!e.message.startsWith("404")) throw e;
  }
  const form = h("form", { id: "whose" },
    h("label", { for: "caller" }, "Caller "),
    h("input", { id: "caller", name: "caller", placeholder: "submitter:alice", autocomplete: "off" }), " ",
    h("button", { type: "submit" }, "Look up the invocation"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/invocation/${id}?caller=${encodeURIComponent(document.getElementById("caller").value.trim())}`;
  });
  show(`No transaction ${short(id)}`,
    h("p", {}, "No transaction has this ID. If it is an invocation ID: invocation IDs are chosen per caller, so name the caller ",
      "(role:name, as execution records write it)."), form);
}

// invocation shows an invocation's execution record, found by its ID and
// caller (GET /v1/invocations/{id}?caller=).
async function invocation(id, caller) {
  const st = await getJSON(`/v1/invocations/${id}` + (caller ? `?caller=${encodeURIComponent(caller)}` : ""));
  if (!st.result) {
    show(`Invocation ${short(id)}`, h("p", { id: "outcome", class: st.status === "failed" ? "bad" : "muted" },
      `Status: ${st.status}`, st.error ? ` — ${st.error.error}` : ""));
    return;
  }
  const rc = st.result.receipt;
  const b = await getJSON(`/v1/groups/${rc.group}/blocks/${rc.height}`);
  await record(rc.group, rc.height, rc.index - (b.log_size - b.tx_count));
}

async function route() {
  clearTimeout(timer);
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").filter(Boolean);
  try {
    if (parts.length === 0) await overview();
    else if (parts[0] === "group" && parts.length === 2) await blocks(Number(parts[1]), Number(params.get("from")) || 0);
    else if (parts[0] === "group" && parts[2] === "block") await block(Number(parts[1]), Number(parts[3]));
    else if (parts[0] === "tx") await tx(parts[1], params.get("group") ?? undefined);
    else if (parts[0] === "record") await record(Number(parts[1]), Number(parts[2]), Number(parts[3]));
    else if (parts[0] === "functions") await functions();
    else if (parts[0] === "data") await data(params.get("q") || "");
    else if (parts[0] === "keys") await keys();
    else if (parts[0] === "find") await find(parts[1]);
    else if (parts[0] === "invocation") await invocation(parts[1], params.get("caller") || "");
    else show("Not found", h("p", {}, "No such page."));
  } catch (e) {
    show("Error", h("p", { class: "bad", role: "alert" }, e.message));
  }
}

document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = document.getElementById("q").value.trim();
  let m;
  if (/^[0-9a-fA-F]{64}$/.test(q)) location.hash = `#/find/${q.toLowerCase()}`;
  else if ((m = q.match(/^(.*\D.*)\/([0-9a-fA-F]{64})$/))) location.hash = `#/invocation/${m[2].toLowerCase()}?caller=${encodeURIComponent(m[1])}`;
  else if ((m = q.match(/^(\d+)\/(\d+)$/))) location.hash = `#/group/${m[1]}/block/${m[2]}`;
  else if (/^\d+$/.test(q)) location.hash = `#/group/0/block/${q}`;
  else location.hash = `#/data?q=${encodeURIComponent(q)}`;
});
window.addEventListener("hashchange", route);
route();
