/**
 * The dashboard's loss chart: an SVG line of a run's loss by step, drawn
 * from its metrics.jsonl lines. The loss is `loss:mean` (the mean NLL over
 * the weighted tokens) where the lines have it, `loss:sum` otherwise. Each
 * point is a `<circle class="point">` carrying its `data-step` and
 * `data-loss`, and the SVG carries the whole series in `data-series`
 * (JSON `[[step, loss], …]`) and the key in `data-loss-key`, so what is
 * drawn can be read back and compared with the run's metrics.
 *
 * @module
 */

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const HEIGHT = 320;
const MARGIN = { left: 64, right: 16, top: 16, bottom: 40 };

/**
 * The loss key the chart plots for `lines`.
 *
 * @param {ReadonlyArray<Record<string, number>>} lines
 * @returns {string}
 */
export function lossKey(lines) {
  return lines.some((l) => Number.isFinite(l["loss:mean"]))
    ? "loss:mean"
    : "loss:sum";
}

/**
 * The `[step, loss]` points of `lines` under `key`.
 *
 * @param {ReadonlyArray<Record<string, number>>} lines
 * @param {string} key
 * @returns {[number, number][]}
 */
export function lossSeries(lines, key) {
  /** @type {[number, number][]} */
  const out = [];
  for (const l of lines) {
    if (Number.isFinite(l.step) && Number.isFinite(l[key])) {
      out.push([l.step, l[key]]);
    }
  }
  return out;
}

/**
 * An SVG element with attributes.
 *
 * @param {string} name
 * @param {Record<string, string | number>} attrs
 * @returns {SVGElement}
 */
function el(name, attrs) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return /** @type {SVGElement} */ (e);
}

/**
 * About `n` round tick values from `lo` to `hi`.
 *
 * @param {number} lo
 * @param {number} hi
 * @param {number} n
 * @returns {number[]}
 */
function ticks(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ??
    raw;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    out.push(Number(t.toPrecision(12)));
  }
  return out;
}

/**
 * Draw the loss of `lines` into `svg` (its children replaced).
 *
 * @param {SVGSVGElement} svg
 * @param {ReadonlyArray<Record<string, number>>} lines
 */
export function drawLossChart(svg, lines) {
  const key = lossKey(lines);
  const series = lossSeries(lines, key);
  svg.replaceChildren();
  svg.dataset.lossKey = key;
  svg.dataset.series = JSON.stringify(series);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  if (series.length === 0) {
    const t = el("text", {
      x: WIDTH / 2,
      y: HEIGHT / 2,
      "text-anchor": "middle",
      fill: "#5b6472",
    });
    t.textContent = "No steps yet";
    svg.append(t);
    return;
  }
  let [x0, x1] = [series[0][0], series[0][0]];
  let [y0, y1] = [series[0][1], series[0][1]];
  for (const [x, y] of series) {
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  const pad = y1 === y0 ? Math.abs(y0) * 0.1 || 1 : (y1 - y0) * 0.08;
  [y0, y1] = [y0 - pad, y1 + pad];
  /** @param {number} x */
  const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  /** @param {number} y */
  const sy = (y) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;
  svg.dataset.domain = JSON.stringify([x0, x1, y0, y1]);

  const axis = el("g", { stroke: "#c4c9d2", "stroke-width": 1 });
  axis.append(
    el("line", {
      x1: MARGIN.left,
      y1: MARGIN.top + plotH,
      x2: MARGIN.left + plotW,
      y2: MARGIN.top + plotH,
    }),
    el("line", {
      x1: MARGIN.left,
      y1: MARGIN.top,
      x2: MARGIN.left,
      y2: MARGIN.top + plotH,
    }),
  );
  svg.append(axis);
  const labels = el("g", { fill: "#5b6472", "font-size": 11 });
  for (const t of ticks(y0, y1, 5)) {
    labels.append(el("line", {
      x1: MARGIN.left,
      x2: MARGIN.left + plotW,
      y1: sy(t),
      y2: sy(t),
      stroke: "#eceef2",
    }));
    const text = el("text", {
      x: MARGIN.left - 6,
      y: sy(t) + 4,
      "text-anchor": "end",
    });
    text.textContent = String(t);
    labels.append(text);
  }
  for (const t of ticks(x0, x1, Math.min(8, x1 - x0))) {
    if (!Number.isInteger(t)) continue;
    const text = el("text", {
      x: sx(t),
      y: MARGIN.top + plotH + 16,
      "text-anchor": "middle",
    });
    text.textContent = String(t);
    labels.append(text);
  }
  const xName = el("text", {
    x: MARGIN.left + plotW / 2,
    y: HEIGHT - 6,
    "text-anchor": "middle",
  });
  xName.textContent = "step";
  const yName = el("text", {
    x: 14,
    y: MARGIN.top + plotH / 2,
    "text-anchor": "middle",
    transform: `rotate(-90 14 ${MARGIN.top + plotH / 2})`,
  });
  yName.textContent = key;
  labels.append(xName, yName);
  svg.append(labels);

  svg.append(el("polyline", {
    class: "loss-line",
    fill: "none",
    stroke: "#1a56db",
    "stroke-width": 2,
    points: series.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" "),
  }));
  const points = el("g", { fill: "#1a56db" });
  for (const [x, y] of series) {
    const c = el("circle", { class: "point", cx: sx(x), cy: sy(y), r: 3.5 });
    c.dataset.step = String(x);
    c.dataset.loss = String(y);
    const title = el("title", {});
    title.textContent = `step ${x}: ${key} ${y}`;
    c.append(title);
    points.append(c);
  }
  svg.append(points);
}
