/**
 * Credentials and TLS for a NATS connection, in one small shape that a node's
 * command line and a client's options both map onto: user and password, a
 * token, an nkey seed file, a creds file (JWT + seed, as `nsc` writes
 * them), and TLS files.
 *
 * @module
 */
import {
  type ConnectionOptions,
  credsAuthenticator,
  nkeyAuthenticator,
} from "@nats-io/transport-node";

/** How to authenticate to a NATS server (every field optional). */
export interface NatsAuth {
  /** User name (with `pass`). */
  user?: string;
  /** Password (with `user`). */
  pass?: string;
  /** Token (the server's `authorization { token }`). */
  token?: string;
  /** Path of a file holding an nkey seed (`SU…`). */
  nkeyFile?: string;
  /** Path of a `.creds` file (a user JWT and its nkey seed). */
  credsFile?: string;
  /** TLS: a CA file to trust, and a client certificate and key when the server asks for one. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

/**
 * The connection options for `auth` (files are read now).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { natsAuthOptions } from "./nats_auth.ts";
 * assert.deepEqual(natsAuthOptions({ user: "a", pass: "b" }), { user: "a", pass: "b" });
 * ```
 */
export function natsAuthOptions(
  auth: NatsAuth = {},
): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  if (auth.user !== undefined) out.user = auth.user;
  if (auth.pass !== undefined) out.pass = auth.pass;
  if (auth.token !== undefined) out.token = auth.token;
  if (auth.credsFile !== undefined) {
    out.authenticator = credsAuthenticator(Deno.readFileSync(auth.credsFile));
  } else if (auth.nkeyFile !== undefined) {
    const seed = new TextDecoder().decode(Deno.readFileSync(auth.nkeyFile))
      .trim();
    out.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (auth.tls) out.tls = { ...auth.tls };
  return out;
}

/** The command-line flags that set a `NatsAuth`. */
export const NATS_AUTH_FLAGS: readonly string[] = [
  "--user",
  "--pass",
  "--token",
  "--nkey",
  "--creds",
  "--tls-ca",
  "--tls-cert",
  "--tls-key",
];

/**
 * Sets the field of `auth` that `flag` names; false for a flag that is not
 * one of {@link NATS_AUTH_FLAGS}.
 */
export function setAuthFlag(
  auth: NatsAuth,
  flag: string,
  value: string,
): boolean {
  switch (flag) {
    case "--user":
      auth.user = value;
      return true;
    case "--pass":
      auth.pass = value;
      return true;
    case "--token":
      auth.token = value;
      return true;
    case "--nkey":
      auth.nkeyFile = value;
      return true;
    case "--creds":
      auth.credsFile = value;
      return true;
    case "--tls-ca":
      auth.tls = { ...auth.tls, caFile: value };
      return true;
    case "--tls-cert":
      auth.tls = { ...auth.tls, certFile: value };
      return true;
    case "--tls-key":
      auth.tls = { ...auth.tls, keyFile: value };
      return true;
    default:
      return false;
  }
}
