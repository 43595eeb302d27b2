/**
 * Errors of the OpenAI-compatible routes in OpenAI's shape:
 * `{"error": {"message", "type", "param", "code"}}`, with the status the
 * `openai` package turns into its typed errors (400 `BadRequestError`, 401
 * `AuthenticationError`, 404 `NotFoundError`, 413, 429 `RateLimitError`,
 * 500 `InternalServerError`). Bios's own errors are mapped here: a refusal
 * naming a field keeps it as `param`, in OpenAI's name for it.
 *
 * @module
 */
import { InvalidArgumentError, NotFoundError } from "../../runtime/errors.ts";
import { HttpError, isUserError } from "../errors.ts";

/** A request refused in OpenAI's shape. */
export class OpenAIError extends Error {
  /**
   * A refusal.
   *
   * @param status the HTTP status
   * @param message what was wrong, naming the field when there is one
   * @param param the offending request field, or null
   * @param code OpenAI's error code (`model_not_found`, `invalid_api_key`, …), or null
   * @param type OpenAI's error type
   * @param headers extra response headers (Retry-After)
   */
  constructor(
    readonly status: 400 | 401 | 404 | 409 | 410 | 413 | 429 | 500,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: string = "invalid_request_error",
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "OpenAIError";
  }

  /** The JSON body, `{"error": {"message", "type", "param", "code"}}`. */
  body(): { error: Record<string, string | null> } {
    return {
      error: {
        message: this.message,
        type: this.type,
        param: this.param,
        code: this.code,
      },
    };
  }
}

/** Bios's request fields (as Bios's errors name them) by OpenAI's name. */
const PARAM_OF: Readonly<Record<string, string>> = {
  maxTokens: "max_tokens",
  temperature: "temperature",
  topP: "top_p",
  topK: "top_k",
  minP: "min_p",
  repetitionPenalty: "repetition_penalty",
  stop: "stop",
  seed: "seed",
  numSamples: "n",
  prompt: "prompt",
};

/**
 * The OpenAI name of a field Bios's error names (`samplingParams.topP` →
 * `top_p`), given the request's prompt field (`prompt` or `messages`).
 */
export function openaiParam(field: string, promptField = "prompt"): string {
  const bare = field.replace(/^samplingParams\./, "");
  const head = bare.split(/[.[]/)[0];
  const name = PARAM_OF[head];
  if (name === undefined) return field;
  return name === "prompt" ? promptField : name + bare.slice(head.length);
}

/**
 * A Bios error as OpenAI's: its field renamed in `param` and in the
 * message; user errors 400 (404 for what is not there), others 500.
 */
export function toOpenAIError(e: unknown, promptField = "prompt"): OpenAIError {
  if (e instanceof OpenAIError) return e;
  if (e instanceof HttpError) {
    const status = e.status;
    const param = e.field === undefined
      ? null
      : openaiParam(e.field, promptField);
    if (status === 401) {
      return new OpenAIError(401, e.message, null, "invalid_api_key");
    }
    if (status === 429) {
      return new OpenAIError(
        429,
        e.message,
        null,
        "rate_limit_exceeded",
        "requests",
        e.headers,
      );
    }
    return new OpenAIError(status, e.message, param);
  }
  if (e instanceof InvalidArgumentError) {
    const param = openaiParam(e.field, promptField);
    return new OpenAIError(400, e.message.replaceAll(e.field, param), param);
  }
  if (e instanceof NotFoundError) return new OpenAIError(404, e.message);
  if (isUserError(e)) {
    return new OpenAIError(400, e instanceof Error ? e.message : String(e));
  }
  return new OpenAIError(
    500,
    `internal error: ${e instanceof Error ? e.message : String(e)}`,
    null,
    null,
    "server_error",
  );
}
