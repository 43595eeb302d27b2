/**
 * A strict reader of Prometheus's text exposition format (0.0.4), for the
 * tests of `/metrics`: it throws on any line the format does not allow, on
 * a sample of a family with no `# TYPE`, a family typed twice, a histogram
 * whose buckets are not cumulative or whose `+Inf` bucket is not its count.
 *
 * @module
 */

/** One sample: its name, labels and value. */
export interface Sample {
  /** The sample's name (`x_bucket`, `x_sum`, … for a histogram). */
  name: string;
  /** Its labels. */
  labels: Record<string, string>;
  /** Its value. */
  value: number;
}

/** A parsed exposition: its samples and each family's type. */
export interface Exposition {
  /** Every sample, in order. */
  samples: Sample[];
  /** Each family's type. */
  types: Map<string, string>;
  /** The value of the one sample named `name` with exactly `labels`; undefined if none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE = new RegExp(`^(${NAME})(\\{(.*)\\})? (\\S+)( -?\\d+)?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"(,|$)/;

function parseValue(s: string, line: string): number {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  if (s === "NaN") return NaN;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) {
    throw new Error(`bad value in ${JSON.stringify(line)}`);
  }
  return Number(s);
}

function parseLabels(text: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = rest.match(LABEL);
    if (!m) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    if (m[1] in out) throw new Error(`label ${m[1]} twice in ${line}`);
    out[m[1]] = m[2].replace(/\\(["\\n])/g, (_, c) => c === "n" ? "\n" : c);
    rest = rest.slice(m[0].length);
  }
  return out;
}

function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && types.get(base) === "histogram") return base;
  }
  return name;
}

/** Parse `text`, checking it as it goes. */
export function parseExposition(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("the text must end in a newline");
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("#")) {
      const m = line.match(new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`));
      if (!m) continue; // a plain comment
      if (m[1] === "TYPE") {
        if (
          !["counter", "gauge", "histogram", "summary", "untyped"].includes(
            m[3],
          )
        ) throw new Error(`bad type in ${line}`);
        if (types.has(m[2])) throw new Error(`${m[2]} typed twice`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    if (line.trim() === "") continue;
    const m = line.match(SAMPLE);
    if (!m) throw new Error(`bad sample line ${JSON.stringify(line)}`);
    const family = familyOf(m[1], types);
    if (!types.has(family)) throw new Error(`${m[1]} has no # TYPE before it`);
    samples.push({
      name: m[1],
      labels: parseLabels(m[3] ?? "", line),
      value: parseValue(m[4], line),
    });
  }
  checkHistograms(samples, types);
  return {
    samples,
    types,
    value(name, labels = {}) {
      const want = JSON.stringify(Object.entries(labels).sort());
      const found = samples.filter((s) =>
        s.name === name && JSON.stringify(Object.entries(s.labels).sort()) ===
          want
      );
      if (found.length > 1) throw new Error(`${name} ${want} twice`);
      return found[0]?.value;
    },
  };
}

function checkHistograms(samples: Sample[], types: Map<string, string>) {
  const series = new Map<string, { le: number; v: number }[]>();
  const counts = new Map<string, number>();
  for (const s of samples) {
    const family = familyOf(s.name, types);
    if (types.get(family) !== "histogram") continue;
    const { le, ...rest } = s.labels;
    const key = `${family}${JSON.stringify(Object.entries(rest).sort())}`;
    if (s.name.endsWith("_bucket")) {
      if (le === undefined) throw new Error(`${s.name} without le`);
      const list = series.get(key) ?? [];
      list.push({ le: parseValue(le, s.name), v: s.value });
      series.set(key, list);
    } else if (s.name.endsWith("_count")) counts.set(key, s.value);
  }
  for (const [key, buckets] of series) {
    for (let i = 1; i < buckets.length; i++) {
      if (buckets[i].le <= buckets[i - 1].le) {
        throw new Error(`${key}: buckets out of order`);
      }
      if (buckets[i].v < buckets[i - 1].v) {
        throw new Error(`${key}: buckets not cumulative`);
      }
    }
    const last = buckets[buckets.length - 1];
    if (last.le !== Infinity) throw new Error(`${key}: no +Inf bucket`);
    if (counts.get(key) !== last.v) {
      throw new Error(`${key}: +Inf bucket is not _count`);
    }
  }
}
