/**
 * The dashboard (server/routes/dashboard.ts, server/dashboard/): its JSON
 * and event-stream routes are tenant-scoped; the event stream sends the
 * lines written before it opened and then each new one as the gateway
 * records it, beats while idle, and lets go of the run when the client
 * goes. Then the page itself, in headless Chromium (Debian's `chromium`
 * driven by playwright-core) against the gateway as a real process: after
 * entering the key it lists the run, draws the loss chart from the run's
 * real metrics.jsonl, draws a step trained after it opened (live, over the
 * event stream), and lists the checkpoint and the sampler; a screenshot is
 * kept in `$BIOS_ARTIFACTS` (or a temporary folder the test prints).
 * Without Chromium or playwright-core the browser test says why in one line
 * and is skipped, unless `BIOS_REQUIRE_ALL=1`.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import type { Browser } from "playwright-core";
import { createApp } from "../server/app.ts";
import { KeyRing } from "../server/auth/keys.ts";
import { Gateway } from "../server/gateway.ts";
import type { GatewayEnv } from "../server/http.ts";
import { dashboardApiRoutes } from "../server/routes/dashboard.ts";
import { startTestService, TINY } from "./_helpers.ts";
import { startGateway } from "./_gateway_process.ts";
import { REQUIRE_ALL } from "./_python.ts";
import {
  type Json,
  nextTokenDatum,
  TinkerHttp,
  trainStep,
} from "./_tinker_http.ts";

const KEY_A = "tml-dashboard-a-0123456789";
const KEY_B = "tml-dashboard-b-0123456789";
const CHROMIUM = Deno.env.get("BIOS_CHROMIUM") ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const BATCHES = [
  [nextTokenDatum([1, 5, 9, 13, 17])],
  [nextTokenDatum([2, 6, 10, 14]), nextTokenDatum([3, 7, 11])],
  [nextTokenDatum([1, 5, 9, 13, 17])],
  [nextTokenDatum([4, 8, 12, 16, 20, 24])],
];

type Line = Record<string, number>;

/** The events of an event-stream body read so far, and a way to read more. */
class EventReader {
  readonly events: { id?: string; event: string; data: string }[] = [];
  readonly comments: string[] = [];
  #buf = "";
  readonly #reader: ReadableStreamDefaultReader<string>;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** Read until `done()` holds; throws after `ms`. */
  async until(done: () => boolean, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new Error("event stream: timed out");
      const { value, done: ended } = await this.#reader.read();
      if (ended) throw new Error("event stream ended");
      this.#buf += value;
      let end;
      while ((end = this.#buf.indexOf("\n\n")) >= 0) {
        const block = this.#buf.slice(0, end);
        this.#buf = this.#buf.slice(end + 2);
        const e: { id?: string; event: string; data: string } = {
          event: "message",
          data: "",
        };
        let hasData = false;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
          else if (line.startsWith("id: ")) e.id = line.slice(4);
          else if (line.startsWith("event: ")) e.event = line.slice(7);
          else if (line.startsWith("data: ")) {
            e.data += (hasData ? "\n" : "") + line.slice(6);
            hasData = true;
          }
        }
        if (hasData) this.events.push(e);
      }
    }
  }

  /** Stop reading (the client goes). */
  async cancel(): Promise<void> {
    await this.#reader.cancel();
  }
}

function lossOf(l: Line): number {
  return l["loss:mean"] ?? l["loss:sum"];
}

async function waitFor(what: string, cond: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name:
    "dashboard routes: tenant-scoped lists, metrics as JSON, an event stream that replays, goes live, beats and lets go",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const svc = await startTestService();
    const runsDir = await Deno.makeTempDir({ prefix: "bios-dash-runs-" });
    const gateway = new Gateway({
      service: svc.service,
      tenants: true,
      runsDir,
    });
    const keys = await KeyRing.of([
      { tenant: "a", key: KEY_A },
      { tenant: "b", key: KEY_B },
    ]);
    const app = createApp({ gateway, keys });
    // The same routes with a fast heartbeat, as tenant a.
    const fast = new Hono<GatewayEnv>();
    fast.use(async (c, next) => {
      c.set("tenant", "a");
      await next();
    });
    fast.route("/", dashboardApiRoutes(gateway, { heartbeatMs: 40 }));
    const server = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen: () => {} },
      app.fetch,
    );
    const url = `http://127.0.0.1:${server.addr.port}`;
    const get = async (path: string, key = KEY_A) => {
      const res = await fetch(`${url}/api/v1/dashboard/${path}`, {
        headers: { "X-API-Key": key },
      });
      return { status: res.status, json: await res.json() as Json };
    };
    try {
      const a = new TinkerHttp(url, KEY_A);
      const b = new TinkerHttp(url, KEY_B);
      const runA = await a.createModel(await a.session(), TINY);
      const runB = await b.createModel(await b.session(), TINY);
      let seq = 1;
      for (const data of BATCHES.slice(0, 2)) {
        seq = await trainStep(a, runA, seq, data);
      }
      await trainStep(b, runB, 1, BATCHES[0]);

      // Lists: each tenant its own runs, with the last step and loss.
      const file = async () =>
        (await Deno.readTextFile(`${runsDir}/${runA}/metrics.jsonl`))
          .trimEnd().split("\n").map((l) => JSON.parse(l) as Line);
      const lines = await file();
      assert.deepEqual(lines.map((l) => l.step), [1, 2]);
      const runsA = (await get("runs")).json.runs as Json[];
      assert.deepEqual(runsA, [{
        "model_id": runA,
        "base_model": TINY,
        "last_step": 2,
        "last_loss": lines[1]["loss:mean"],
      }]);
      assert.deepEqual(
        ((await get("runs", KEY_B)).json.runs as Json[]).map((r) => r.model_id),
        [runB],
      );
      assert.deepEqual((await get(`runs/${runA}/metrics`)).json, {
        "model_id": runA,
        lines,
      });
      for (const path of ["metrics", "checkpoints", "events"]) {
        const theirs = await fetch(
          `${url}/api/v1/dashboard/runs/${runA}/${path}`,
          { headers: { "X-API-Key": KEY_B } },
        );
        assert.equal(theirs.status, 404, `b's ${path} of a's run`);
        await theirs.body?.cancel();
      }
      const noKey = await fetch(`${url}/api/v1/dashboard/runs`);
      assert.equal(noKey.status, 401);
      await noKey.body?.cancel();
      const bad = await get(`runs/${runA}/events?after=-1`);
      assert.equal(bad.status, 400);

      // Checkpoints and samplers.
      assert.deepEqual((await get(`runs/${runA}/checkpoints`)).json, {
        "model_id": runA,
        checkpoints: [],
      });
      await a.call("save_weights", {
        "model_id": runA,
        "seq_id": seq++,
        path: "dash-1",
      });
      const ckpts = (await get(`runs/${runA}/checkpoints`)).json
        .checkpoints as Json[];
      assert.equal(ckpts.length, 1);
      assert.equal(ckpts[0].tinker_path, `tinker://${runA}/weights/dash-1`);
      assert.equal(ckpts[0].kind, "weights");
      assert.ok((ckpts[0].size_bytes as number) > 0);
      const sampler = await a.post("create_sampling_session", {
        "session_id": await a.session(),
        "sampling_session_seq_id": 0,
        "base_model": TINY,
      });
      assert.equal(sampler.status, 200, JSON.stringify(sampler.json));
      assert.deepEqual((await get("samplers")).json.samplers, [{
        "sampler_id": sampler.json.sampling_session_id,
        "base_model": TINY,
      }]);
      assert.deepEqual((await get("samplers", KEY_B)).json.samplers, []);

      // The event stream: lines past ?after=1 first, then live ones.
      const res = await fetch(
        `${url}/api/v1/dashboard/runs/${runA}/events?after=1`,
        {
          headers: { "X-API-Key": KEY_A },
        },
      );
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /^text\/event-stream/);
      const stream = new EventReader(res.body!);
      await stream.until(() => stream.events.length >= 1);
      assert.deepEqual(stream.events, [{
        id: "2",
        event: "metrics",
        data: JSON.stringify(lines[1]),
      }]);
      assert.equal(gateway.observer.feed.listening(runA), 1);
      seq = await trainStep(a, runA, seq, BATCHES[2]);
      await stream.until(() => stream.events.length >= 2);
      const now = await file();
      assert.equal(now.length, 3);
      assert.deepEqual(stream.events[1], {
        id: "3",
        event: "metrics",
        data: JSON.stringify(now[2]),
      });
      // Last-Event-ID resumes after the line it names.
      const resumed = await fetch(
        `${url}/api/v1/dashboard/runs/${runA}/events`,
        {
          headers: { "X-API-Key": KEY_A, "Last-Event-ID": "2" },
        },
      );
      const again = new EventReader(resumed.body!);
      await again.until(() => again.events.length >= 1);
      assert.deepEqual(again.events.map((e) => e.id), ["3"]);
      // The client goes: the run's listeners go with it.
      await stream.cancel();
      await again.cancel();
      await waitFor(
        "listeners gone",
        () => gateway.observer.feed.listening() === 0,
      );

      // Heartbeats while idle; the per-tenant count frees as streams close.
      for (let i = 0; i < 20; i++) {
        const r = await fast.request(`/dashboard/runs/${runA}/events?after=3`);
        assert.equal(r.status, 200, `stream ${i}`);
        const idle = new EventReader(r.body!);
        await idle.until(() => idle.comments.includes("heartbeat"), 5_000);
        assert.deepEqual(idle.events, []);
        await idle.cancel();
      }
      await waitFor(
        "listeners gone",
        () => gateway.observer.feed.listening() === 0,
      );
      // The gateway closing ends open streams.
      const last = await fast.request(`/dashboard/runs/${runA}/events`);
      const closing = new EventReader(last.body!);
      await closing.until(() => closing.events.length === 3);
      gateway.observer.feed.close();
      await assert.rejects(closing.until(() => false), /ended/);
    } finally {
      await server.shutdown();
      await gateway.close();
      await svc.close();
      await Deno.remove(runsDir, { recursive: true });
    }
  },
});

/** Why the browser test cannot run here, or null when it can. */
async function browserMissing(): Promise<string | null> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    return `no Chromium at ${CHROMIUM} (apt-get install chromium, or set BIOS_CHROMIUM)`;
  }
  try {
    await import("playwright-core");
  } catch (e) {
    return `playwright-core does not load: ${
      (e as Error).message.split("\n")[0]
    }`;
  }
  return null;
}

const missing = await browserMissing();
if (missing !== null && !REQUIRE_ALL) {
  console.log(`dashboard browser test skipped: ${missing}`);
}

Deno.test({
  name:
    "the dashboard in headless Chromium: the run, its loss chart from its metrics, a step arriving live, checkpoints, samplers",
  ignore: missing !== null && !REQUIRE_ALL,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (missing !== null) throw new Error(missing);
    const { chromium } = await import("playwright-core");
    const keys = await Deno.makeTempFile({ suffix: ".json" });
    await Deno.writeTextFile(
      keys,
      JSON.stringify({
        keys: [{ tenant: "a", key: KEY_A }, { tenant: "b", key: KEY_B }],
      }),
    );
    const gw = await startGateway(["--keys", keys]).finally(() =>
      Deno.remove(keys)
    );
    let browser: Browser | undefined;
    try {
      const a = new TinkerHttp(gw.url, KEY_A);
      const b = new TinkerHttp(gw.url, KEY_B);
      const session = await a.session();
      const run = await a.createModel(session, TINY);
      const other = await b.createModel(await b.session(), TINY);
      let seq = 1;
      // One batch again and again: the loss falls as it learns it.
      for (let i = 0; i < 5; i++) {
        seq = await trainStep(a, run, seq, BATCHES[1], 0.05);
      }
      await a.call("save_weights", {
        "model_id": run,
        "seq_id": seq++,
        path: "dash-ckpt",
      });
      const sampler = (await a.post("create_sampling_session", {
        "session_id": session,
        "sampling_session_seq_id": 0,
        "base_model": TINY,
      })).json.sampling_session_id as string;
      const metrics = async () => {
        const res = await fetch(`${gw.url}/api/v1/runs/${run}/metrics.jsonl`, {
          headers: { "X-API-Key": KEY_A },
        });
        assert.equal(res.status, 200);
        return (await res.text()).trimEnd().split("\n").map((l) =>
          JSON.parse(l) as Line
        );
      };

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
      });
      const page = await browser.newPage({
        viewport: { width: 1000, height: 1300 },
      });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("response", (r) => {
        if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
      });
      const res = await page.goto(`${gw.url}/dashboard`);
      assert.equal(res?.status(), 200);
      assert.match(
        (await res!.allHeaders())["content-security-policy"],
        /script-src 'self'/,
      );
      await page.fill("#api-key", KEY_A);
      await page.click("#key-form button[type=submit]");
      // The run list: a's run, not b's.
      const row = page.locator(`#runs tr[data-run="${run}"]`);
      await row.waitFor();
      assert.equal(
        await page.locator(`#runs tr[data-run="${other}"]`).count(),
        0,
      );
      assert.equal(await page.locator("#runs tbody tr").count(), 1);
      const want = await metrics();
      assert.equal(
        await row.locator("td").nth(2).textContent(),
        String(want[4].step),
      );
      await row.locator("button").click();

      /** The chart's points as drawn. */
      const drawn = () =>
        page.$$eval("#loss-chart circle.point", (els) =>
          els.map((e) => ({
            step: Number(e.getAttribute("data-step")),
            loss: Number(e.getAttribute("data-loss")),
            cx: Number(e.getAttribute("cx")),
            cy: Number(e.getAttribute("cy")),
          })));
      const checkChart = async (lines: Line[]) => {
        const circles = page.locator("#loss-chart circle.point");
        const deadline = Date.now() + 30_000;
        while (await circles.count() !== lines.length) {
          assert.ok(Date.now() < deadline, `${lines.length} points drawn`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const points = await drawn();
        assert.deepEqual(
          points.map((p) => [p.step, p.loss]),
          lines.map((l) => [l.step, lossOf(l)]),
          "the chart's points are the run's metrics",
        );
        assert.equal(
          await page.getAttribute("#loss-chart", "data-loss-key"),
          "loss:mean",
        );
        // Drawn where the values say: x grows with the step, y falls as
        // the loss grows (SVG's y points down).
        for (let i = 1; i < points.length; i++) {
          assert.ok(points[i].cx > points[i - 1].cx);
          for (let j = 0; j < i; j++) {
            const dl = points[i].loss - points[j].loss;
            const dy = points[i].cy - points[j].cy;
            if (dl !== 0) assert.ok(Math.sign(dl) === -Math.sign(dy));
          }
        }
        const polyline = await page.getAttribute(
          "#loss-chart .loss-line",
          "points",
        );
        assert.deepEqual(
          polyline!.trim().split(/\s+/),
          points.map((p) => `${p.cx},${p.cy}`),
        );
      };
      await checkChart(want);

      // A step trained now arrives over the event stream.
      await page.waitForSelector('#stream-state[data-state="live"]');
      seq = await trainStep(a, run, seq, BATCHES[1], 0.05);
      const after = await metrics();
      assert.equal(after.length, 6);
      await checkChart(after);
      assert.equal(await page.locator("#metrics tbody tr").count(), 6);
      // The run list shows it too.
      assert.equal(await row.locator("td").nth(2).textContent(), "6");

      // Its checkpoint and the tenant's sampler.
      await page.locator("#checkpoints tbody tr").first().waitFor();
      assert.equal(
        await page.locator("#checkpoints tbody tr td").first().textContent(),
        `tinker://${run}/weights/dash-ckpt`,
      );
      await page.locator("#samplers tbody tr").first().waitFor();
      assert.equal(
        await page.locator("#samplers tbody tr td").first().textContent(),
        sampler,
      );
      assert.deepEqual(errors, [], "no errors on the page");
      // The key never went into a URL.
      assert.ok(!page.url().includes(KEY_A));

      const dir = Deno.env.get("BIOS_ARTIFACTS") ??
        await Deno.makeTempDir({ prefix: "bios-dashboard-" });
      await Deno.mkdir(dir, { recursive: true });
      const shot = `${dir}/dashboard.png`;
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok((await Deno.stat(shot)).size > 10_000);
      console.log(`dashboard screenshot: ${shot}`);

      // The gateway stops at once with the page's event stream open: the
      // stream ends (the page falls back to reconnecting).
      const t0 = Date.now();
      assert.equal(await gw.stop(), 0);
      assert.ok(Date.now() - t0 < 10_000, "the gateway stopped promptly");
      await page.waitForSelector('#stream-state[data-state="connecting"]');
    } finally {
      await browser?.close();
      assert.equal(await gw.stop(), 0);
    }
  },
});
