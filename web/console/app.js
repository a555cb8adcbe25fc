// The reference console for m365-integration: the Microsoft 365 tab, the Tenant Mapping page and
// the Users and MFA page, on the public API only (POST /graphql and the graphql-transport-ws
// protocol on /graphql/ws). No framework and no build step: DOM built with `h`, never from HTML
// strings, so nothing the API returns is ever parsed as markup.

const TOKEN_KEY = "m365.token";
const COOLDOWN_SECONDS = 30;
/** Close codes after which following again may work (going away, dropped, server restarting). */
const RETRY_CLOSES = new Set([1001, 1006, 1011, 1012, 1013]);

// ---------------------------------------------------------------- the guide's messages

/** What `?m365_error=CODE` means, in the guide's words (Troubleshooting). */
const CONNECT_ERRORS = {
  ACCESS_DENIED: ["You denied the authorization request",
    "The consent screen was cancelled, or the account used can't grant consent. Click Connect M365 again and Accept all requested permissions, signing in with a Global Administrator account."],
  ADMIN_CONSENT_REQUIRED: ["Admin consent is required",
    "A non-admin attempted to approve the connection. Have a Global Administrator complete the consent step."],
  SESSION_EXPIRED: ["Your session has expired. Please try connecting again.",
    "The one-time security token used during connect expired (it's valid for about 15 minutes) or was already used. Simply click Connect M365 again to restart."],
  NO_REFRESH_TOKEN: ["Microsoft did not provide a refresh token",
    "Microsoft didn't return the long-lived token Scopable needs, usually because not all requested permissions were approved. Reconnect and approve the full set."],
  FEATURE_DISABLED: ["The Microsoft 365 integration is not enabled for this account.",
    "The integration is enabled gradually. Contact Scopable to request access."],
  PARTNER_TENANT_IN_USE: ["This Microsoft 365 tenant is already connected to another Scopable account.",
    "Sign in with a Global Administrator of your own Partner Center tenant. If this tenant should move to this account, disconnect it from the other account first."],
  PARTNER_TENANT_MISMATCH: ["This account is connected to another Microsoft 365 tenant than the one that consented.",
    "To switch tenants, click Disconnect M365 first, then connect again. To keep the current tenant, sign in with one of its Global Administrators."],
  MICROSOFT_ERROR: ["Microsoft could not complete the connection.",
    "Click Connect M365 to try again. If it keeps failing, email us with a screenshot of this page."],
  INTERNAL_SERVER_ERROR: ["Something went wrong on our side while connecting.",
    "Click Connect M365 to try again. If it keeps failing, email us with a screenshot of this page."],
};

const NO_PERMISSION = "You need the Manage Tenant Settings permission to connect Microsoft 365. Ask an admin of your account.";

// ---------------------------------------------------------------- DOM helpers

/** `h("button", {class: "primary", onclick: f}, "Save")`: an element, its attributes, its children. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

function pct(n) { return `${(Math.round(n * 10) / 10).toFixed(1)} %`; }

function badge(text, tone) { return h("span", { class: `badge ${tone}` }, text); }

const OUTCOME_TONE = { OK: "ok", SUCCEEDED: "ok", PARTIAL: "warn", FAILED: "bad", CANCELLED: "neutral",
  RUNNING: "warn", QUEUED: "neutral", IDLE: "neutral", CONNECTED: "ok", NEEDS_RECONNECT: "bad",
  ENABLED: "ok", DISABLED: "bad", UNAVAILABLE: "warn", PROTECTED: "ok", NOT_ENFORCED: "warn",
  NOT_REGISTERED: "bad", UNPROTECTED: "bad", UNKNOWN: "neutral" };

function state(value) { return badge(value.replaceAll("_", " ").toLowerCase(), OUTCOME_TONE[value] || "neutral"); }

function alertBox(tone, title, detail, code) {
  return h("div", { class: `alert ${tone}`, role: tone === "bad" ? "alert" : "status" },
    h("strong", {}, title), detail ? h("p", {}, detail) : null,
    code ? h("p", { class: "code" }, `code: ${code}`) : null);
}

function showBanner(node) {
  const b = document.getElementById("banner");
  b.replaceChildren(...(node ? [node] : []));
}

function errorBox(e) {
  return alertBox("bad", e.message || String(e), null, e.code);
}

// ---------------------------------------------------------------- session

let token = null;
try { token = sessionStorage.getItem(TOKEN_KEY); } catch (_) { /* storage off */ }

/** The link `demo` prints carries the token in the fragment (never sent to a server): keep it in
 *  this tab's sessionStorage and take it out of the address bar at once. */
function takeTokenFromFragment() {
  const m = location.hash.match(/^#token=([^&]+)/);
  if (!m) return;
  token = decodeURIComponent(m[1]);
  try { sessionStorage.setItem(TOKEN_KEY, token); } catch (_) { /* storage off */ }
  history.replaceState(null, "", location.pathname + location.search + "#/m365");
}

function claims() {
  try {
    const part = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(atob(part));
  } catch (_) { return null; }
}

function renderSession() {
  const el = document.getElementById("session");
  if (token) {
    const c = claims();
    const who = c ? `${c.sub} · account ${c.account_id}` : "signed in";
    el.replaceChildren(
      h("span", { class: "who" }, who),
      h("button", { type: "button", onclick: signOut }, "Sign out"));
    return;
  }
  const input = h("input", { id: "token-input", type: "password", autocomplete: "off", required: true,
    placeholder: "Paste an API token" });
  el.replaceChildren(h("form", { onsubmit: (ev) => { ev.preventDefault(); signIn(input.value.trim()); } },
    h("label", { for: "token-input", class: "who" }, "API token"), input,
    h("button", { type: "submit" }, "Sign in")));
}

function signIn(value) {
  if (!value) return;
  token = value.replace(/^Bearer\s+/i, "");
  try { sessionStorage.setItem(TOKEN_KEY, token); } catch (_) { /* storage off */ }
  renderSession();
  route();
}

function signOut() {
  token = null;
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* storage off */ }
  renderSession();
  route();
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(message, code, extensions) {
    super(message);
    this.code = code;
    this.extensions = extensions || {};
  }
}

/** One GraphQL operation over POST /graphql; the first error is thrown with its code. */
async function gql(query, variables) {
  let r;
  try {
    r = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError("The service did not answer. Is it running?", "NETWORK");
  }
  let body;
  try { body = await r.json(); } catch (_) { throw new ApiError(`The service answered HTTP ${r.status}.`, `HTTP_${r.status}`); }
  if (body.errors && body.errors.length) {
    const e = body.errors[0];
    if (e.extensions && e.extensions.code === "UNAUTHENTICATED") onUnauthenticated(e.message);
    throw new ApiError(e.message, e.extensions && e.extensions.code, e.extensions);
  }
  return body.data;
}

function onUnauthenticated(message) {
  showBanner(alertBox("bad", "Your token was not accepted.", `${message} Paste a new token to sign in again.`, "UNAUTHENTICATED"));
}

/** A subscription over /graphql/ws (graphql-transport-ws). Returns a function that stops it.
 *  `onEnd(error)` is called once: with null when the server completed the stream. */
function subscribe(query, onNext, onEnd) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql/ws`;
  const ws = new WebSocket(url, "graphql-transport-ws");
  let ended = false;
  const end = (err) => { if (!ended) { ended = true; onEnd(err); } };
  ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } }));
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "connection_ack") ws.send(JSON.stringify({ id: "progress", type: "subscribe", payload: { query } }));
    else if (msg.type === "ping") ws.send(JSON.stringify({ type: "pong" }));
    else if (msg.type === "next") {
      if (msg.payload.errors && msg.payload.errors.length) end(new ApiError(msg.payload.errors[0].message, msg.payload.errors[0].extensions?.code));
      else onNext(msg.payload.data);
    } else if (msg.type === "error") end(new ApiError(msg.payload[0]?.message || "subscription refused", msg.payload[0]?.extensions?.code));
    else if (msg.type === "complete") { end(null); ws.close(1000); }
  };
  ws.onclose = (ev) => {
    if (ev.code === 1000) { end(null); return; }
    const e = new ApiError(`Live updates stopped (${ev.code}${ev.reason ? `: ${ev.reason}` : ""}).`, "SOCKET_CLOSED");
    e.closeCode = ev.code;
    end(e);
  };
  return () => { ended = true; if (ws.readyState <= 1) ws.close(1000); };
}

// ---------------------------------------------------------------- routing

const VIEWS = { m365: m365View, mapping: mappingView, users: usersView };
let cleanup = [];

function route() {
  for (const f of cleanup) f();
  cleanup = [];
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  const key = VIEWS[name] ? name : "m365";
  for (const a of document.querySelectorAll("[data-route]")) {
    if (a.dataset.route === key) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const view = document.getElementById("view");
  view.replaceChildren();
  if (!token) {
    view.append(h("h1", {}, "Sign in"),
      h("div", { class: "card" },
        h("p", {}, "Paste an API token above. ", h("code", {}, "cargo run -- demo"),
          " prints a link that signs you in with the demo's admin token."),
        h("p", { class: "muted" }, "The token stays in this browser tab (sessionStorage) and is sent only in the Authorization header.")));
    return;
  }
  VIEWS[key](view, (f) => cleanup.push(f));
}

/** Runs `f` every second until the view changes; returns a function that stops it early. */
function every(onCleanup, f, ms = 1000) {
  const id = setInterval(f, ms);
  onCleanup(() => clearInterval(id));
  return () => clearInterval(id);
}

// ---------------------------------------------------------------- Microsoft 365 tab

const RUN_FIELDS = `id trigger status phase currentTenant tenantsTotal tenantsDone tenantsFailed usersSynced
  createdAt startedAt finishedAt error errorCode version
  tenantResults { tenantId displayName outcome errorCode error remediation usersSynced }`;

const INTEGRATION = `query Integration {
  m365Integration {
    enabled canManage helperText
    connection { status partnerTenantId partnerTenantName connectedAt connectedBy lastError consentedBy { userPrincipalName objectId } }
    sync { state cooldownRemainingSeconds nextScheduledAt currentRun { ${RUN_FIELDS} } lastRun { ${RUN_FIELDS} } }
  }
}`;

const CUSTOMERS = `query Customers { m365Tenants(first: 100) { totalCount edges { node {
  id displayName defaultDomain userCount syncStatus lastSyncedAt mapping { client { name } } } } } }`;

function m365View(view, onCleanup) {
  view.append(h("h1", {}, "Microsoft 365"));
  const body = h("div", {});
  view.append(body);
  let stopLive = null;
  let active = true;
  let retries = 0;
  onCleanup(() => { active = false; if (stopLive) stopLive(); });
  let cooldownUntil = 0;
  let cooldownTick = null;
  let data = null;

  // The outcome of the consent round trip, once, then out of the address bar.
  const params = new URLSearchParams(location.search);
  if (params.has("m365") || params.has("m365_error")) {
    const code = params.get("m365_error");
    if (code) {
      const [title, help] = CONNECT_ERRORS[code] || CONNECT_ERRORS.MICROSOFT_ERROR;
      showBanner(alertBox("bad", title, help, code));
    } else {
      showBanner(alertBox("ok", "Microsoft 365 is connected.", "The connection is stored and the first sync has started; its progress shows below."));
    }
    history.replaceState(null, "", location.pathname + location.hash);
  }

  async function load() {
    try {
      data = (await gql(INTEGRATION)).m365Integration;
    } catch (e) {
      body.replaceChildren(errorBox(e));
      return;
    }
    cooldownUntil = Date.now() + data.sync.cooldownRemainingSeconds * 1000;
    render();
    if (data.enabled && data.connection && !stopLive) live();
  }

  function render() {
    const d = data;
    if (!d.enabled) {
      body.replaceChildren(alertBox("info", "Microsoft 365 is not enabled for this account yet.",
        "This integration is rolled out gradually. Contact Scopable to request access."));
      return;
    }
    const card = h("section", { class: "card", "aria-labelledby": "conn-title" });
    const connectBtn = h("button", { id: "connect", class: d.connection ? "" : "primary", type: "button",
      disabled: !d.canManage, "aria-describedby": d.canManage ? null : "connect-reason", onclick: connect },
      d.connection ? "Reconnect M365" : "Connect M365");
    card.append(h("div", { class: "card-head" },
      h("div", { class: "grow" }, h("h2", { id: "conn-title" }, "Microsoft 365 Connection"),
        h("p", { class: "helper" }, d.helperText)),
      h("div", {}, connectBtn)));
    if (!d.canManage) card.append(h("p", { id: "connect-reason", class: "reason" }, NO_PERMISSION));
    if (d.connection) {
      const c = d.connection;
      card.append(h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", { id: "conn-status" }, state(c.status)),
        h("dt", {}, "Partner tenant"), h("dd", {}, c.partnerTenantName || "—", " ", h("span", { class: "sub" }, c.partnerTenantId)),
        h("dt", {}, "Consented by"), h("dd", {}, c.consentedBy ? (c.consentedBy.userPrincipalName || c.consentedBy.objectId) : "—"),
        h("dt", {}, "Connected"), h("dd", {}, `${fmtTime(c.connectedAt)} by ${c.connectedBy}`)));
      if (c.lastError) card.append(alertBox("bad", c.lastError, c.status === "NEEDS_RECONNECT" ? "Disconnect M365 and reconnect to re-establish consent." : null));
      card.append(h("div", { class: "row" },
        h("button", { id: "disconnect", class: "danger", type: "button", disabled: !d.canManage, onclick: confirmDisconnect }, "Disconnect M365")));
    }
    const nodes = [card];
    if (d.connection) nodes.push(syncCard(d), h("section", { id: "customers", class: "card", "aria-labelledby": "cust-title" },
      h("div", { class: "card-head" }, h("h2", { id: "cust-title" }, "Connected Customers"),
        h("a", { class: "button", href: "#/mapping" }, "Manage Tenant Mappings")),
      h("p", { class: "empty" }, "Loading…")));
    body.replaceChildren(...nodes);
    if (d.connection) loadCustomers();
    tickCooldown();
  }

  function syncCard(d) {
    const run = d.sync.currentRun || d.sync.lastRun;
    const trigger = h("button", { id: "trigger-sync", class: "primary", type: "button", disabled: !d.canManage, onclick: triggerSync }, "Trigger Sync");
    const card = h("section", { class: "card", "aria-labelledby": "sync-title" },
      h("div", { class: "card-head" },
        h("div", {}, h("h2", { id: "sync-title" }, "Sync"),
          h("p", { class: "helper" }, "Pulls users, MFA status and licenses. There's a short 30-second cooldown between manual syncs.")),
        h("div", { class: "row" }, trigger,
          h("button", { id: "refresh-status", type: "button", onclick: load }, "Refresh Status"))),
      h("p", { id: "cooldown", class: "reason" }),
      h("p", {}, "Sync status: ", h("span", { id: "sync-state" }, state(d.sync.state)),
        d.sync.nextScheduledAt ? h("span", { class: "sub" }, ` · next scheduled sync ${fmtTime(d.sync.nextScheduledAt)}`) : null),
      h("div", { id: "progress" }, run ? progress(run) : h("p", { class: "empty" }, "No sync has run yet.")));
    return card;
  }

  function tickCooldown() {
    const btn = document.getElementById("trigger-sync");
    const note = document.getElementById("cooldown");
    if (!btn || !note) return;
    const left = Math.ceil((cooldownUntil - Date.now()) / 1000);
    const running = data.sync.state !== "IDLE";
    btn.disabled = !data.canManage || left > 0 || running;
    note.textContent = !data.canManage ? NO_PERMISSION
      : left > 0 ? `Trigger Sync is available again in ${left} s (30-second cooldown between manual syncs).`
        : running ? "A sync is in progress. Wait for it to finish, then trigger again." : "";
    if (left > 0 && !cooldownTick) cooldownTick = every(onCleanup, () => {
      tickCooldown();
      if (cooldownUntil <= Date.now()) { cooldownTick(); cooldownTick = null; }
    });
  }

  function progress(run) {
    const done = run.tenantsDone;
    const total = run.tenantsTotal;
    const live = run.status === "RUNNING" || run.status === "QUEUED";
    return h("div", { "aria-live": "polite", "aria-busy": live ? "true" : "false" },
      h("h3", {}, live ? "Sync in progress" : "Last sync", " ", state(run.status)),
      h("div", { class: "progress-line" },
        h("span", { id: "tenants-progress" }, `${done} of ${total} tenants`, run.tenantsFailed ? ` (${run.tenantsFailed} failed)` : ""),
        h("span", {}, `${run.usersSynced} users synced`),
        h("span", { class: "sub" }, live ? (run.phase ? `phase: ${run.phase}` : "") : `finished ${fmtTime(run.finishedAt)}`)),
      h("progress", { max: Math.max(total, 1), value: done, "aria-label": "Tenants synced" }),
      live && run.currentTenant ? h("p", { class: "sub" }, `Now syncing: ${run.currentTenant}`) : null,
      run.error ? alertBox("bad", run.error, null, run.errorCode) : null,
      run.tenantResults.length ? h("div", { class: "table-wrap" }, h("table", { id: "tenant-results" },
        h("caption", { class: "sub" }, "Per-tenant outcomes"),
        h("thead", {}, h("tr", {}, h("th", {}, "Tenant"), h("th", {}, "Outcome"), h("th", { class: "num" }, "Users"), h("th", {}, "What to do"))),
        h("tbody", {}, run.tenantResults.map((t) => h("tr", {},
          h("td", {}, t.displayName), h("td", {}, state(t.outcome)), h("td", { class: "num" }, t.usersSynced),
          h("td", {}, t.error ? h("div", {}, t.error) : null, t.remediation ? h("div", { class: "sub" }, t.remediation) : null)))))) : null);
  }

  function live() {
    stopLive = subscribe(`subscription Progress { m365SyncProgress { ${RUN_FIELDS} } }`, (d) => {
      const run = d.m365SyncProgress;
      const running = run.status === "RUNNING" || run.status === "QUEUED";
      if (data) data.sync.state = running ? run.status : "IDLE";
      const slot = document.getElementById("progress");
      if (slot) slot.replaceChildren(progress(run));
      const st = document.getElementById("sync-state");
      if (st) st.replaceChildren(state(data.sync.state));
      tickCooldown();
      if (!running && slot) loadCustomers();
    }, (err) => {
      stopLive = null;
      if (!active) return;
      if (err && err.code === "SOCKET_CLOSED" && RETRY_CLOSES.has(err.closeCode)) {
        // The server restarted or the network dropped: follow again in a moment.
        retries += 1;
        const wait = Math.min(30, 2 ** retries);
        showBanner(alertBox("info", "Live updates paused.", `Reconnecting in ${wait} s…`));
        const id = setTimeout(() => { if (active) { showBanner(null); load(); } }, wait * 1000);
        onCleanup(() => clearTimeout(id));
        return;
      }
      if (err) { showBanner(errorBox(err)); return; }
      retries = 0;
      // The run ended: refresh what it changed, and wait for the next one.
      load();
    });
  }

  async function loadCustomers() {
    const slot = document.getElementById("customers");
    if (!slot) return;
    let list;
    try { list = (await gql(CUSTOMERS)).m365Tenants; } catch (e) { slot.lastChild.replaceWith(errorBox(e)); return; }
    const content = list.edges.length === 0
      ? h("p", { class: "empty" }, "No customer tenants yet: they appear after the first sync discovers your GDAP relationships.")
      : h("div", { class: "table-wrap" }, h("table", {},
        h("caption", { class: "sub" }, `${list.totalCount} customer tenants`),
        h("thead", {}, h("tr", {}, h("th", {}, "Customer"), h("th", {}, "Client"), h("th", { class: "num" }, "Users"), h("th", {}, "Last sync"))),
        h("tbody", {}, list.edges.map(({ node: t }) => h("tr", {},
          h("td", {}, t.displayName, h("div", { class: "sub" }, t.defaultDomain || "")),
          h("td", {}, t.mapping ? t.mapping.client.name : h("span", { class: "muted" }, "Unmapped")),
          h("td", { class: "num" }, t.userCount),
          h("td", {}, t.syncStatus ? state(t.syncStatus) : "—", " ", h("span", { class: "sub" }, fmtTime(t.lastSyncedAt))))))));
    slot.replaceChildren(slot.firstChild, content);
  }

  async function connect() {
    try {
      const r = (await gql("mutation Connect { connectM365 { authorizationUrl expiresAt } }")).connectM365;
      location.assign(r.authorizationUrl);
    } catch (e) { showBanner(errorBox(e)); }
  }

  async function triggerSync() {
    try {
      await gql(`mutation Trigger { triggerM365Sync { id status } }`);
      showBanner(alertBox("ok", "Sync started.", "Progress shows below as it happens."));
      cooldownUntil = Date.now() + COOLDOWN_SECONDS * 1000;
      data.sync.state = "QUEUED";
      const st = document.getElementById("sync-state");
      if (st) st.replaceChildren(state("QUEUED"));
      tickCooldown();
      if (!stopLive) live();
    } catch (e) {
      if (e.code === "SYNC_COOLDOWN") cooldownUntil = Date.now() + (e.extensions.retryAfterSeconds || COOLDOWN_SECONDS) * 1000;
      showBanner(errorBox(e));
      tickCooldown();
    }
  }

  function confirmDisconnect() {
    const dlg = document.getElementById("dialog");
    const go = h("button", { class: "danger primary", type: "button", onclick: async () => {
      go.disabled = true;
      try {
        const r = (await gql(`mutation Disconnect { disconnectM365 { users licenses licenseAssignments tenants mappings
          connectStates authorizationRemoved syncsCancelled mfaHistoryRows evidenceSnapshotsKept } }`)).disconnectM365;
        dlg.close();
        if (stopLive) { stopLive(); stopLive = null; }
        showBanner(h("div", { class: "alert ok", role: "status", id: "disconnected" },
          h("strong", {}, "Microsoft 365 is disconnected."),
          h("ul", { class: "removed" },
            h("li", {}, `${plural(r.tenants, "tenant")}, ${plural(r.users, "user")}, ${plural(r.licenses, "license")} (${plural(r.licenseAssignments, "assignment")}) and ${plural(r.mappings, "mapping")} removed`),
            h("li", {}, r.authorizationRemoved ? "The stored authorization was removed." : "There was no stored authorization."),
            r.syncsCancelled ? h("li", {}, `${plural(r.syncsCancelled, "running sync")} stopped`) : null,
            h("li", {}, `${plural(r.evidenceSnapshotsKept, "evidence snapshot")} kept for your auditors; clients and contacts kept.`))));
        load();
      } catch (e) { dlg.close(); showBanner(errorBox(e)); }
    } }, "Disconnect");
    dlg.replaceChildren(
      h("h2", { id: "dialog-title" }, "Disconnect Microsoft 365?"),
      h("p", {}, "Disconnecting removes the synced Microsoft 365 data (user records, license records, and tenant-to-client mappings) along with the stored authorization, and stops a running sync."),
      h("p", {}, "Your clients and contacts stay, and so do the MFA evidence snapshots already taken. You'd reconnect and re-sync to restore the rest."),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dlg.close() }, "Cancel"), go));
    dlg.showModal();
  }

  load();
}

// ---------------------------------------------------------------- Tenant Mapping

const TENANTS = `query Tenants($first: Int, $after: String, $filter: M365TenantFilter) {
  m365TenantMappingSummary { total mapped unmapped }
  m365Tenants(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id displayName defaultDomain userCount
      mapping { method client { id name } }
      suggestions(first: 3) { confidence reasons client { id name } } } }
  }
}`;

function mappingView(view, onCleanup) {
  const PAGE = 50;
  const stateV = { search: "", mapped: "", cursors: [null], page: 0, selected: new Set(), threshold: 80, tenants: [] };
  const summary = h("div", { class: "stats", id: "mapping-summary" });
  const list = h("div", { id: "tenant-list" });
  const search = h("input", { id: "tenant-search", type: "search", placeholder: "Tenant name" });
  const mappedSel = h("select", { id: "mapped-filter" },
    h("option", { value: "" }, "All tenants"), h("option", { value: "false" }, "Unmapped"), h("option", { value: "true" }, "Mapped"));
  const threshold = h("input", { id: "threshold", type: "number", min: 0, max: 100, value: 80, class: "narrow" });
  const mapSelected = h("button", { id: "map-selected", class: "primary", type: "button", disabled: true, onclick: openBulk }, "Map Selected");
  const acceptBtn = h("button", { id: "accept-suggestions", type: "button", disabled: true, onclick: acceptSuggestions }, "Accept suggestions");
  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { stateV.search = search.value; reset(); }, 250); });
  mappedSel.addEventListener("change", () => { stateV.mapped = mappedSel.value; reset(); });
  onCleanup(() => clearTimeout(timer));

  view.append(h("h1", {}, "M365 Tenant Mapping"),
    h("p", { class: "helper" }, "Map each discovered Microsoft 365 tenant to one of your clients so its users land under the right client. Unmapped tenants still sync users, but those users can't be linked to a client until you map the tenant."),
    summary,
    h("div", { class: "filters" },
      h("div", { class: "field" }, h("label", { for: "tenant-search" }, "Search"), search),
      h("div", { class: "field" }, h("label", { for: "mapped-filter" }, "Show"), mappedSel),
      h("div", { class: "grow" }),
      mapSelected,
      h("div", { class: "field" }, h("label", { for: "threshold" }, "Lowest confidence"), threshold),
      acceptBtn),
    list);

  function reset() { stateV.cursors = [null]; stateV.page = 0; load(); }

  function syncButtons() {
    const n = stateV.selected.size;
    mapSelected.disabled = n === 0;
    acceptBtn.disabled = n === 0;
    mapSelected.textContent = n ? `Map Selected (${n})` : "Map Selected";
    acceptBtn.textContent = n ? `Accept suggestions (${n})` : "Accept suggestions";
  }

  async function load() {
    const filter = {};
    if (stateV.search) filter.search = stateV.search;
    if (stateV.mapped) filter.mapped = stateV.mapped === "true";
    let d;
    try { d = await gql(TENANTS, { first: PAGE, after: stateV.cursors[stateV.page], filter }); } catch (e) { list.replaceChildren(errorBox(e)); return; }
    const s = d.m365TenantMappingSummary;
    summary.replaceChildren(
      h("div", { class: "stat" }, h("span", { class: "n", id: "count-total" }, s.total), h("span", { class: "l" }, "Total Tenants")),
      h("div", { class: "stat" }, h("span", { class: "n", id: "count-mapped" }, s.mapped), h("span", { class: "l" }, "Mapped")),
      h("div", { class: "stat" }, h("span", { class: "n", id: "count-unmapped" }, s.unmapped), h("span", { class: "l" }, "Unmapped")));
    const conn = d.m365Tenants;
    stateV.tenants = conn.edges.map((e) => e.node);
    const ids = new Set(stateV.tenants.filter((t) => !t.mapping).map((t) => t.id));
    for (const id of [...stateV.selected]) if (!ids.has(id)) stateV.selected.delete(id);
    syncButtons();
    if (!stateV.tenants.length) {
      list.replaceChildren(h("p", { class: "empty" }, s.total ? "No tenant matches." : "No tenants yet: connect Microsoft 365 and run a sync."));
      return;
    }
    const all = h("input", { type: "checkbox", id: "select-all", "aria-label": "Select all unmapped tenants on this page", onchange: (ev) => {
      for (const t of stateV.tenants) if (!t.mapping) { if (ev.target.checked) stateV.selected.add(t.id); else stateV.selected.delete(t.id); }
      for (const box of list.querySelectorAll("input[data-tenant]")) box.checked = ev.target.checked;
      syncButtons();
    } });
    list.replaceChildren(h("div", { class: "table-wrap" }, h("table", { id: "tenants" },
      h("caption", { class: "sub" }, `${conn.totalCount} tenants`),
      h("thead", {}, h("tr", {}, h("th", {}, all), h("th", {}, "Tenant"), h("th", { class: "num" }, "Users"), h("th", {}, "Client"), h("th", {}, "Suggested match"), h("th", {}, ""))),
      h("tbody", {}, stateV.tenants.map(row)))),
    h("div", { class: "pager" },
      h("button", { type: "button", disabled: stateV.page === 0, onclick: () => { stateV.page--; load(); } }, "Previous"),
      h("span", { class: "sub" }, `Page ${stateV.page + 1}`),
      h("button", { type: "button", disabled: !conn.pageInfo.hasNextPage, onclick: () => { stateV.cursors[stateV.page + 1] = conn.pageInfo.endCursor; stateV.page++; load(); } }, "Next")));
  }

  function row(t) {
    const top = t.suggestions[0];
    const box = t.mapping ? null : h("input", { type: "checkbox", "data-tenant": t.id, checked: stateV.selected.has(t.id),
      "aria-label": `Select ${t.displayName}`, onchange: (ev) => { if (ev.target.checked) stateV.selected.add(t.id); else stateV.selected.delete(t.id); syncButtons(); } });
    return h("tr", { "data-tenant-row": t.displayName },
      h("td", {}, box),
      h("td", {}, t.displayName, h("div", { class: "sub" }, t.defaultDomain || "")),
      h("td", { class: "num" }, t.userCount),
      h("td", {}, t.mapping ? [t.mapping.client.name, " ", h("span", { class: "sub" }, t.mapping.method.toLowerCase())] : h("span", { class: "muted" }, "Unmapped")),
      h("td", {}, top && !t.mapping ? [top.client.name, " ", badge(`${top.confidence}%`, top.confidence >= 80 ? "ok" : "warn")] : ""),
      h("td", {}, t.mapping
        ? h("button", { type: "button", class: "danger", onclick: () => unmap(t) , "aria-label": `Unmap ${t.displayName}` }, "Unmap")
        : h("button", { type: "button", onclick: () => openMap(t), "aria-label": `Map ${t.displayName}` }, "Map")));
  }

  async function unmap(t) {
    try {
      await gql("mutation Unmap($id: ID!) { deleteTenantMapping(tenantId: $id) }", { id: t.id });
      showBanner(alertBox("ok", `${t.displayName} is unmapped.`, "Its users' contact links were removed."));
      load();
    } catch (e) { showBanner(errorBox(e)); }
  }

  /** A client picker: suggestions first, then a Select Client search box. Calls `onPick(client)`. */
  function clientPicker(t, name, onPick) {
    const results = h("ul", { class: "choices", id: `${name}-results` });
    const choose = (c) => h("li", {}, h("label", {},
      h("input", { type: "radio", name, value: c.id, onchange: () => onPick(c) }), h("span", {}, c.name)));
    const input = h("input", { type: "search", id: `${name}-search`, placeholder: "Client name", autocomplete: "off" });
    let timer = null;
    const find = async () => {
      try {
        const d = await gql("query Clients($s: String) { clients(first: 10, search: $s) { edges { node { id name } } } }", { s: input.value || null });
        results.replaceChildren(...(d.clients.edges.length ? d.clients.edges.map((e) => choose(e.node)) : [h("li", { class: "muted" }, "No client matches.")]));
      } catch (e) { results.replaceChildren(h("li", {}, errorBox(e))); }
    };
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(find, 200); });
    const sugg = t.suggestions.length
      ? h("ul", { class: "choices" }, t.suggestions.map((s, i) => h("li", {}, h("label", {},
        h("input", { type: "radio", name, value: s.client.id, checked: i === 0, onchange: () => onPick(s.client) }),
        h("span", {}, h("strong", {}, s.client.name), " ", badge(`${s.confidence}% confidence`, s.confidence >= 80 ? "ok" : "warn"),
          h("div", { class: "sub" }, s.reasons.join("; ")))))))
      : h("p", { class: "empty" }, "No suggested match: search for the client.");
    if (t.suggestions.length) onPick(t.suggestions[0].client);
    find();
    return h("div", {},
      h("h3", {}, "Suggested Matches"), sugg,
      h("div", { class: "field" }, h("label", { for: `${name}-search` }, "Select Client"), input), results);
  }

  function openMap(t) {
    const dlg = document.getElementById("dialog");
    let chosen = null;
    const create = h("button", { id: "create-mapping", class: "primary", type: "button", disabled: true, onclick: async () => {
      create.disabled = true;
      try {
        await gql("mutation Map($t: ID!, $c: ID!) { createTenantMapping(tenantId: $t, clientId: $c) { client { name } } }", { t: t.id, c: chosen.id });
        dlg.close();
        showBanner(alertBox("ok", `${t.displayName} is mapped to ${chosen.name}.`, "Its users are linked to the client's contacts by e-mail."));
        stateV.selected.delete(t.id);
        load();
      } catch (e) { create.disabled = false; err.replaceChildren(errorBox(e)); }
    } }, "Create Mapping");
    const err = h("div", {});
    const picker = clientPicker(t, "map-client", (c) => { chosen = c; create.disabled = false; create.textContent = `Create Mapping to ${c.name}`; });
    dlg.replaceChildren(h("h2", { id: "dialog-title" }, `Map ${t.displayName}`),
      h("p", { class: "sub" }, t.defaultDomain || ""), picker, err,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dlg.close() }, "Cancel"), create));
    dlg.showModal();
  }

  function openBulk() {
    const dlg = document.getElementById("dialog");
    const picks = new Map();
    const chosen = stateV.tenants.filter((t) => stateV.selected.has(t.id));
    const err = h("div", {});
    const go = h("button", { id: "confirm-bulk", class: "primary", type: "button", onclick: async () => {
      const mappings = chosen.filter((t) => picks.has(t.id)).map((t) => ({ tenantId: t.id, clientId: picks.get(t.id).id }));
      if (!mappings.length) { err.replaceChildren(alertBox("bad", "Choose a client for at least one tenant.")); return; }
      go.disabled = true;
      try {
        const r = (await gql("mutation Bulk($m: [TenantMappingInput!]!) { bulkCreateTenantMappings(mappings: $m) { mappings { tenant { displayName } } skipped { tenantId reason } } }", { m: mappings })).bulkCreateTenantMappings;
        dlg.close();
        stateV.selected.clear();
        showBanner(alertBox("ok", `${plural(r.mappings.length, "tenant")} mapped.`, r.skipped.length ? `${r.skipped.length} skipped: ${r.skipped.map((s) => s.reason).join("; ")}` : null));
        load();
      } catch (e) { go.disabled = false; err.replaceChildren(errorBox(e)); }
    } }, `Map ${plural(chosen.length, "tenant")}`);
    dlg.replaceChildren(h("h2", { id: "dialog-title" }, "Map Selected"),
      h("p", {}, "Each selected tenant starts with its top suggestion; change any before mapping. All are mapped, or none."),
      h("div", { class: "table-wrap" }, h("table", {}, h("tbody", {}, chosen.map((t) => {
        const sel = h("select", { "aria-label": `Client for ${t.displayName}`, onchange: (ev) => {
          const s = t.suggestions.find((x) => x.client.id === ev.target.value);
          if (s) picks.set(t.id, s.client); else picks.delete(t.id);
        } }, h("option", { value: "" }, "— leave unmapped —"),
        t.suggestions.map((s, i) => h("option", { value: s.client.id, selected: i === 0 }, `${s.client.name} (${s.confidence}%)`)));
        if (t.suggestions.length) picks.set(t.id, t.suggestions[0].client);
        return h("tr", {}, h("td", {}, t.displayName), h("td", {}, t.suggestions.length ? sel : h("span", { class: "muted" }, "No suggestion: use Map on its row")));
      })))), err,
      h("div", { class: "actions" }, h("button", { type: "button", onclick: () => dlg.close() }, "Cancel"), go));
    dlg.showModal();
  }

  async function acceptSuggestions() {
    const min = Math.max(0, Math.min(100, parseInt(threshold.value, 10) || 0));
    try {
      const r = (await gql("mutation Accept($ids: [ID!]!, $min: Int!) { acceptTenantSuggestions(tenantIds: $ids, minConfidence: $min) { mappings { tenant { displayName } client { name } } skipped { tenantId reason } } }",
        { ids: [...stateV.selected], min })).acceptTenantSuggestions;
      stateV.selected.clear();
      const names = new Map(stateV.tenants.map((t) => [t.id, t.displayName]));
      showBanner(h("div", { class: "alert ok", role: "status" },
        h("strong", {}, `${plural(r.mappings.length, "suggestion")} at ${min}% or more accepted.`),
        r.skipped.length ? h("ul", { class: "removed" }, r.skipped.map((s) => h("li", {}, `${names.get(s.tenantId) || s.tenantId}: ${s.reason}`))) : null));
      load();
    } catch (e) { showBanner(errorBox(e)); }
  }

  load();
}

// ---------------------------------------------------------------- Users and MFA

const USERS = `query Users($first: Int, $after: String, $filter: M365UserFilter) {
  m365Users(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id displayName userPrincipalName accountEnabled isAdmin isLicensed
      mfa { status verdict explanation } tenant { displayName } client { name } contact { name } } }
  }
}`;

const OVERVIEW = `query Overview($tenantId: ID, $clientId: ID) {
  m365Tenants(first: 500) { edges { node { id displayName } } }
  clients(first: 500) { edges { node { id name } } }
  mfaCoverage(tenantId: $tenantId, clientId: $clientId) { users enabled coveragePercent adminsWithoutMfa dataAsOf
    verdicts { protected notEnforced notRegistered unprotected unknown }
    tenants { coveragePercent users enabled adminsWithoutMfa tenant { id displayName } } }
  mfaEvidence(tenantId: $tenantId, clientId: $clientId, first: 500) { edges { node { runId takenAt figures { users enabled } } } }
  m365Licenses(tenantId: $tenantId, clientId: $clientId) { friendlyName skuPartNumber enabledUnits consumedUnits availableUnits tenant { displayName } }
}`;

function usersView(view, onCleanup) {
  const PAGE = 50;
  const f = { cursors: [null], page: 0 };
  const sel = (id, label, options) => {
    const s = h("select", { id }, options.map(([v, t]) => h("option", { value: v }, t)));
    return [h("div", { class: "field" }, h("label", { for: id }, label), s), s];
  };
  const yesNo = [["", "Any"], ["true", "Yes"], ["false", "No"]];
  const [tenantField, tenantSel] = sel("f-tenant", "Tenant", [["", "All tenants"]]);
  const [clientField, clientSel] = sel("f-client", "Client", [["", "All clients"]]);
  const [statusField, statusSel] = sel("f-mfa", "MFA status", [["", "Any"], ["ENABLED", "Enabled"], ["DISABLED", "Disabled"], ["UNAVAILABLE", "Unavailable"]]);
  const [verdictField, verdictSel] = sel("f-verdict", "MFA verdict", [["", "Any"], ["PROTECTED", "Protected"], ["NOT_ENFORCED", "Not enforced"], ["NOT_REGISTERED", "Not registered"], ["UNPROTECTED", "Unprotected"], ["UNKNOWN", "Unknown"]]);
  const [adminField, adminSel] = sel("f-admin", "Admin", yesNo);
  const [licField, licSel] = sel("f-licensed", "Licensed", yesNo);
  const [contactField, contactSel] = sel("f-contact", "Linked contact", yesNo);
  const search = h("input", { id: "f-search", type: "search", placeholder: "Name or e-mail" });
  const coverage = h("section", { class: "card", id: "coverage", "aria-labelledby": "cov-title" });
  const users = h("section", { class: "card", id: "users", "aria-labelledby": "users-title" });
  const licenses = h("section", { class: "card", id: "licenses", "aria-labelledby": "lic-title" });
  view.append(h("h1", {}, "Users and MFA"),
    h("div", { class: "filters" }, tenantField, clientField, statusField, verdictField, adminField, licField, contactField,
      h("div", { class: "field" }, h("label", { for: "f-search" }, "Search"), search)),
    coverage, users, licenses);
  let timer = null;
  onCleanup(() => clearTimeout(timer));
  for (const s of [statusSel, verdictSel, adminSel, licSel, contactSel]) s.addEventListener("change", () => { f.cursors = [null]; f.page = 0; loadUsers(); });
  for (const s of [tenantSel, clientSel]) s.addEventListener("change", () => { f.cursors = [null]; f.page = 0; loadUsers(); loadOverview(); });
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { f.cursors = [null]; f.page = 0; loadUsers(); }, 250); });

  function scope() {
    return { tenantId: tenantSel.value || null, clientId: tenantSel.value ? null : clientSel.value || null };
  }

  async function loadOverview() {
    let d;
    try { d = await gql(OVERVIEW, scope()); } catch (e) { coverage.replaceChildren(errorBox(e)); return; }
    fillOptions(tenantSel, "All tenants", d.m365Tenants.edges.map((e) => [e.node.id, e.node.displayName]));
    fillOptions(clientSel, "All clients", d.clients.edges.map((e) => [e.node.id, e.node.name]));
    const c = d.mfaCoverage;
    coverage.replaceChildren(h("h2", { id: "cov-title" }, "MFA coverage"),
      h("div", { class: "stats" },
        h("div", { class: "stat" }, h("span", { class: "n", id: "coverage-percent" }, pct(c.coveragePercent)), h("span", { class: "l" }, `${c.enabled} of ${c.users} users registered for MFA`)),
        h("div", { class: "stat" }, h("span", { class: "n" }, c.verdicts.protected), h("span", { class: "l" }, "Protected (registered and required)")),
        h("div", { class: "stat" }, h("span", { class: "n" }, c.verdicts.notEnforced + c.verdicts.notRegistered + c.verdicts.unprotected), h("span", { class: "l" }, "Not protected")),
        h("div", { class: "stat" }, h("span", { class: "n" }, c.adminsWithoutMfa), h("span", { class: "l" }, "Admins without MFA"))),
      h("p", { class: "sub" }, c.dataAsOf ? `Data as of ${fmtTime(c.dataAsOf)}.` : "No data synced yet."),
      c.tenants.length ? h("div", {}, h("h3", {}, "Per tenant"), h("div", { class: "bars", id: "coverage-bars" },
        [...c.tenants].sort((a, b) => a.coveragePercent - b.coveragePercent).map((t) => {
          const fill = h("span", {});
          fill.style.width = `${Math.max(0, Math.min(100, t.coveragePercent))}%`;
          const tone = t.coveragePercent < 50 ? "low" : t.coveragePercent < 90 ? "mid" : "";
          return [h("span", { class: "bar-label" }, t.tenant.displayName, h("span", { class: "sub" }, ` ${t.enabled}/${t.users}`)),
            h("div", { class: `bar ${tone}`, role: "img", "aria-label": `${t.tenant.displayName}: ${pct(t.coveragePercent)} of users registered` }, fill),
            h("span", { class: "num" }, pct(t.coveragePercent))];
        }))) : null,
      trend(d.mfaEvidence.edges.map((e) => e.node)));
    licenses.replaceChildren(h("h2", { id: "lic-title" }, "Licenses"),
      d.m365Licenses.length ? h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Tenant"), h("th", {}, "License"), h("th", { class: "num" }, "Assigned"), h("th", { class: "num" }, "Seats"), h("th", { class: "num" }, "Available"))),
        h("tbody", {}, d.m365Licenses.map((l) => h("tr", {}, h("td", {}, l.tenant.displayName), h("td", {}, l.friendlyName, h("div", { class: "sub" }, l.skuPartNumber)),
          h("td", { class: "num" }, l.consumedUnits), h("td", { class: "num" }, l.enabledUnits), h("td", { class: "num" }, l.availableUnits))))))
        : h("p", { class: "empty" }, "No licenses synced."));
  }

  /** Coverage over time from the evidence snapshots: one point per sync run (all tenants in scope). */
  function trend(snapshots) {
    const runs = new Map();
    for (const s of snapshots) {
      const r = runs.get(s.runId) || { at: s.takenAt, users: 0, enabled: 0 };
      r.users += s.figures.users; r.enabled += s.figures.enabled;
      if (s.takenAt > r.at) r.at = s.takenAt;
      runs.set(s.runId, r);
    }
    const points = [...runs.values()].filter((r) => r.users > 0).sort((a, b) => a.at.localeCompare(b.at))
      .map((r) => ({ at: r.at, pct: (100 * r.enabled) / r.users }));
    if (!points.length) return h("p", { class: "sub" }, "The trend over time appears once evidence snapshots exist (each sync takes one per tenant).");
    const W = 640, H = 180, L = 40, B = 24, T = 10;
    const x = (i) => L + (points.length === 1 ? (W - L) / 2 : (i * (W - L - 10)) / (points.length - 1));
    const y = (p) => T + (H - T - B) * (1 - p / 100);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "trend-title trend-desc" },
      svg("title", { id: "trend-title" }, "MFA coverage over time"),
      svg("desc", { id: "trend-desc" }, points.map((p) => `${fmtTime(p.at)}: ${pct(p.pct)}`).join("; ")),
      svg("line", { class: "axis", x1: L, y1: y(0), x2: W, y2: y(0) }),
      svg("line", { class: "axis", x1: L, y1: y(100), x2: L, y2: y(0) }),
      [0, 50, 100].map((v) => svg("text", { x: 4, y: y(v) + 4 }, `${v}%`)),
      svg("polyline", { class: "line", points: points.map((p, i) => `${x(i)},${y(p.pct)}`).join(" ") }),
      points.map((p, i) => svg("circle", { class: "dot", cx: x(i), cy: y(p.pct), r: 3.5 })),
      svg("text", { x: L, y: H - 6 }, fmtTime(points[0].at)),
      points.length > 1 ? svg("text", { x: W - 130, y: H - 6 }, fmtTime(points[points.length - 1].at)) : null);
    return h("div", { class: "trend" }, h("h3", {}, "Coverage over time"), chart);
  }

  function fillOptions(select, all, items) {
    if (select.options.length > 1) return;
    for (const [v, t] of items) select.append(h("option", { value: v }, t));
    select.firstChild.textContent = all;
  }

  async function loadUsers() {
    const filter = {};
    const s = scope();
    if (s.tenantId) filter.tenantId = s.tenantId;
    if (s.clientId) filter.clientId = s.clientId;
    if (statusSel.value) filter.mfaStatus = statusSel.value;
    if (verdictSel.value) filter.mfaVerdict = verdictSel.value;
    if (adminSel.value) filter.isAdmin = adminSel.value === "true";
    if (licSel.value) filter.licensed = licSel.value === "true";
    if (contactSel.value) filter.contactLinked = contactSel.value === "true";
    if (search.value.trim()) filter.search = search.value.trim();
    let conn;
    try { conn = (await gql(USERS, { first: PAGE, after: f.cursors[f.page], filter })).m365Users; } catch (e) { users.replaceChildren(errorBox(e)); return; }
    users.replaceChildren(h("h2", { id: "users-title" }, "Users ", h("span", { class: "sub", id: "users-count" }, `(${conn.totalCount})`)),
      conn.edges.length ? h("div", { class: "table-wrap" }, h("table", { id: "users-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", {}, "Tenant / client"), h("th", {}, "MFA"), h("th", {}, "Verdict"), h("th", {}, "Admin"), h("th", {}, "Licensed"), h("th", {}, "Contact"))),
        h("tbody", {}, conn.edges.map(({ node: u }) => h("tr", {},
          h("td", {}, u.displayName || u.userPrincipalName, h("div", { class: "sub" }, u.userPrincipalName), u.accountEnabled ? null : badge("sign-in blocked", "neutral")),
          h("td", {}, u.tenant.displayName, h("div", { class: "sub" }, u.client ? u.client.name : "unmapped")),
          h("td", {}, state(u.mfa.status)),
          h("td", { title: u.mfa.explanation.join(" ") }, state(u.mfa.verdict)),
          h("td", {}, u.isAdmin === null ? "?" : u.isAdmin ? "Yes" : "No"),
          h("td", {}, u.isLicensed ? "Yes" : "No"),
          h("td", {}, u.contact ? u.contact.name : h("span", { class: "muted" }, "—"))))))) : h("p", { class: "empty" }, "No user matches."),
      h("div", { class: "pager" },
        h("button", { type: "button", disabled: f.page === 0, onclick: () => { f.page--; loadUsers(); } }, "Previous"),
        h("span", { class: "sub" }, `Page ${f.page + 1}`),
        h("button", { type: "button", disabled: !conn.pageInfo.hasNextPage, onclick: () => { f.cursors[f.page + 1] = conn.pageInfo.endCursor; f.page++; loadUsers(); } }, "Next")));
  }

  users.append(h("p", { class: "empty" }, "Loading…"));
  loadOverview();
  loadUsers();
}

// ---------------------------------------------------------------- start

takeTokenFromFragment();
renderSession();
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#token=")) takeTokenFromFragment();
  renderSession();
  showBanner(null);
  route();
  // A screen reader starts reading the new page, not the link that led there.
  document.getElementById("main").focus({ preventScroll: true });
});
route();
