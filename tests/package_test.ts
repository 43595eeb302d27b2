/**
 * Bios as a package: `deno publish --dry-run` passes (no slow types), and
 * the files it would publish, copied to a folder of their own, serve a
 * user's script elsewhere that imports `@bios/bios` — the seed's "Complete
 * Training Workflow" (`examples/training_workflow.ts`) runs there as it
 * runs in the repository. The two meet as members of a Deno workspace, which
 * resolves `@bios/bios` by the package's name and gives the package its own
 * imports, as JSR does.
 */
import assert from "node:assert/strict";

const repo = new URL("../", import.meta.url).pathname;

async function deno(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  return { ok: out.success, text };
}

Deno.test("deno publish --dry-run passes, and a script outside the repository imports @bios/bios and trains", async () => {
  const dry = await deno(["publish", "--dry-run", "--allow-dirty"], repo);
  assert.ok(dry.ok, dry.text);
  assert.match(dry.text, /Dry run complete/);
  const files = [...dry.text.matchAll(/file:\/\/(\S+) \(/g)].map((m) => m[1]);
  assert.ok(files.some((f) => f.endsWith("/mod.ts")), "mod.ts is published");
  assert.ok(
    !files.some((f) => f.includes("/tests/") || f.includes("/bench/")),
    "tests and benchmarks are not published",
  );

  const tmp = await Deno.makeTempDir({ prefix: "bios-package-" });
  try {
    for (const f of files) {
      const rel = f.slice(repo.length);
      const to = `${tmp}/pkg/${rel}`;
      await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
      await Deno.copyFile(f, to);
    }
    await Deno.copyFile(`${repo}deno.json`, `${tmp}/pkg/deno.json`);
    await Deno.writeTextFile(
      `${tmp}/deno.json`,
      JSON.stringify({ workspace: ["./pkg", "./app"] }),
    );
    await Deno.mkdir(`${tmp}/app/data`, { recursive: true });
    await Deno.writeTextFile(`${tmp}/app/deno.json`, "{}\n");
    const user = (src: string) => src.replaceAll(`"../mod.ts"`, `"@bios/bios"`);
    await Deno.writeTextFile(
      `${tmp}/app/main.ts`,
      user(await Deno.readTextFile(`${repo}examples/training_workflow.ts`)),
    );
    await Deno.writeTextFile(
      `${tmp}/app/sft_datum.ts`,
      user(await Deno.readTextFile(`${repo}examples/sft_datum.ts`)),
    );
    await Deno.copyFile(
      `${repo}examples/data/finance_qa.ts`,
      `${tmp}/app/data/finance_qa.ts`,
    );
    const run = await deno(["run", "-A", "app/main.ts"], tmp, {
      BIOS_HOME: `${tmp}/home`,
    });
    assert.ok(run.ok, run.text);
    const saved = run.text.match(/Saved: bios:\/\/\S+\/weights\/epoch_\d/g);
    assert.equal(saved?.length, 3, run.text);
    const losses = [...run.text.matchAll(/Loss: ([\d.]+)/g)].map((m) =>
      Number(m[1])
    );
    assert.ok(losses.length >= 3, run.text);
    assert.ok(losses.at(-1)! < losses[0], `the loss falls: ${losses}`);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
});
