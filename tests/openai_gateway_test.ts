/**
 * The gateway's OpenAI-compatible routes driven by the `openai` npm package
 * against `deno task serve` as a real process: completions and chat
 * completions, whole and streamed, on a base model and on a sampler
 * checkpoint saved through the Tinker wire; seeded results equal
 * `SamplingClient.sample` with the same settings (in this process, on the
 * same models and the gateway's checkpoint folder); errors arrive as the
 * package's typed errors with OpenAI's `param` and `code`.
 *
 * The chat model is the tiny model's shape with the ChatML fixture's
 * tokenizer (tests/fixtures/chat/chatml: `<|im_end|>` is id 1, a special
 * token; `config.json`'s EOS is id 2), so a reply stops at the template's
 * end of turn because the route asks for it, not because it is EOS.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import * as bios from "../mod.ts";
import { loadBaseModel } from "../actors/base_models.ts";
import { llamaTensorShapes, parseLlamaConfig } from "../model/config.ts";
import { writeModelFolder } from "../model/model_folder.ts";
import { Prng } from "../model/prng.ts";
import { ByteTokenizer } from "../model/byte_tokenizer.ts";
import { tokenizerFromFiles } from "../model/tokenizer.ts";
import type { SampleResponse } from "../protocol/types/responses.ts";
import type { Tokenizer } from "../protocol/types/tokenizer.ts";
import { ensureTinyModels, TINY } from "./_helpers.ts";
import { startGateway } from "./_gateway_process.ts";

const KEY_A = "tml-openai-a-0123456789";
const KEY_B = "tml-openai-b-0123456789";
const CHAT = "test/chat";
const IM_END = 1;
const CHATML = new URL("./fixtures/chat/chatml/", import.meta.url).pathname;

/** A catalog of the tiny model and a tiny ChatML chat model; its path. */
async function chatCatalog(root: string): Promise<string> {
  const files: Record<string, string> = {};
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    files[f] = await Deno.readTextFile(CHATML + f);
  }
  const config = parseLlamaConfig({
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 300,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": false,
    "eos_token_id": 2,
  });
  const rng = Prng.fromString("bios-test-model:openai-chat");
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of llamaTensorShapes(config)) {
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    if (shape.length === 1) data.fill(1);
    else rng.fillNormal(data, 0, 0.1);
    if (name === "lm_head.weight") {
      // <|im_end|>'s logit large where it is positive: replies end early.
      for (let j = 0; j < 32; j++) data[IM_END * 32 + j] *= 40;
    }
    tensors.set(name, { shape, data });
  }
  await writeModelFolder(
    `${root}/chat`,
    config,
    tensors,
    tokenizerFromFiles(files),
  );
  const tinyDir = (await ensureTinyModels()).replace(/catalog\.json$/, "tiny");
  const catalog = `${root}/catalog.json`;
  await Deno.writeTextFile(
    catalog,
    JSON.stringify({ models: { [TINY]: tinyDir, [CHAT]: `${root}/chat` } }),
  );
  return catalog;
}

/** What a choice's text must be: the sequence less its stop token, decoded. */
function expectedText(
  tok: Tokenizer,
  seq: SampleResponse["sequences"][number],
): string {
  const toks = seq.stopReason === "stop" ? seq.tokens.slice(0, -1) : seq.tokens;
  return tok.decode(toks);
}

Deno.test("OpenAI-compatible routes with the openai package: completions, chat, streaming, checkpoints, errors", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "bios-openai-" });
  const catalog = await chatCatalog(root);
  const keys = `${root}/keys.txt`;
  await Deno.writeTextFile(keys, `a ${KEY_A}\nb ${KEY_B}\n`);
  const gw = await startGateway(["--keys", keys], { BIOS_MODELS: catalog });
  // The same models in this process, for SamplingClient.sample as reference.
  const prev = Deno.env.get("BIOS_MODELS");
  Deno.env.set("BIOS_MODELS", catalog);
  for (const m of [TINY, CHAT]) await loadBaseModel(m);
  if (prev === undefined) Deno.env.delete("BIOS_MODELS");
  else if (Deno.env.get("BIOS_MODELS") === catalog) {
    Deno.env.set("BIOS_MODELS", prev);
  }
  const service = new bios.ServiceClient({ checkpointDir: gw.checkpointDir });
  const client = (apiKey: string) =>
    new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const oa = client(KEY_A);
  const byte = new ByteTokenizer();
  const chatFiles: Record<string, string> = {};
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    chatFiles[f] = await Deno.readTextFile(CHATML + f);
  }
  const chatTok = tokenizerFromFiles(chatFiles);
  try {
    const tiny = await service.createSamplingClient({ baseModel: TINY });

    await t.step("GET /v1/models lists the served base models", async () => {
      const ids = [];
      for await (const m of oa.models.list()) ids.push(m.id);
      assert.ok(ids.includes(TINY) && ids.includes(CHAT), ids.join());
    });

    await t.step(
      "completions: seeded, n, logprobs and Bios's extras equal SamplingClient.sample",
      async () => {
        const prompt = "Hello, Bios";
        const body = {
          model: TINY,
          prompt,
          "max_tokens": 12,
          temperature: 0.9,
          "top_p": 0.95,
          n: 3,
          seed: 11,
          logprobs: 0,
          // Bios's extras
          "top_k": 40,
          "min_p": 0.02,
          "repetition_penalty": 1.2,
        };
        const r = await oa.completions.create(
          body as OpenAI.CompletionCreateParamsNonStreaming,
        );
        const ref = await tiny.sample({
          prompt: bios.types.ModelInput.fromInts(byte.encode(prompt)),
          samplingParams: {
            maxTokens: 12,
            temperature: 0.9,
            topP: 0.95,
            topK: 40,
            minP: 0.02,
            repetitionPenalty: 1.2,
            seed: 11,
          },
          numSamples: 3,
        });
        assert.equal(r.object, "text_completion");
        assert.equal(r.choices.length, 3);
        for (const [i, seq] of ref.sequences.entries()) {
          const c = r.choices[i];
          assert.equal(c.index, i);
          assert.equal(c.text, expectedText(byte, seq));
          assert.equal(c.finish_reason, seq.stopReason);
          const kept = seq.stopReason === "stop" ? -1 : undefined;
          assert.deepEqual(
            c.logprobs?.token_logprobs,
            seq.logprobs.slice(0, kept),
          );
          assert.equal(
            c.logprobs?.tokens?.length,
            seq.tokens.slice(0, kept).length,
          );
        }
        assert.deepEqual(r.usage, {
          "prompt_tokens": byte.encode(prompt).length,
          "completion_tokens": ref.sequences.reduce(
            (a, s) => a + s.tokens.length,
            0,
          ),
          "total_tokens": byte.encode(prompt).length +
            ref.sequences.reduce((a, s) => a + s.tokens.length, 0),
        });
        // Streamed as drawn, the choices' pieces and logprobs join to the
        // whole response's.
        const stream = await oa.completions.create(
          { ...body, stream: true } as OpenAI.CompletionCreateParamsStreaming,
        );
        const texts = ["", "", ""];
        const lps: number[][] = [[], [], []];
        const offsets: number[][] = [[], [], []];
        for await (const ch of stream) {
          for (const c of ch.choices) {
            texts[c.index] += c.text;
            lps[c.index].push(...(c.logprobs?.token_logprobs ?? []));
            offsets[c.index].push(...(c.logprobs?.text_offset ?? []));
          }
        }
        assert.deepEqual(texts, r.choices.map((c) => c.text));
        assert.deepEqual(lps, r.choices.map((c) => c.logprobs?.token_logprobs));
        assert.deepEqual(
          offsets,
          r.choices.map((c) => c.logprobs?.text_offset),
        );
      },
    );

    await t.step(
      "completions: token-id prompts, stop strings, and a stream that joins to the whole text",
      async () => {
        const ids = [72, 101, 108, 108, 111];
        const settings = { maxTokens: 24, temperature: 1, seed: 5 };
        // A stop string the seeded run reaches: an ASCII byte it draws.
        const free = (await tiny.sample({
          prompt: bios.types.ModelInput.fromInts(ids),
          samplingParams: settings,
        })).sequences[0].tokens;
        const at = free.findIndex((x, i) => i >= 2 && x < 128);
        assert.ok(at >= 0, "the run draws an ASCII byte");
        const stop = [byte.decode([free[at]]), "\u{10FFFF}"];
        const body = {
          model: TINY,
          prompt: ids,
          "max_tokens": 24,
          temperature: 1,
          seed: 5,
          stop,
        };
        const whole = await oa.completions.create(body);
        const seq = (await tiny.sample({
          prompt: bios.types.ModelInput.fromInts(ids),
          samplingParams: { ...settings, stop },
        })).sequences[0];
        assert.equal(seq.stopReason, "stop");
        const full = byte.decode(seq.tokens);
        const want = full.slice(0, full.indexOf(stop[0]));
        assert.equal(whole.choices[0].text, want);
        assert.equal(whole.choices[0].finish_reason, "stop");
        assert.ok(whole.usage!.completion_tokens <= at + 1);
        const stream = await oa.completions.create({
          ...body,
          stream: true,
          "stream_options": { "include_usage": true },
        });
        let text = "", finish: string | null = null, usage;
        let chunks = 0;
        for await (const ch of stream) {
          chunks++;
          if (ch.usage) usage = ch.usage;
          for (const c of ch.choices) {
            text += c.text;
            finish = c.finish_reason ?? finish;
          }
        }
        assert.equal(text, want);
        assert.equal(finish, seq.stopReason);
        assert.deepEqual(usage, whole.usage);
        assert.ok(chunks >= 2, `${chunks} chunks`);
      },
    );

    await t.step(
      "chat completions: the template's prompt, stopped at its end of turn, whole and streamed",
      async () => {
        const messages = [
          { role: "system" as const, content: "You are terse." },
          { role: "user" as const, content: "What is a bond?" },
        ];
        const ids = bios.chat.chatIds(chatTok, messages, {
          addGenerationPrompt: true,
        });
        const ref = await (await service.createSamplingClient({
          baseModel: CHAT,
        })).sample({
          prompt: bios.types.ModelInput.fromInts(ids),
          samplingParams: {
            maxTokens: 40,
            temperature: 1.5,
            seed: 3,
            stop: [IM_END],
          },
          numSamples: 4,
        });
        const r = await oa.chat.completions.create({
          model: CHAT,
          messages,
          "max_completion_tokens": 40,
          temperature: 1.5,
          seed: 3,
          n: 4,
          logprobs: true,
        });
        assert.equal(r.object, "chat.completion");
        for (const [i, seq] of ref.sequences.entries()) {
          const c = r.choices[i];
          assert.equal(c.message.role, "assistant");
          assert.equal(c.message.content, expectedText(chatTok, seq));
          assert.equal(c.finish_reason, seq.stopReason);
          const kept = seq.stopReason === "stop" ? -1 : undefined;
          assert.deepEqual(
            c.logprobs?.content?.map((x) => x.logprob),
            seq.logprobs.slice(0, kept),
          );
          // A reply ends at the end of turn: <|im_end|> only ever last.
          const at = seq.tokens.indexOf(IM_END);
          assert.ok(at < 0 || at === seq.tokens.length - 1);
        }
        assert.ok(
          ref.sequences.some((s) => s.tokens.at(-1) === IM_END),
          "some reply reached the end of turn",
        );
        assert.equal(r.usage?.prompt_tokens, ids.length);
        assert.equal(
          r.usage?.completion_tokens,
          ref.sequences.reduce((a, s) => a + s.tokens.length, 0),
        );
        const stream = await oa.chat.completions.create({
          model: CHAT,
          messages,
          "max_tokens": 40,
          temperature: 1.5,
          seed: 3,
          n: 4,
          logprobs: true,
          stream: true,
        });
        const texts = ["", "", "", ""];
        const lps: number[][] = [[], [], [], []];
        const finish: (string | null)[] = [null, null, null, null];
        let roles = 0;
        for await (const ch of stream) {
          assert.equal(ch.object, "chat.completion.chunk");
          for (const c of ch.choices) {
            if (c.delta.role === "assistant") roles++;
            texts[c.index] += c.delta.content ?? "";
            lps[c.index].push(
              ...(c.logprobs?.content?.map((x) => x.logprob) ?? []),
            );
            finish[c.index] = c.finish_reason ?? finish[c.index];
          }
        }
        assert.equal(roles, 4);
        assert.deepEqual(texts, r.choices.map((c) => c.message.content));
        assert.deepEqual(
          lps,
          r.choices.map((c) => c.logprobs?.content?.map((x) => x.logprob)),
        );
        assert.deepEqual(finish, r.choices.map((c) => c.finish_reason));
      },
    );

    await t.step(
      "a sampler checkpoint saved through the Tinker wire, as tinker:// and bios://; another tenant's is 404",
      async () => {
        const post = async (path: string, body: unknown) => {
          const r = await fetch(`${gw.url}/api/v1/${path}`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-api-key": KEY_A },
            body: JSON.stringify(body),
          });
          assert.equal(r.status, 200, path);
          return await r.json();
        };
        const poll = async (id: string) => {
          for (;;) {
            const r = await post("retrieve_future", { "request_id": id });
            if (r.type !== "try_again") return r;
          }
        };
        const session = (await post("create_session", {})).session_id;
        const model = (await poll(
          (await post("create_model", {
            "session_id": session,
            "model_seq_id": 0,
            "base_model": TINY,
            "lora_config": { rank: 4, seed: 1 },
          })).request_id,
        )).model_id;
        const seq = [256, 72, 105, 33, 257];
        const fb = await poll(
          (await post("forward_backward", {
            "model_id": model,
            "seq_id": 1,
            "forward_backward_input": {
              data: [{
                "model_input": {
                  chunks: [{ type: "encoded_text", tokens: seq.slice(0, -1) }],
                },
                "loss_fn_inputs": {
                  "target_tokens": {
                    data: seq.slice(1),
                    dtype: "int64",
                    shape: [4],
                  },
                  weights: { data: [1, 1, 1, 1], dtype: "float32", shape: [4] },
                },
              }],
              "loss_fn": "cross_entropy",
            },
          })).request_id,
        );
        assert.ok(fb.loss_fn_outputs, JSON.stringify(fb));
        await poll(
          (await post("optim_step", {
            "model_id": model,
            "seq_id": 2,
            "adam_params": { "learning_rate": 0.05 },
          })).request_id,
        );
        const saved = await poll(
          (await post("save_weights_for_sampler", {
            "model_id": model,
            "seq_id": 3,
            path: "oa",
          })).request_id,
        );
        const tinkerPath = saved.path as string;
        assert.match(tinkerPath, /^tinker:\/\/.+\/sampler_weights\/oa$/);
        const biosPath = tinkerPath.replace("tinker://", "bios://");
        const ref = await (await service.createSamplingClient({
          modelPath: biosPath,
        })).sample({
          prompt: bios.types.ModelInput.fromInts(seq.slice(0, 3)),
          samplingParams: { maxTokens: 10, temperature: 0.8, seed: 9 },
          numSamples: 2,
        });
        const base = await tiny.sample({
          prompt: bios.types.ModelInput.fromInts(seq.slice(0, 3)),
          samplingParams: { maxTokens: 10, temperature: 0.8, seed: 9 },
          numSamples: 2,
        });
        assert.notDeepEqual(
          ref.sequences.map((s) => s.logprobs),
          base.sequences.map((s) => s.logprobs),
          "the adapter changes the model",
        );
        for (const name of [tinkerPath, biosPath]) {
          const r = await oa.completions.create({
            model: name,
            prompt: seq.slice(0, 3),
            "max_tokens": 10,
            temperature: 0.8,
            seed: 9,
            n: 2,
            logprobs: 0,
          });
          assert.equal(r.model, name);
          for (const [i, s] of ref.sequences.entries()) {
            assert.equal(r.choices[i].text, expectedText(byte, s));
            const kept = s.stopReason === "stop" ? -1 : undefined;
            assert.deepEqual(
              r.choices[i].logprobs?.token_logprobs,
              s.logprobs.slice(0, kept),
            );
          }
        }
        const other = client(KEY_B);
        await assert.rejects(
          other.completions.create({
            model: tinkerPath,
            prompt: "Hi",
            "max_tokens": 2,
          }),
          (e) =>
            e instanceof OpenAI.NotFoundError && e.status === 404 &&
            e.code === "model_not_found" && e.param === "model",
        );
      },
    );

    await t.step("errors: typed, with status, param and code", async () => {
      // A stream the sampler refuses (prompt + max_tokens over the tiny
      // model's 128 positions) is an HTTP error, not a broken stream.
      await assert.rejects(
        oa.completions.create({
          model: TINY,
          prompt: "Hi",
          "max_tokens": 200,
          stream: true,
        }),
        (e) =>
          e instanceof OpenAI.BadRequestError && e.param === "max_tokens" &&
          /at most 128/.test(e.message),
      );
      await assert.rejects(
        oa.completions.create({ model: "no/such-model", prompt: "Hi" }),
        (e) =>
          e instanceof OpenAI.NotFoundError && e.code === "model_not_found",
      );
      await assert.rejects(
        oa.completions.create({ model: TINY, prompt: "Hi", temperature: -1 }),
        (e) =>
          e instanceof OpenAI.BadRequestError && e.param === "temperature" &&
          /temperature must be/.test(e.message),
      );
      await assert.rejects(
        oa.chat.completions.create({
          model: CHAT,
          messages: [{ role: "user", content: "Hi" }],
          "max_completion_tokens": 0,
        }),
        (e) =>
          e instanceof OpenAI.BadRequestError &&
          e.param === "max_completion_tokens",
      );
      await assert.rejects(
        oa.chat.completions.create({
          model: CHAT,
          messages: [{ role: "user", content: "Hi" }],
          "response_format": { type: "json_object" },
        }),
        (e) =>
          e instanceof OpenAI.BadRequestError &&
          e.param === "response_format" && e.code === "unsupported_parameter",
      );
      await assert.rejects(
        oa.chat.completions.create({
          model: TINY,
          messages: [{ role: "user", content: "Hi" }],
        }),
        (e) =>
          e instanceof OpenAI.BadRequestError && e.code === "no_chat_template",
      );
      await assert.rejects(
        oa.completions.create({
          model: TINY,
          prompt: "Hi",
          "bogus_field": 1,
        } as OpenAI.CompletionCreateParamsNonStreaming),
        (e) => e instanceof OpenAI.BadRequestError && e.param === "bogus_field",
      );
      await assert.rejects(
        client("tml-unknown-00000000000").completions.create({
          model: TINY,
          prompt: "Hi",
        }),
        (e) => e instanceof OpenAI.AuthenticationError && e.status === 401,
      );
      const none = await fetch(`${gw.url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: TINY, prompt: "Hi" }),
      });
      assert.equal(none.status, 401);
      const body = await none.json();
      assert.equal(body.error.code, "invalid_api_key");
      assert.match(body.error.message, /API key is required/);
    });
  } finally {
    await service.close();
    await gw.stop();
    await Deno.remove(root, { recursive: true });
  }
});
