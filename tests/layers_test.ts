/**
 * The layers of DESIGN.md, checked on the module graph that `deno info`
 * reports: data flows down, nothing imports upward, and the client is thin
 * (its static graph holds no actor, model or kernel module: the embedded
 * node and the tokenizer are loaded by dynamic imports, when asked for).
 */
import assert from "node:assert/strict";

/** What each layer may import (besides itself and npm packages). */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  "mod.ts": ["client", "protocol", "runtime"],
  server: ["client", "protocol", "runtime"],
  client: ["protocol", "runtime"],
  protocol: ["runtime"],
  actors: ["protocol", "runtime", "model", "kernels"],
  model: ["kernels", "protocol", "runtime"],
  runtime: [],
  kernels: [],
};

interface Dep {
  specifier: string;
  code?: { specifier: string };
  type?: { specifier: string };
  isDynamic?: boolean;
}
interface Mod {
  specifier: string;
  dependencies?: Dep[];
}

const root = new URL("../", import.meta.url).href;

/** The layer of a module of this repository (`client`, `mod.ts`, …), or null. */
function layerOf(specifier: string): string | null {
  if (!specifier.startsWith(root)) return null;
  const rel = specifier.slice(root.length);
  return rel.includes("/") ? rel.split("/")[0] : rel;
}

async function graph(entry: string): Promise<Map<string, Mod>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: Mod[];
  };
  return new Map(info.modules.map((m) => [m.specifier, m]));
}

Deno.test("no module imports a layer above its own (DESIGN.md's table)", async () => {
  const mods = await graph("mod.ts");
  for (const entry of ["actors/node.ts", "server/main.ts"]) {
    for (const [k, v] of await graph(entry)) mods.set(k, v);
  }
  const wrong: string[] = [];
  for (const m of mods.values()) {
    const from = layerOf(m.specifier);
    if (from === null || !(from in MAY_IMPORT)) continue;
    for (const d of m.dependencies ?? []) {
      // The client loads the embedded node and the tokenizer only when asked.
      if (d.isDynamic && from === "client") continue;
      for (const target of [d.code?.specifier, d.type?.specifier]) {
        const to = target ? layerOf(target) : null;
        if (to === null || to === from || !(to in MAY_IMPORT)) continue;
        if (!MAY_IMPORT[from].includes(to)) {
          wrong.push(`${m.specifier.slice(root.length)} → ${d.specifier}`);
        }
      }
    }
  }
  assert.deepEqual(wrong, [], "imports against the layers");
});

Deno.test("a script importing mod.ts loads no actor, model or kernel module until it starts a node", async () => {
  const mods = await graph("mod.ts");
  const seen = new Set<string>();
  const stack = [new URL("../mod.ts", import.meta.url).href];
  while (stack.length > 0) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of mods.get(s)?.dependencies ?? []) {
      if (d.isDynamic || !d.code) continue;
      stack.push(d.code.specifier);
    }
  }
  const heavy = [...seen].map((s) => layerOf(s)).filter((l) =>
    l === "actors" || l === "model" || l === "kernels"
  );
  assert.deepEqual(heavy, [], `modules loaded: ${[...seen].length}`);
});
