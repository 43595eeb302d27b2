/**
 * Turns the collected figures into the benchmark's table: plain text for the
 * terminal and markdown for the README.
 *
 * @module
 */
import type { RowSpec } from "./plan.ts";
import { fmt, median, ratio } from "./stats.ts";

/** What the runs produced: every value of every figure, and notes per job. */
export interface Collected {
  /** Figure key → one value per successful process. */
  figures: Map<string, number[]>;
  /** Job id → why some or all of its processes gave no figure. */
  notes: Map<string, string[]>;
}

/** One finished table row. */
export interface TableRow {
  /** Part of the benchmark. */
  group: string;
  /** What is measured. */
  figure: string;
  /** Bios side. */
  backend: string;
  /** "GFLOP/s" or "tokens/s". */
  unit: string;
  /** Median over processes, or null. */
  value: number | null;
  /** Every process's value. */
  values: number[];
  /** Peer name. */
  peer: string;
  /** Peer median, or null. */
  peerValue: number | null;
  /** Every peer process's value. */
  peerValues: number[];
  /** value / peerValue (higher is better for Bios). */
  ratio: number | null;
  /** The goal, e.g. "≥ 1.0×". */
  target?: string;
  /** Whether the goal is met (null when a value is missing). */
  meets?: boolean | null;
  /** Why a value is missing, or how many processes failed. */
  note?: string;
}

/** Fill in each row from the collected figures. */
export function buildRows(
  specs: readonly RowSpec[],
  got: Collected,
): TableRow[] {
  return specs.map((r) => {
    const values = got.figures.get(r.biosKey) ?? [];
    const peerValues = got.figures.get(r.peerKey) ?? [];
    const value = median(values);
    const peerValue = median(peerValues);
    // Above 1 is Bios better: faster throughput, or lower latency.
    const q = r.lowerIsBetter
      ? ratio(peerValue, value)
      : ratio(value, peerValue);
    const row: TableRow = {
      group: r.group,
      figure: r.figure,
      backend: r.backend,
      unit: r.unit,
      value,
      values,
      peer: r.peer,
      peerValue,
      peerValues,
      ratio: q,
    };
    if (r.target) {
      row.target = r.target.text;
      const v = r.target.kind === "ratio" ? q : value;
      row.meets = v === null ? null : v >= r.target.min;
    }
    const notes = [
      ...(got.notes.get(r.biosJob) ?? []),
      ...(got.notes.get(r.peerJob) ?? []).map((n) => `peer: ${n}`),
    ];
    if (notes.length > 0) row.note = [...new Set(notes)].join("; ");
    return row;
  });
}

const HEADER = [
  "figure",
  "Bios backend",
  "Bios value",
  "peer",
  "peer value",
  "ratio",
  "target",
];

function cells(r: TableRow): string[] {
  const unit = r.unit === "GFLOP/s"
    ? " GFLOP/s"
    : r.unit === "ms"
    ? " ms"
    : r.unit === "GiB"
    ? " GiB"
    : " tok/s";
  const target = r.target === undefined
    ? ""
    : `${r.target} ${r.meets === null ? "?" : r.meets ? "met" : "NOT met"}`;
  return [
    r.figure,
    r.backend,
    r.value === null ? `— ${shortNote(r.note)}`.trim() : fmt(r.value) + unit,
    r.peer,
    r.peerValue === null ? "—" : fmt(r.peerValue) + unit,
    r.ratio === null ? "—" : `${r.ratio.toFixed(2)}×`,
    target,
  ];
}

function shortNote(note: string | undefined): string {
  if (!note) return "";
  return `(${note.length > 60 ? note.slice(0, 57) + "..." : note})`;
}

/**
 * The table as aligned plain text.
 *
 * @example
 * ```ts
 * import { formatTable } from "./report.ts";
 * console.log(formatTable([]));
 * ```
 */
export function formatTable(rows: readonly TableRow[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) =>
    Math.max(h.length, ...body.map((c) => c[i].length))
  );
  const line = (c: string[]) =>
    c.map((x, i) => x.padEnd(widths[i])).join(" | ").trimEnd();
  const out = [line(HEADER), widths.map((w) => "-".repeat(w)).join("-|-")];
  let group = rows[0]?.group;
  for (let i = 0; i < rows.length; i++) {
    if (rows[i].group !== group) {
      out.push("");
      group = rows[i].group;
    }
    out.push(line(body[i]));
  }
  return out.join("\n");
}

/** The table as a markdown table. */
export function markdownTable(rows: readonly TableRow[]): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const out = [
    `| ${HEADER.join(" | ")} |`,
    `| ${
      HEADER.map((_, i) => i === 0 || i === 1 || i === 3 ? "---" : "---:").join(
        " | ",
      )
    } |`,
  ];
  for (const r of rows) out.push(`| ${cells(r).map(esc).join(" | ")} |`);
  return out.join("\n");
}
