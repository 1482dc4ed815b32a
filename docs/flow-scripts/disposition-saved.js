// zcc-bridge: "Disposition Saved" event script for a flow's Start widget (see README.md in this folder).
// Posts docs/flow-scripts/disposition-saved.example.json's shape to POST /webhooks/flow/<source>.
//
// UNCONFIRMED (community-observed, not in Zoom's reference): var_get(), req.post (assumed axios-like), log.*,
// and the runtime calling main(). Test it on one flow and check the bridge's /api/v1/events before rolling out.

const BRIDGE_URL = "https://<your-bridge>/webhooks/flow/<source>"; // e.g. https://bridge.example.com/webhooks/flow/crm
const TOKEN = "<token>"; // [flow.sources.<source>] token = "..." in the bridge's config (16+ characters)
const EVENT = "Disposition Saved";

// Flow variables. var_get() (no argument) is reported to return an object keyed by full names
// ("global_system.Engagement.ANI"); one report says that comes back empty and only
// JSON.parse(var_get("global_system")).Engagement.ANI works. So: try the flat name, then the parsed group.
let flat = null;
const groups = {};
function variable(name) {
  if (flat === null) {
    try { flat = var_get() || {}; } catch (e) { log.debug("var_get() failed: " + e); flat = {}; }
    if (typeof flat === "string") { try { flat = JSON.parse(flat); } catch (e) { flat = {}; } }
  }
  let value = flat[name];
  if (value === undefined || value === null || value === "") {
    const parts = name.split(".");
    const group = parts.shift(); // "global_system" or "global_custom"
    if (!(group in groups)) {
      try {
        const raw = var_get(group);
        groups[group] = typeof raw === "string" ? (raw ? JSON.parse(raw) : {}) : raw || {};
      } catch (e) { log.debug("var_get(" + group + ") failed: " + e); groups[group] = {}; }
    }
    value = parts.reduce((node, key) => (node == null ? undefined : node[key]), groups[group]);
  }
  return value === undefined || value === null || value === "" ? null : String(value);
}

// The first of several candidate names that has a value.
function first(...names) {
  for (const name of names) {
    const value = variable(name);
    if (value !== null) return value;
  }
  return null;
}

async function main() {
  // Only Engagement.ANI is confirmed by reports; every other name below is a guess. Check the real names in the
  // web portal: Contact Center Management > Preferences > Variables > System (group "Engagement", ...), and fix
  // them here. A field left null is simply absent for the bridge; a missing engagement_id gets the post quarantined.
  const body = {
    event: EVENT,
    engagement_id: first("global_system.Engagement.engagementId", "global_system.Engagement.id"), // unconfirmed
    event_ts: Date.now(),
    consumer_number: first("global_system.Engagement.ANI"), // the caller; for outbound calls try ...Engagement.DNIS
    agent_email: first("global_system.Engagement.agentEmail", "global_system.Agent.email"), // unconfirmed
    queue_id: first("global_system.Engagement.queueId", "global_system.Queue.id"), // unconfirmed
    queue_name: first("global_system.Engagement.queueName", "global_system.Queue.name"), // unconfirmed
    channel: first("global_system.Engagement.channel"), // unconfirmed
    direction: first("global_system.Engagement.direction"), // unconfirmed
    disposition: first("global_system.Engagement.disposition", "global_system.Engagement.dispositionName"), // unconfirmed
  };
  log.debug("zcc-bridge: posting " + JSON.stringify(body));

  // The bridge drops a repeat of the same body, so retrying the same body is safe.
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const r = await req.post(BRIDGE_URL, JSON.stringify(body), {
        headers: { Authorization: "Bearer " + TOKEN, "Content-Type": "application/json" },
      });
      log.debug("zcc-bridge: " + r.status + " " + JSON.stringify(r.data));
      return;
    } catch (e) {
      // axios-like: a non-2xx status throws, with e.response. 4xx will not get better by retrying.
      const status = e && e.response ? e.response.status : null;
      log.error("zcc-bridge: attempt " + attempt + " failed: " + (status || "") + " " + (e && e.message) +
        (e && e.response ? " " + JSON.stringify(e.response.data) : ""));
      if (status && status < 500) return;
    }
  }
}
