/**
 * Bios's home folder: `BIOS_HOME`, else `~/.cache/bios`. Checkpoints of an
 * embedded node or a node process default to `<home>/runs`.
 *
 * @module
 */

/** Bios's home folder: `BIOS_HOME`, else `~/.cache/bios`. */
export function biosHome(): string {
  const env = Deno.env.get("BIOS_HOME");
  if (env) return env;
  const home = Deno.env.get("HOME") ?? ".";
  return `${home}/.cache/bios`;
}
