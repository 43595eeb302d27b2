import assert from "node:assert/strict";
import {
  CatalogError,
  catalogOptionsFromEnv,
  listModels,
  resolveModel,
  safeModelDirName,
} from "./catalog.ts";
import { loadModelFolder } from "./model_folder.ts";
import { ByteTokenizer } from "./byte_tokenizer.ts";
import { DEMO_MODEL_NAMES } from "./demo_models.ts";

async function sha256Hex(path: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    await Deno.readFile(path),
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("resolveModel() builds a demo model once, with identical bytes every time", async () => {
  await withTempDir(async (root) => {
    const name = "ultrasafe/usf-conversation";
    const dirA = await resolveModel(name, {
      biosHome: `${root}/a`,
      catalogFile: null,
    });
    const dirB = await resolveModel(name, {
      biosHome: `${root}/b`,
      catalogFile: null,
    });
    assert.equal(dirA, `${root}/a/models/ultrasafe--usf-conversation`);
    assert.ok(dirB !== undefined && dirA !== undefined);
    const files = [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ];
    assert.deepEqual(
      [...Deno.readDirSync(dirA)].map((e) => e.name).sort(),
      files,
    );
    for (const f of files) {
      assert.equal(
        await sha256Hex(`${dirA}/${f}`),
        await sha256Hex(`${dirB}/${f}`),
        f,
      );
    }
    // A second resolve reuses the folder.
    const before = (await Deno.stat(`${dirA}/model.safetensors`)).mtime;
    assert.equal(
      await resolveModel(name, { biosHome: `${root}/a`, catalogFile: null }),
      dirA,
    );
    assert.deepEqual(
      (await Deno.stat(`${dirA}/model.safetensors`)).mtime,
      before,
    );
    const m = await loadModelFolder(dirA);
    assert.equal(m.config.hiddenSize, 96);
    assert.ok(m.tokenizer instanceof ByteTokenizer);
  });
});

Deno.test("resolveModel() in parallel builds one folder and leaves no temporary files", async () => {
  await withTempDir(async (root) => {
    const opts = { biosHome: root, catalogFile: null };
    const dirs = await Promise.all(
      [0, 1, 2].map(() => resolveModel("ultrasafe/usf-code", opts)),
    );
    assert.ok(dirs.every((d) => d === `${root}/models/ultrasafe--usf-code`));
    assert.deepEqual(
      [...Deno.readDirSync(`${root}/models`)].map((e) => e.name),
      ["ultrasafe--usf-code"],
    );
  });
});

Deno.test("resolveModel() returns undefined for an unknown name", async () => {
  await withTempDir(async (root) => {
    assert.equal(
      await resolveModel("someone/unknown", {
        biosHome: root,
        catalogFile: null,
      }),
      undefined,
    );
    assert.equal(
      await resolveModel("usf-finance", { biosHome: root, catalogFile: null }),
      undefined,
    );
    assert.deepEqual([...Deno.readDirSync(root)], []);
  });
});

Deno.test("listModels() lists the built-ins and notes which are on disk", async () => {
  await withTempDir(async (root) => {
    const opts = { biosHome: root, catalogFile: null };
    const before = listModels(opts);
    assert.deepEqual(before.map((m) => m.name), [...DEMO_MODEL_NAMES].sort());
    assert.ok(
      before.every((m) =>
        m.builtIn && m.maxContextLength === 512 && m.dir === undefined
      ),
    );
    await resolveModel("ultrasafe/usf-finance", opts);
    const after = listModels(opts);
    assert.equal(
      after.find((m) => m.name === "ultrasafe/usf-finance")?.dir,
      `${root}/models/ultrasafe--usf-finance`,
    );
    assert.equal(
      after.find((m) => m.name === "ultrasafe/usf-general")?.dir,
      undefined,
    );
  });
});

Deno.test("a BIOS_MODELS catalog file adds and overrides names", async () => {
  await withTempDir(async (root) => {
    // A real model folder for the catalog to point at: a copy of a demo, with a longer context.
    const demo = (await resolveModel("ultrasafe/usf-conversation", {
      biosHome: `${root}/home`,
      catalogFile: null,
    }))!;
    await Deno.mkdir(`${root}/weights/mine`, { recursive: true });
    for (const e of Deno.readDirSync(demo)) {
      await Deno.copyFile(
        `${demo}/${e.name}`,
        `${root}/weights/mine/${e.name}`,
      );
    }
    const cfg = JSON.parse(
      await Deno.readTextFile(`${root}/weights/mine/config.json`),
    );
    await Deno.writeTextFile(
      `${root}/weights/mine/config.json`,
      JSON.stringify({ ...cfg, max_position_embeddings: 1024 }),
    );
    await Deno.mkdir(`${root}/etc`);
    const catalogFile = `${root}/etc/models.json`;
    await Deno.writeTextFile(
      catalogFile,
      JSON.stringify({
        models: {
          "acme/mine": "../weights/mine",
          "ultrasafe/usf-finance": `${root}/weights/mine`,
        },
      }),
    );
    const opts = { biosHome: `${root}/home`, catalogFile };
    assert.equal(
      await resolveModel("acme/mine", opts),
      `${root}/etc/../weights/mine`,
    );
    assert.equal(
      await resolveModel("ultrasafe/usf-finance", opts),
      `${root}/weights/mine`,
    );
    assert.equal(
      await resolveModel("ultrasafe/usf-code", opts),
      `${root}/home/models/ultrasafe--usf-code`,
    );
    assert.equal(await resolveModel("acme/other", opts), undefined);
    const listed = listModels(opts);
    assert.deepEqual(listed.find((m) => m.name === "acme/mine"), {
      name: "acme/mine",
      maxContextLength: 1024,
      dir: `${root}/etc/../weights/mine`,
      builtIn: false,
    });
    assert.equal(
      listed.find((m) => m.name === "ultrasafe/usf-finance")?.builtIn,
      false,
    );
    assert.equal(listed.length, 6);
    assert.equal(
      (await loadModelFolder((await resolveModel("acme/mine", opts))!)).config
        .maxPositionEmbeddings,
      1024,
    );
  });
});

Deno.test("a malformed catalog file is a clear error naming the file", async () => {
  await withTempDir(async (root) => {
    const file = `${root}/models.json`;
    const opts = { biosHome: root, catalogFile: file };
    const cases: [string, RegExp][] = [
      ["{not json", /is not valid JSON/],
      ['{"models": []}', /must be \{"models": \{"<name>": "<folder>"\}\}/],
      [
        '{"models": {"a/b": 3}}',
        /models\["a\/b"\] must be a non-empty folder path/,
      ],
    ];
    for (const [text, pattern] of cases) {
      await Deno.writeTextFile(file, text);
      assert.throws(() => listModels(opts), (e: Error) => {
        assert.ok(e instanceof CatalogError);
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, pattern);
        return true;
      });
      await assert.rejects(
        () => resolveModel("ultrasafe/usf-code", opts),
        CatalogError,
      );
    }
    await Deno.writeTextFile(
      file,
      JSON.stringify({ models: { "a/b": "missing" } }),
    );
    await assert.rejects(
      () => resolveModel("a/b", opts),
      /folder .*missing \(from catalog file .*\) does not exist/,
    );
    // One unreadable entry is that model's problem; the catalog still lists.
    const entry = listModels(opts).find((m) => m.name === "a/b");
    assert.match(
      entry?.problem ?? "",
      /model a\/b: .*config.json cannot be read/,
    );
    assert.equal(entry?.maxContextLength, 0);
    assert.throws(
      () => listModels({ biosHome: root, catalogFile: `${root}/absent.json` }),
      /cannot be read/,
    );
  });
});

Deno.test("catalogOptionsFromEnv() reads BIOS_HOME, HOME and BIOS_MODELS", () => {
  const env = (vars: Record<string, string>) => (k: string) => vars[k];
  assert.deepEqual(catalogOptionsFromEnv({}, env({ HOME: "/h" })), {
    biosHome: "/h/.cache/bios",
    catalogFile: null,
  });
  assert.deepEqual(
    catalogOptionsFromEnv(
      {},
      env({ HOME: "/h", BIOS_HOME: "/b", BIOS_MODELS: "/c.json" }),
    ),
    { biosHome: "/b", catalogFile: "/c.json" },
  );
  assert.deepEqual(
    catalogOptionsFromEnv(
      { biosHome: "/x", catalogFile: null },
      env({ BIOS_HOME: "/b", BIOS_MODELS: "/c.json" }),
    ),
    { biosHome: "/x", catalogFile: null },
  );
});

Deno.test("safeModelDirName() makes one safe path segment", () => {
  assert.equal(
    safeModelDirName("ultrasafe/usf-finance"),
    "ultrasafe--usf-finance",
  );
  assert.equal(safeModelDirName("a b:c\\d"), "a_b_c_d");
  assert.equal(safeModelDirName(".."), "__");
});
