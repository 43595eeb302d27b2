/**
 * The gateway's command line:
 *
 * ```sh
 * deno task serve [--port P] [--host H] [--nats nats://…] [--keys FILE] [--insecure-no-auth]
 *   [--checkpoint-dir DIR] [--max-body-bytes N] [--rate-limit N] [--rate-burst N]
 *   [--session-idle-s N] [--poll-hold-s N] [--metrics-key KEY] [NATS credentials: --user U --pass P | --token T | --nkey F | --creds F, --tls-*]
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseServeArgs } from "./args.ts";
 * const a = parseServeArgs(["--port", "0", "--insecure-no-auth"]);
 * assert.equal(a.port, 0);
 * assert.equal(a.insecureNoAuth, true);
 * ```
 *
 * @module
 */
import {
  NATS_AUTH_FLAGS,
  type NatsAuth,
  setAuthFlag,
} from "../runtime/nats_auth.ts";

/** The gateway's settings. */
export interface ServeArgs {
  /** Port to listen on (0: any free one, printed in the ready line). @default {8080} */
  port: number;
  /** Address to listen on. @default {"127.0.0.1"} */
  host: string;
  /** A NATS cluster to join instead of starting an embedded node. */
  nats?: string;
  /** NATS credentials and TLS. */
  natsAuth: NatsAuth;
  /** Keys file. */
  keys?: string;
  /** Serve without keys (every caller one tenant). */
  insecureNoAuth: boolean;
  /** Checkpoint folder of the embedded node. */
  checkpointDir?: string;
  /** Largest request body. */
  maxBodyBytes?: number;
  /** Requests per second per tenant (0: no limit). @default {100} */
  rateLimit: number;
  /** Requests a tenant may make at once. @default {4 × rateLimit, at least 50} */
  rateBurst?: number;
  /** Seconds a session lives without a heartbeat. */
  sessionIdleS?: number;
  /** Seconds `retrieve_future` holds a request before "try again". */
  pollHoldS?: number;
  /** The key `/metrics` takes from any caller; without it, loopback callers only. */
  metricsKey?: string;
}

const USAGE =
  "usage: deno task serve [--port P] [--host H] [--nats nats://…] [--keys FILE] [--insecure-no-auth] [--checkpoint-dir DIR] [--max-body-bytes N] [--rate-limit N] [--rate-burst N] [--session-idle-s N] [--poll-hold-s N] [--metrics-key KEY]";

function int(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new Error(`${flag} must be an integer ≥ ${min}: got ${value}`);
  }
  return n;
}

/**
 * The settings in `args`.
 *
 * @throws {Error} naming the flag that is unknown, missing its value or bad
 */
export function parseServeArgs(args: readonly string[]): ServeArgs {
  const out: ServeArgs = {
    port: 8080,
    host: "127.0.0.1",
    natsAuth: {},
    insecureNoAuth: false,
    rateLimit: 100,
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    if (flag === "--insecure-no-auth") {
      out.insecureNoAuth = true;
      continue;
    }
    if (flag === "--help" || flag === "-h") throw new Error(USAGE);
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (setAuthFlag(out.natsAuth, flag, value)) continue;
    switch (flag) {
      case "--port":
        out.port = int(flag, value, 0);
        if (out.port > 65535) {
          throw new Error(`--port must be ≤ 65535: got ${value}`);
        }
        break;
      case "--host":
        out.host = value;
        break;
      case "--nats":
        if (!/^(nats|tls):\/\/\S+$/.test(value)) {
          throw new Error(
            `--nats must be a nats://host:port URL: got ${value}`,
          );
        }
        out.nats = value;
        break;
      case "--keys":
        out.keys = value;
        break;
      case "--checkpoint-dir":
        out.checkpointDir = value;
        break;
      case "--max-body-bytes":
        out.maxBodyBytes = int(flag, value, 1024);
        break;
      case "--rate-limit":
        out.rateLimit = int(flag, value, 0);
        break;
      case "--rate-burst":
        out.rateBurst = int(flag, value, 1);
        break;
      case "--session-idle-s":
        out.sessionIdleS = int(flag, value, 1);
        break;
      case "--metrics-key":
        if (value.length < 16) {
          throw new Error("--metrics-key must be at least 16 characters");
        }
        out.metricsKey = value;
        break;
      case "--poll-hold-s":
        out.pollHoldS = int(flag, value, 1);
        if (out.pollHoldS > 40) {
          throw new Error(
            `--poll-hold-s must be ≤ 40 (the SDK gives up on a poll after 45 s): got ${value}`,
          );
        }
        break;
      default:
        throw new Error(
          `unknown flag ${flag}: ${USAGE} [${
            NATS_AUTH_FLAGS.join(" | ")
          } VALUE]`,
        );
    }
  }
  if (out.nats === undefined && Object.keys(out.natsAuth).length > 0) {
    throw new Error("NATS credentials need --nats");
  }
  if (out.nats !== undefined && out.checkpointDir !== undefined) {
    throw new Error(
      "--checkpoint-dir is the embedded node's: on a cluster, each node keeps its own (deno task node --checkpoint-dir)",
    );
  }
  return out;
}
