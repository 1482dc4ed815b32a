// The zcc-bridge agent panel: a Zoom App in the Zoom Contact Center agent desktop.
//
// Launch sequence per developers.zoom.us/docs/contact-center/apps/engagement-scenarios/: config, running context,
// getEngagementContext, getEngagementStatus, then the change events. Everything that concerns an engagement is keyed
// on the engagementId the SDK gave with that very answer or event, never on "what is on screen": an `end` can arrive
// for an engagement the agent is not looking at (Zoom's samples clear the displayed one instead; reference §1.3).
//
// The workspace (notes, tags, wrap-up checklist) is kept by the backend per (user, engagement): each save carries the
// engagement id it was typed for and a version (device clock, device id, counter) so the backend can apply saves in
// any order, any number of times. On `end` the workspace is finalized, with whatever is still unsaved.
// The backend API is described in docs/zoomapp/api.md.

import zoomSdk from "./sdk.js";

// Must equal zoom_app::sdk::PANEL_CAPABILITIES (a Rust test compares them).
const CAPABILITIES = [
  "getRunningContext",
  "getAppContext",
  "getEngagementContext",
  "getEngagementStatus",
  "onEngagementContextChange",
  "onEngagementStatusChange",
  "authorize",
  "onAuthorized",
];

const SAVE_DELAY_MS = 400;
const RETRY_MS = 2000;
const $ = (id) => document.getElementById(id);

const panel = {
  current: null, // engagement id on screen
  engagements: new Map(), // id -> entry (see entry())
  checklist: [], // [{id, label}] from the session
  oauth: null,
  deviceId: deviceId(),
  lastTs: 0,
  rev: 0,
  contextEvents: 0,
};

function deviceId() {
  const make = () => "d-" + Array.from(crypto.getRandomValues(new Uint8Array(9)), (b) => b.toString(16).padStart(2, "0")).join("");
  try {
    let id = localStorage.getItem("zcc-bridge-device");
    if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      id = make();
      localStorage.setItem("zcc-bridge-device", id);
    }
    return id;
  } catch {
    return make(); // storage blocked: a new device id per load is still correct, only less tidy
  }
}

function nextVersion() {
  panel.lastTs = Math.max(Date.now(), panel.lastTs + 1);
  panel.rev += 1;
  return { client_ts: panel.lastTs, device_id: panel.deviceId, rev: panel.rev };
}

function entry(id) {
  let e = panel.engagements.get(id);
  if (!e) {
    e = {
      id,
      context: null,
      status: {},
      workspace: { notes: "", tags: [], checklist: {} },
      loaded: false,
      loading: null,
      dirty: false,
      timer: null,
      saving: 0,
      saveError: false,
      finalizing: null,
      finalized: false,
      info: null,
      live: [],
      liveIds: new Set(),
    };
    panel.engagements.set(id, e);
  }
  return e;
}

function apiPath(id, what) {
  return `api/engagements/${encodeURIComponent(id)}/${what}`;
}

async function api(method, path, body, extra = {}, renewed = false) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" }, ...extra };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401 && !renewed && path !== "api/session") {
    // The session ended (expiry, restart of the backend): prove who we are again, then retry once.
    await renewSession();
    return api(method, path, body, extra, true);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, ok: response.ok, data };
}

// ---- session -------------------------------------------------------------------------------------------------

let renewing = null;

// A fresh app context (valid for minutes) exchanged for a new session; concurrent callers share one exchange.
function renewSession() {
  if (!renewing) {
    renewing = (async () => {
      try {
        const { context } = await zoomSdk.getAppContext();
        return await api("POST", "api/session", { context });
      } catch (err) {
        return { status: 0, ok: false, data: null, error: err };
      } finally {
        renewing = null;
      }
    })();
  }
  return renewing;
}

async function ensureSession() {
  // The desktop client's Home URL request carried X-Zoom-App-Context and opened a session already; the PWA client
  // sends no header, so the panel posts getAppContext() instead.
  let r = await api("GET", "api/session");
  if (r.status === 401) r = await renewSession();
  if (!r.ok) throw new Error(`the backend refused the session (${r.status})`);
  panel.checklist = Array.isArray(r.data?.checklist) ? r.data.checklist : [];
  panel.oauth = r.data?.oauth ?? null;
  renderOAuth();
}

// ---- workspace -----------------------------------------------------------------------------------------------

function ensureLoaded(e) {
  if (e.loaded) return Promise.resolve();
  if (!e.loading) {
    e.loading = (async () => {
      for (;;) {
        try {
          const r = await api("GET", apiPath(e.id, "workspace"));
          if (r.status === 404) break; // nothing saved yet
          if (r.ok && r.data) {
            e.workspace = { notes: r.data.notes ?? "", tags: r.data.tags ?? [], checklist: r.data.checklist ?? {} };
            e.finalized = !!r.data.finalized;
            break;
          }
        } catch {
          // network: retry below
        }
        await new Promise((res) => setTimeout(res, RETRY_MS));
      }
      e.loaded = true;
      e.loading = null;
      if (panel.current === e.id) renderWorkspace();
    })();
  }
  return e.loading;
}

// An edit of engagement `id` (captured when the agent typed, never looked up later).
function edit(id, change) {
  const e = entry(id);
  if (!e.loaded || e.finalized || e.finalizing) return;
  change(e.workspace);
  e.dirty = true;
  clearTimeout(e.timer);
  e.timer = setTimeout(() => save(e), SAVE_DELAY_MS);
  renderSaveState();
}

function body(e, extra = {}) {
  return {
    notes: e.workspace.notes,
    tags: [...e.workspace.tags],
    checklist: { ...e.workspace.checklist },
    version: nextVersion(),
    ...extra,
  };
}

async function save(e, { keepalive = false } = {}) {
  clearTimeout(e.timer);
  e.timer = null;
  if (!e.dirty || e.finalized || e.finalizing) return;
  e.dirty = false;
  e.saving += 1;
  renderSaveState();
  try {
    const r = await api("PUT", apiPath(e.id, "workspace"), body(e), { keepalive });
    if (r.status === 409) {
      e.finalized = true;
    } else if (!r.ok) {
      throw new Error(String(r.status));
    }
    e.saveError = false;
  } catch {
    e.saveError = true;
    e.dirty = true;
    e.timer = setTimeout(() => save(e), RETRY_MS);
  } finally {
    e.saving -= 1;
    if (panel.current === e.id) renderWorkspace();
    renderTabs();
  }
}

// The SDK said `end` for `id`. The webview still runs, the UI is already hidden: capture everything now.
function finalize(id, endTime) {
  const e = entry(id);
  if (e.finalized || e.finalizing) return e.finalizing;
  clearTimeout(e.timer);
  e.timer = null;
  e.finalizing = (async () => {
    // Never finalize content we have not loaded: that would replace what was saved from elsewhere.
    await ensureLoaded(e);
    for (let attempt = 1; !e.finalized && attempt <= 5; attempt++) {
      const extra = typeof endTime === "number" ? { end_time: endTime } : {};
      try {
        const r = await api("POST", apiPath(id, "finalize"), body(e, extra), { keepalive: true });
        if (r.ok || r.status === 409) {
          e.finalized = true;
          e.dirty = false;
          break;
        }
      } catch {
        // retried
      }
      await new Promise((res) => setTimeout(res, RETRY_MS * attempt));
    }
    e.finalizing = null;
    if (panel.current === id) renderWorkspace();
    renderTabs();
  })();
  return e.finalizing;
}

function flushAll() {
  for (const e of panel.engagements.values()) {
    if (e.dirty) save(e, { keepalive: true });
  }
}

// ---- engagement context from the backend ---------------------------------------------------------------------

let stream = null;

async function loadInfo(e) {
  try {
    const r = await api("GET", apiPath(e.id, "context"));
    e.info = r.ok ? r.data : null;
  } catch {
    e.info = null;
  }
  if (panel.current === e.id) renderInfo();
}

// The live stream names each event by its kind (`event: held`); these are the engagement's kinds (zcc-bridge's
// ActivityKind; a Rust test there keeps the list equal).
const LIVE_KINDS = [
  "started",
  "offered",
  "declined",
  "accepted",
  "held",
  "resumed",
  "muted",
  "unmuted",
  "transfer_initiated",
  "transferred",
  "left",
  "ended",
  "wrap_up_started",
  "wrap_up_ended",
  "disposition_saved",
  "note_added",
];

function follow(id) {
  if (stream) stream.close();
  stream = new EventSource(apiPath(id, "stream"));
  const onEvent = (msg) => {
    let item;
    try {
      item = JSON.parse(msg.data);
    } catch {
      return;
    }
    const e = entry(id);
    // Kept apart from the context answer, which may arrive later and must not drop live items.
    if (msg.lastEventId && e.liveIds.has(msg.lastEventId)) return;
    if (msg.lastEventId) e.liveIds.add(msg.lastEventId);
    e.live.push(item);
    if (panel.current === id) renderInfo();
  };
  for (const kind of LIVE_KINDS) stream.addEventListener(kind, onEvent);
}

// ---- SDK events ----------------------------------------------------------------------------------------------

function show(id) {
  if (!id) return;
  const e = entry(id);
  panel.current = id;
  $("main").hidden = false;
  renderAll();
  ensureLoaded(e);
  loadInfo(e);
  follow(id);
}

function mergeStatus(status) {
  const id = status?.engagementId;
  if (!id) return null;
  const e = entry(id);
  // onEngagementStatusChange carries only what changed.
  e.status = { ...e.status, ...status };
  return e;
}

async function fetchStatus(id) {
  try {
    const { engagementStatus } = await zoomSdk.getEngagementStatus({ engagementId: id });
    // The agent may have switched meanwhile: only apply it to the engagement it names.
    const e = mergeStatus(engagementStatus);
    if (e && engagementStatus.state === "end") finalize(e.id, engagementStatus.endTime);
    renderAll();
  } catch {
    // status stays unknown until an event brings it
  }
}

function onContextChange(event) {
  const context = event?.engagementContext;
  if (!context?.engagementId) return;
  panel.contextEvents += 1;
  entry(context.engagementId).context = context;
  show(context.engagementId);
  fetchStatus(context.engagementId);
}

function onStatusChange(event) {
  const status = event?.engagementStatus;
  const e = mergeStatus(status);
  if (!e) return;
  if (status.state === "end") finalize(e.id, status.endTime);
  renderAll();
}

async function onAuthorized(event) {
  const r = await api("POST", "api/oauth/authorized", { ...event, href: window.location.href });
  panel.oauth = { ...(panel.oauth ?? {}), connected: r.ok };
  renderOAuth(r.ok ? "" : `Zoom authorization failed (${r.status})`);
}

async function connect() {
  // A JSON body, like every write: the backend refuses others (no cross-site form can start a flow).
  const r = await api("POST", "api/oauth/authorize", {});
  if (!r.ok || !r.data?.codeChallenge) {
    renderOAuth(`Could not start authorization (${r.status})`);
    return;
  }
  try {
    await zoomSdk.authorize({ codeChallenge: r.data.codeChallenge, state: r.data.state });
  } catch (err) {
    renderOAuth(`Zoom refused to authorize: ${err?.message ?? err}`);
  }
}

// ---- rendering (textContent only: nothing from the network becomes markup) -------------------------------------

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function consumerOf(e) {
  const c = (e.status.consumers ?? [])[0] ?? {};
  return c.consumerDisplayName || c.consumerNumber || c.consumerEmail || e.info?.customer?.name || "Unknown consumer";
}

function renderTabs() {
  const nav = $("engagements");
  nav.replaceChildren();
  for (const e of panel.engagements.values()) {
    const tab = el("span", consumerOf(e), "tab");
    tab.dataset.engagementId = e.id;
    if (e.id === panel.current) tab.classList.add("current");
    if (e.finalized || e.status.state === "end") tab.classList.add("ended");
    nav.append(tab);
  }
}

function renderSummary() {
  const e = entry(panel.current);
  $("consumer-name").textContent = consumerOf(e);
  const state = e.status.state ?? "";
  const badge = $("state");
  badge.textContent = state;
  badge.className = `badge ${state}`;
  const parts = [e.status.channel, e.status.source, e.context?.queueName].filter(Boolean);
  if (e.context?.isTransfer === "true" && e.context?.transferFromAgentName) {
    parts.push(`transferred from ${e.context.transferFromAgentName}`);
  }
  $("engagement-meta").textContent = parts.join(" · ");
  $("engagement-id").textContent = `Engagement ${e.id}`;
}

function renderSaveState() {
  if (!panel.current) return;
  const e = entry(panel.current);
  let text = "";
  if (!e.loaded) text = "Loading…";
  else if (e.finalized) text = "Final";
  else if (e.finalizing) text = "Finalizing…";
  else if (e.saveError) text = "Offline, retrying…";
  else if (e.dirty || e.saving) text = "Saving…";
  else text = "Saved";
  $("save-state").textContent = text;
}

function renderWorkspace() {
  const e = entry(panel.current);
  const locked = !e.loaded || e.finalized || !!e.finalizing;
  const notes = $("notes");
  if (notes.value !== e.workspace.notes) notes.value = e.workspace.notes;
  notes.disabled = locked;
  notes.dataset.engagementId = e.id;
  $("tag-input").disabled = locked;
  const tags = $("tags");
  tags.replaceChildren();
  for (const tag of e.workspace.tags) {
    const chip = el("span", tag, "chip");
    const remove = el("button", "×");
    remove.type = "button";
    remove.title = `Remove ${tag}`;
    remove.disabled = locked;
    remove.addEventListener("click", () =>
      edit(e.id, (w) => {
        w.tags = w.tags.filter((t) => t !== tag);
      }),
    );
    chip.append(remove);
    tags.append(chip);
  }
  const list = $("checklist");
  list.replaceChildren();
  for (const item of panel.checklist) {
    const label = el("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.item = item.id;
    box.checked = !!e.workspace.checklist[item.id];
    box.disabled = locked;
    box.addEventListener("change", () =>
      edit(e.id, (w) => {
        w.checklist = { ...w.checklist, [item.id]: box.checked };
      }),
    );
    label.append(box, el("span", item.label));
    list.append(label);
  }
  $("finalized").hidden = !e.finalized;
  renderSaveState();
}

function renderInfo() {
  const e = entry(panel.current);
  const info = e.info ?? {};
  const customer = $("customer");
  customer.replaceChildren();
  if (info.customer) {
    const c = info.customer;
    customer.append(el("div", c.name ?? "—"));
    const contact = [c.phone, c.email, c.company].filter(Boolean).join(" · ");
    if (contact) customer.append(el("div", contact, "small"));
    if (c.crm_url) customer.append(link(c.crm_url, "Open in CRM"));
  } else {
    customer.textContent = "No matching customer";
  }
  const fill = (id, items, line) => {
    const node = $(id);
    node.replaceChildren(...(items ?? []).map((item) => line(item)));
  };
  // Items of the context answer have `at` and `detail`; live stream events have `event_ts` (epoch ms), `agent` and
  // `queue`.
  const detail = (a) =>
    a.detail ?? [a.agent?.display_name ?? a.agent?.email, a.queue?.queue_name ?? a.queue?.cc_queue_id].filter(Boolean).join(" · ");
  fill("activity", [...(info.activity ?? []), ...e.live], (a) =>
    el("li", [time(a.at ?? a.event_ts), a.kind, detail(a)].filter(Boolean).join(" · ")),
  );
  fill("previous", info.previous_engagements, (p) =>
    el("li", [dateTime(p.start_time), p.channel, p.queue_name, p.disposition].filter(Boolean).join(" · ")),
  );
  const media = [
    ...(info.recordings ?? []).map((r) => ({ label: `Recording ${time(r.recording_start_time) ?? ""}`, href: r.link })),
    ...(info.transcripts ?? []).map((t) => ({ label: "Transcript", href: t.link })),
  ];
  fill("media", media, (m) => {
    const li = el("li");
    li.append(m.href ? link(m.href, m.label) : el("span", `${m.label} (not archived yet)`));
    return li;
  });
  fill("deliveries", info.deliveries, (d) =>
    el("li", [d.sink, d.state, d.attempts ? `${d.attempts} attempts` : null, d.last_error].filter(Boolean).join(" · ")),
  );
}

function link(href, text) {
  const a = el("a", text);
  // Only http(s) links and same-origin paths from the backend become clickable ("//host" is another origin).
  if (/^https?:\/\//i.test(href) || (href.startsWith("/") && !href.startsWith("//"))) a.href = href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

function time(value) {
  if (value === undefined || value === null || value === "") return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function dateTime(value) {
  if (value === undefined || value === null || value === "") return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime())
    ? String(value)
    : d.toLocaleString([], { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function renderOAuth(message = "") {
  const o = panel.oauth;
  $("connect").hidden = !(o && o.in_client && !o.connected);
  $("oauth-state").textContent = message || (o?.connected ? "Zoom account connected" : "");
}

function renderAll() {
  renderTabs();
  if (!panel.current) return;
  renderSummary();
  renderWorkspace();
  renderInfo();
}

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = !text;
}

// ---- wiring --------------------------------------------------------------------------------------------------

function wireInputs() {
  $("notes").addEventListener("input", (ev) => {
    // The engagement this textarea was rendered for, not whatever is current when the save runs.
    const id = ev.target.dataset.engagementId;
    const value = ev.target.value;
    if (id) edit(id, (w) => (w.notes = value));
  });
  $("tag-input").addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" && ev.key !== ",") return;
    ev.preventDefault();
    const id = $("notes").dataset.engagementId;
    const tag = ev.target.value.trim().slice(0, 64);
    ev.target.value = "";
    if (id && tag) {
      edit(id, (w) => {
        if (!w.tags.includes(tag) && w.tags.length < 32) w.tags = [...w.tags, tag];
      });
      renderWorkspace();
    }
  });
  $("connect").addEventListener("click", connect);
  window.addEventListener("pagehide", flushAll);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flushAll();
  });
}

// The status line, and a performance mark the first time the panel knows where it runs (the load benchmark reads it).
function status(text) {
  $("status-line").textContent = text;
  if (performance.getEntriesByName("zcc-panel-started").length === 0) performance.mark("zcc-panel-started");
}

async function start() {
  wireInputs();
  try {
    await zoomSdk.config({ capabilities: CAPABILITIES });
  } catch (err) {
    status("Not running in Zoom");
    notice(`Open this app from the Zoom Contact Center agent desktop. (${err?.message ?? err})`);
    return;
  }
  const { context } = await zoomSdk.getRunningContext();
  if (context !== "inContactCenter") {
    status(`Running in ${context}`);
    notice("This panel works inside Zoom Contact Center engagements only.");
    return;
  }
  try {
    await ensureSession();
  } catch (err) {
    status("Not signed in");
    notice(String(err?.message ?? err));
    return;
  }
  zoomSdk.onEngagementContextChange(onContextChange);
  zoomSdk.onEngagementStatusChange(onStatusChange);
  zoomSdk.onAuthorized(onAuthorized);
  status("Ready");
  const before = panel.contextEvents;
  let engagement;
  try {
    ({ engagementContext: engagement } = await zoomSdk.getEngagementContext());
  } catch {
    notice("Waiting for an engagement…");
    return;
  }
  // A switch event that arrived while we asked is newer than the answer.
  if (panel.contextEvents === before && engagement?.engagementId) {
    entry(engagement.engagementId).context = engagement;
    show(engagement.engagementId);
    await fetchStatus(engagement.engagementId);
  }
}

start();
