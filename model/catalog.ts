/**
 * The model catalog: which model names Bios serves and where their folders are.
 *
 * Built in are the five demo models (`DEMO_MODEL_NAMES`), generated on first use
 * into `$BIOS_HOME/models/<safe-name>` (`BIOS_HOME` defaults to
 * `$HOME/.cache/bios`). An operator adds or overrides names with a catalog file
 * named by `BIOS_MODELS`:
 *
 * ```json
 * { "models": { "meta-llama/Llama-3.2-1B": "../weights/llama-3.2-1b" } }
 * ```
 *
 * where each folder path is relative to the catalog file (or absolute).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { listModels, resolveModel } from "./catalog.ts";
 * const opts = { biosHome: await Deno.makeTempDir(), catalogFile: null };
 * assert.ok(listModels(opts).some((m) => m.name === "ultrasafe/usf-finance"));
 * const dir = await resolveModel("ultrasafe/usf-finance", opts);
 * assert.ok(dir?.endsWith("ultrasafe--usf-finance"));
 * assert.equal(await resolveModel("nope/none", opts), undefined);
 * await Deno.remove(opts.biosHome, { recursive: true });
 * ```
 *
 * @module
 */

import {
  buildDemoModel,
  DEMO_MAX_CONTEXT,
  DEMO_MODEL_NAMES,
} from "./demo_models.ts";
import { parseLlamaConfig } from "./config.ts";
import { writeModelFolder } from "./model_folder.ts";

/** Thrown for a malformed catalog file or a catalog entry whose folder is unusable. */
export class CatalogError extends Error {
  /** @param message what was wrong, naming the file */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CatalogError";
  }
}

/** One servable model. */
export interface CatalogEntry {
  /** The name clients ask for, e.g. `"ultrasafe/usf-finance"`. */
  name: string;
  /** Longest sequence it supports (`max_position_embeddings`). */
  maxContextLength: number;
  /** Its folder, when it is on disk (always for catalog-file entries; built-ins once generated). */
  dir?: string;
  /** True for a generated demo model, false for a catalog-file entry. */
  builtIn: boolean;
  /**
   * Why this entry cannot be served (its config.json is unreadable or of an
   * architecture Bios does not support); absent when it can.
   */
  problem?: string;
}

/** Where the catalog looks; each field defaults from the environment. */
export interface CatalogOptions {
  /** Cache root; default `$BIOS_HOME`, else `$HOME/.cache/bios`. */
  biosHome?: string;
  /** Catalog file; default `$BIOS_MODELS`; `null` for none. */
  catalogFile?: string | null;
}

/**
 * Fills in `CatalogOptions` from an environment.
 *
 * @param opts explicit options (win over the environment)
 * @param env variable lookup (default `Deno.env.get`)
 * @returns the home folder and the catalog file, if any
 */
export function catalogOptionsFromEnv(
  opts: CatalogOptions = {},
  env: (key: string) => string | undefined = (k) => Deno.env.get(k),
): { biosHome: string; catalogFile: string | null } {
  const home = env("HOME") ?? env("USERPROFILE") ?? ".";
  const biosHome = opts.biosHome ?? env("BIOS_HOME") ?? `${home}/.cache/bios`;
  const catalogFile = opts.catalogFile === undefined
    ? (env("BIOS_MODELS") || null)
    : opts.catalogFile;
  return { biosHome, catalogFile };
}

/**
 * The folder name of a model name: `/` becomes `--`, anything outside
 * `[A-Za-z0-9._-]` becomes `_` (so `ultrasafe/usf-finance` → `ultrasafe--usf-finance`).
 *
 * @param name a model name
 * @returns a single safe path segment
 */
export function safeModelDirName(name: string): string {
  const s = name.replaceAll("/", "--").replace(/[^A-Za-z0-9._-]/g, "_");
  return s === "." || s === ".." ? s.replaceAll(".", "_") : s;
}

function builtInDir(biosHome: string, name: string): string {
  return `${biosHome}/models/${safeModelDirName(name)}`;
}

function isAbsolute(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path);
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** The catalog file's entries, name → absolute-or-relative-to-cwd folder. */
function readCatalogFile(file: string): Map<string, string> {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (e) {
    throw new CatalogError(
      `catalog file ${file} cannot be read: ${(e as Error).message}`,
      { cause: e },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CatalogError(
      `catalog file ${file} is not valid JSON: ${(e as Error).message}`,
    );
  }
  const models = (json as { models?: unknown } | null)?.models;
  if (
    typeof json !== "object" || json === null || typeof models !== "object" ||
    models === null || Array.isArray(models)
  ) {
    throw new CatalogError(
      `catalog file ${file} must be {"models": {"<name>": "<folder>"}}`,
    );
  }
  const out = new Map<string, string>();
  for (const [name, folder] of Object.entries(models)) {
    if (name === "" || typeof folder !== "string" || folder === "") {
      throw new CatalogError(
        `catalog file ${file}: models[${
          JSON.stringify(name)
        }] must be a non-empty folder path`,
      );
    }
    out.set(name, isAbsolute(folder) ? folder : `${dirOf(file)}/${folder}`);
  }
  return out;
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function catalogMaxContext(name: string, dir: string): number {
  const path = `${dir}/config.json`;
  let json: unknown;
  try {
    json = JSON.parse(Deno.readTextFileSync(path));
  } catch (e) {
    throw new CatalogError(
      `model ${name}: ${path} cannot be read: ${(e as Error).message}`,
      { cause: e },
    );
  }
  try {
    return parseLlamaConfig(json).maxPositionEmbeddings;
  } catch (e) {
    throw new CatalogError(`model ${name}: ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/**
 * Every servable model: the built-ins, then the catalog file's names (a
 * catalog entry with a built-in's name replaces it). Sorted by name.
 *
 * @param opts where to look (defaults from the environment)
 * @returns the entries
 * @throws {CatalogError} for a malformed catalog file (an entry whose
 *   config.json is unreadable or unsupported is listed with its `problem`)
 */
export function listModels(opts: CatalogOptions = {}): CatalogEntry[] {
  const { biosHome, catalogFile } = catalogOptionsFromEnv(opts);
  const entries = new Map<string, CatalogEntry>();
  for (const name of DEMO_MODEL_NAMES) {
    const dir = builtInDir(biosHome, name);
    entries.set(name, {
      name,
      maxContextLength: DEMO_MAX_CONTEXT,
      builtIn: true,
      ...(existsSync(dir) ? { dir } : {}),
    });
  }
  if (catalogFile !== null) {
    for (const [name, dir] of readCatalogFile(catalogFile)) {
      // One bad entry is that model's problem, not the whole catalog's.
      try {
        entries.set(name, {
          name,
          maxContextLength: catalogMaxContext(name, dir),
          dir,
          builtIn: false,
        });
      } catch (e) {
        if (!(e instanceof CatalogError)) throw e;
        entries.set(name, {
          name,
          maxContextLength: 0,
          dir,
          builtIn: false,
          problem: e.message,
        });
      }
    }
  }
  return [...entries.values()].sort((
    a,
    b,
  ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The folder of a model, generating a built-in one on first use (atomically, so
 * parallel processes do not clash).
 *
 * @param name a model name
 * @param opts where to look (defaults from the environment)
 * @returns the folder, or undefined for an unknown name
 * @throws {CatalogError} for a malformed catalog file or a catalog entry whose folder does not exist
 */
export async function resolveModel(
  name: string,
  opts: CatalogOptions = {},
): Promise<string | undefined> {
  const { biosHome, catalogFile } = catalogOptionsFromEnv(opts);
  if (catalogFile !== null) {
    const dir = readCatalogFile(catalogFile).get(name);
    if (dir !== undefined) {
      if (!existsSync(dir)) {
        throw new CatalogError(
          `model ${name}: folder ${dir} (from catalog file ${catalogFile}) does not exist`,
        );
      }
      return dir;
    }
  }
  if (!DEMO_MODEL_NAMES.includes(name)) return undefined;
  const dir = builtInDir(biosHome, name);
  if (!existsSync(dir)) {
    const { config, tensors, tokenizer } = buildDemoModel(name);
    await writeModelFolder(dir, config, tensors, tokenizer);
  }
  return dir;
}
