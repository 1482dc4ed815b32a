// A test double of the Zoom Apps SDK (`@zoom/appssdk` 0.16.41, dist/sdk.d.ts) for browser tests of the panel.
// Served in place of ../sdk.js. Shapes follow the typings:
//   config({capabilities}) -> ConfigResponse {runningContext, unsupportedApis, clientVersion, browserVersion, auth,
//                             userAgent, product}
//   getRunningContext() -> {context}            getAppContext() -> {context: string}
//   getEngagementContext(options?) -> {engagementContext: {engagementId, startTime, acceptTime?, queueId?,
//                             queueName?, isTransfer?, transferType?, transferFromAgentId?, transferFromAgentName?}}
//   getEngagementStatus({engagementId}) -> {engagementStatus: {engagementId, state, channel, source, isConference,
//                             assignedAgentId?, assignedAgentName?, consumers, endTime?}}
//   onEngagementContextChange(h) with {engagementContext, timestamp}
//   onEngagementStatusChange(h) with {engagementStatus: <only what changed> + engagementId, timestamp}
//   authorize({codeChallenge, state?}) -> {message}; then onAuthorized(h) with {code, redirectUri, result, state,
//                             timestamp}
// Like the real SDK, a call or registration that was not listed in config() is refused, and events are delivered
// asynchronously. The scenario (engagements, the one on screen) lives in sessionStorage, so it survives a reload
// like the agent desktop does.
//
// Driving it from a test (window.zoomSdkDouble):
//   seed(scenario)            store a scenario and reload: {appContext, engagements: {id: {context, status}}, current}
//   switchTo(id)              the agent switches to engagement id (onEngagementContextChange)
//   setStatus(id, diff)       a status change of id (onEngagementStatusChange with the diff)
//   end(id, endTime?)         state "end" for id, on screen or not
//   calls                     every call the panel made: [{name, args}]

const KEY = "zoomsdk-double";

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) ?? { engagements: {}, current: null };
  } catch {
    return { engagements: {}, current: null };
  }
}

function persist(state) {
  sessionStorage.setItem(KEY, JSON.stringify(state));
}

class ZoomApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const state = load();
const handlers = {};
const calls = [];
let configured = null;

function later(fn) {
  setTimeout(fn, 0);
}

function fire(event, payload) {
  for (const h of handlers[event] ?? []) later(() => h(payload));
}

function guard(name, args) {
  calls.push({ name, args: JSON.parse(JSON.stringify(args ?? null)) });
  if (name === "config") return;
  if (!configured) throw new ZoomApiError(10001, `${name}: call config() first`);
  if (!configured.includes(name)) throw new ZoomApiError(10002, `${name} is not in config({capabilities})`);
}

function call(name, args, body) {
  try {
    guard(name, args);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) =>
    later(() => {
      try {
        resolve(body());
      } catch (err) {
        reject(err);
      }
    }),
  );
}

function on(name, handler) {
  guard(name, null);
  (handlers[name] ??= []).push(handler);
}

function engagement(id) {
  const e = state.engagements[id];
  if (!e) throw new ZoomApiError(10243, "Method not available outside Engagement context");
  return e;
}

const zoomSdk = {
  config({ capabilities } = {}) {
    guard("config", { capabilities });
    configured = [...(capabilities ?? [])];
    return new Promise((resolve) =>
      later(() =>
        resolve({
          runningContext: state.runningContext ?? "inContactCenter",
          unsupportedApis: [],
          clientVersion: "6.4.0",
          browserVersion: "chromium/test-double",
          auth: { status: "authorized", upgradable: false },
          userAgent: navigator.userAgent,
          product: "desktop",
        }),
      ),
    );
  },
  getRunningContext() {
    return call("getRunningContext", null, () => ({ context: state.runningContext ?? "inContactCenter" }));
  },
  getAppContext() {
    return call("getAppContext", null, () => {
      if (!state.appContext) throw new ZoomApiError(10118, "Failed to get app context");
      return { context: state.appContext };
    });
  },
  getEngagementContext(options) {
    return call("getEngagementContext", options, () => {
      const id = options?.engagementId ?? state.current;
      return { engagementContext: { ...engagement(id).context, engagementId: id } };
    });
  },
  getEngagementStatus(options) {
    return call("getEngagementStatus", options, () => {
      if (!options?.engagementId) throw new ZoomApiError(10000, "engagementId is required");
      const id = options.engagementId;
      return { engagementStatus: { ...engagement(id).status, engagementId: id } };
    });
  },
  onEngagementContextChange(handler) {
    on("onEngagementContextChange", handler);
  },
  onEngagementStatusChange(handler) {
    on("onEngagementStatusChange", handler);
  },
  authorize(options) {
    return call("authorize", options, () => {
      if (!options?.codeChallenge) throw new ZoomApiError(10000, "codeChallenge is required");
      state.lastAuthorize = options;
      fire("onAuthorized", {
        code: state.authorizeCode ?? "double-code",
        redirectUri: window.location.href,
        result: true,
        state: options.state,
        timestamp: Math.floor(Date.now() / 1000),
      });
      return { message: "Success" };
    });
  },
  onAuthorized(handler) {
    on("onAuthorized", handler);
  },
};

window.zoomSdkDouble = {
  calls,
  state,
  seed(scenario) {
    persist({ engagements: {}, current: null, ...scenario });
    window.location.reload();
  },
  switchTo(id) {
    engagement(id);
    state.current = id;
    persist(state);
    fire("onEngagementContextChange", {
      engagementContext: { ...state.engagements[id].context, engagementId: id },
      timestamp: Date.now(),
    });
  },
  setStatus(id, diff) {
    const e = engagement(id);
    e.status = { ...e.status, ...diff };
    persist(state);
    fire("onEngagementStatusChange", { engagementStatus: { ...diff, engagementId: id }, timestamp: Date.now() });
  },
  end(id, endTime = Date.now()) {
    this.setStatus(id, { state: "end", endTime });
  },
};

export default zoomSdk;
