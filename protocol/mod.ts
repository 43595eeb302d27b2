/**
 * The Bios protocol: request and reply schemas shared by the client, the
 * actors, the NATS wire and the HTTP gateway, with the TypeScript types
 * inferred from them and {@link parseOrThrow} to apply them.
 *
 * @module
 */

export * from "./parse.ts";
export * from "./messages.ts";
export * from "./types/checks.ts";
export * from "./types/model_input.ts";
export * from "./types/tensor_data.ts";
export * from "./types/loss_fn.ts";
export * from "./types/datum.ts";
export * from "./types/adam_params.ts";
export * from "./types/sampling_params.ts";
export * from "./types/lora_config.ts";
export * from "./types/responses.ts";
export * from "./types/checkpoint_path.ts";
