/**
 * The dashboard page's script: asks for an API key (kept in this tab's
 * sessionStorage, sent as X-API-Key), lists the tenant's runs and samplers
 * (refreshed every few seconds), and for the run picked shows its loss
 * chart, metrics and checkpoints; new metrics lines arrive live on the
 * run's event stream (`/api/v1/dashboard/runs/{id}/events`, read with fetch
 * so the key stays in a header). Everything from the server is written as
 * text (`textContent`), never as HTML.
 *
 * @module
 */
import { drawLossChart, lossKey } from "./chart.js";
import { readEventStream } from "./event_stream.js";

const KEY_ITEM = "bios.dashboard.apiKey";
const API = "/api/v1/dashboard";
const REFRESH_MS = 5000;
const RECONNECT_MS = 3000;

/** @typedef {Record<string, number>} MetricsLine */

/** @type {{ key: string | null, run: string | null, lines: MetricsLine[], abort: AbortController | null, timer: ReturnType<typeof setInterval> | undefined }} */
const state = {
  key: sessionStorage.getItem(KEY_ITEM),
  run: null,
  lines: [],
  abort: null,
  timer: undefined,
};

/**
 * The element with id `id`.
 *
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`no #${id}`);
  return /** @type {T} */ (e);
}

/**
 * A table row of text cells.
 *
 * @param {(string | Node)[]} cells
 * @returns {HTMLTableRowElement}
 */
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (typeof c === "string") td.textContent = c;
    else td.append(c);
    tr.append(td);
  }
  return tr;
}

/**
 * A number as the tables show it.
 *
 * @param {number | undefined | null} v
 * @returns {string}
 */
function num(v) {
  if (v === undefined || v === null || !Number.isFinite(v)) return "–";
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(5)));
}

/**
 * GET `path` under the dashboard's API with the key.
 *
 * @param {string} path
 * @returns {Promise<any>}
 */
async function api(path) {
  const res = await fetch(API + path, {
    headers: { "X-API-Key": state.key ?? "" },
    cache: "no-store",
  });
  if (res.status === 401) {
    signOut("That key is not accepted here.");
    throw new Error("the API key was refused");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

/** @param {unknown} e */
function showError(e) {
  $("error").textContent = e instanceof Error ? e.message : String(e);
}

/** @param {string} [why] */
function signOut(why) {
  sessionStorage.removeItem(KEY_ITEM);
  state.key = null;
  state.run = null;
  state.abort?.abort();
  clearInterval(state.timer);
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("key-form").hidden = false;
  $("key-error").textContent = why ?? "";
}

async function refreshRuns() {
  const { runs } = await api("/runs");
  const body = /** @type {HTMLTableSectionElement} */ (
    $("runs").querySelector("tbody")
  );
  body.replaceChildren(
    ...runs.map((/** @type {any} */ r) => {
      const open = document.createElement("button");
      open.type = "button";
      open.textContent = r.model_id;
      open.addEventListener("click", () => selectRun(r.model_id));
      const tr = row([
        open,
        r.base_model ?? "",
        num(r.last_step),
        num(r.last_loss),
      ]);
      tr.dataset.run = r.model_id;
      if (r.model_id === state.run) tr.classList.add("selected");
      return tr;
    }),
  );
  $("runs-empty").hidden = runs.length > 0;
}

async function refreshSamplers() {
  const { samplers } = await api("/samplers");
  const body = /** @type {HTMLTableSectionElement} */ (
    $("samplers").querySelector("tbody")
  );
  body.replaceChildren(
    ...samplers.map((/** @type {any} */ s) =>
      row([s.sampler_id, s.base_model ?? "", s.model_path ?? "–"])
    ),
  );
  $("samplers-empty").hidden = samplers.length > 0;
}

/** @param {string} runId */
async function refreshCheckpoints(runId) {
  const { checkpoints } = await api(
    `/runs/${encodeURIComponent(runId)}/checkpoints`,
  );
  if (state.run !== runId) return;
  const body = /** @type {HTMLTableSectionElement} */ (
    $("checkpoints").querySelector("tbody")
  );
  body.replaceChildren(
    ...checkpoints.map((/** @type {any} */ c) =>
      row([
        c.tinker_path,
        c.kind,
        c.created_at,
        `${(c.size_bytes / 1024).toFixed(1)} KiB`,
      ])
    ),
  );
  $("checkpoints-empty").hidden = checkpoints.length > 0;
}

function drawRun() {
  drawLossChart(
    /** @type {SVGSVGElement} */ (/** @type {unknown} */ ($("loss-chart"))),
    state.lines,
  );
  const key = lossKey(state.lines);
  const body = /** @type {HTMLTableSectionElement} */ (
    $("metrics").querySelector("tbody")
  );
  body.replaceChildren(
    ...state.lines.slice(-20).reverse().map((l) =>
      row([
        num(l.step),
        num(l[key]),
        num(l.learning_rate),
        num(l.num_tokens),
        num(l["time/total"]),
      ])
    ),
  );
}

/**
 * Show `line` as run `runId`'s last in the run list.
 *
 * @param {string} runId
 * @param {MetricsLine} line
 */
function showLast(runId, line) {
  for (const tr of $("runs").querySelectorAll("tbody tr")) {
    const r = /** @type {HTMLTableRowElement} */ (tr);
    if (r.dataset.run !== runId) continue;
    r.cells[2].textContent = num(line.step);
    r.cells[3].textContent = num(line["loss:mean"] ?? line["loss:sum"]);
  }
}

/** @param {"live" | "connecting" | "closed"} s */
function streamState(s) {
  const e = $("stream-state");
  e.dataset.state = s;
  e.textContent = s;
}

/**
 * Follow run `runId`'s event stream from line `state.lines.length` on,
 * reconnecting after a drop, until another run is picked or the key goes.
 *
 * @param {string} runId
 * @param {AbortSignal} signal
 */
async function follow(runId, signal) {
  while (!signal.aborted) {
    streamState("connecting");
    try {
      await readEventStream(
        `${API}/runs/${
          encodeURIComponent(runId)
        }/events?after=${state.lines.length}`,
        { "X-API-Key": state.key ?? "" },
        signal,
        (e) => {
          if (e.event !== "metrics") return;
          const line = JSON.parse(e.data);
          state.lines.push(line);
          drawRun();
          showLast(runId, line);
        },
        () => streamState("live"),
      );
    } catch (e) {
      if (signal.aborted) break;
      showError(e);
    }
    if (signal.aborted) break;
    streamState("connecting");
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

/** @param {string} runId */
async function selectRun(runId) {
  state.abort?.abort();
  const abort = new AbortController();
  state.abort = abort;
  state.run = runId;
  state.lines = [];
  for (const tr of $("runs").querySelectorAll("tbody tr")) {
    const r = /** @type {HTMLElement} */ (tr);
    r.classList.toggle("selected", r.dataset.run === runId);
  }
  $("run").hidden = false;
  $("run-id").textContent = runId;
  streamState("closed");
  try {
    const { lines } = await api(`/runs/${encodeURIComponent(runId)}/metrics`);
    if (abort.signal.aborted) return;
    state.lines = lines;
    drawRun();
    follow(runId, abort.signal);
    await refreshCheckpoints(runId);
  } catch (e) {
    showError(e);
  }
}

async function refresh() {
  try {
    await Promise.all([
      refreshRuns(),
      refreshSamplers(),
      state.run !== null ? refreshCheckpoints(state.run) : null,
    ]);
    $("error").textContent = "";
  } catch (e) {
    showError(e);
  }
}

function start() {
  $("key-form").hidden = true;
  $("board").hidden = false;
  $("sign-out").hidden = false;
  refresh();
  clearInterval(state.timer);
  state.timer = setInterval(refresh, REFRESH_MS);
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("api-key"));
  state.key = input.value.trim();
  input.value = "";
  sessionStorage.setItem(KEY_ITEM, state.key);
  start();
});
$("sign-out").addEventListener("click", () => signOut());
if (state.key) start();
else signOut();
