import assert from "node:assert/strict";
import type { SampleProgress } from "../protocol/sample_progress.ts";
import { SampleStream } from "./sample_stream.ts";

function collect(): { got: SampleProgress[]; stream: SampleStream } {
  const got: SampleProgress[] = [];
  return { got, stream: new SampleStream((p) => got.push(p)) };
}

const seq = (from: number, tokens: number[]) => ({
  from,
  tokens,
  logprobs: tokens.map((t) => -t),
});

Deno.test("SampleStream passes each token once: a repeat (a request started over elsewhere) is cut to what is new", () => {
  const { got, stream } = collect();
  stream.take({ sequences: [seq(0, [1, 2]), seq(0, [7])] });
  stream.take({ sequences: [seq(0, [1, 2, 3]), seq(0, [7])] }); // started over
  assert.deepEqual(got, [
    { sequences: [seq(0, [1, 2]), seq(0, [7])] },
    { sequences: [seq(2, [3]), seq(1, [])] },
  ]);
});

Deno.test("SampleStream: a sequence that missed a message waits for the reply; the others go on", () => {
  const { got, stream } = collect();
  stream.take({ sequences: [seq(0, [1]), seq(0, [7])] });
  stream.take({ sequences: [seq(2, [3]), seq(1, [8])] }); // [2] of the first was lost
  stream.take({ sequences: [seq(3, [4]), seq(2, [9])] });
  stream.finish({
    sequences: [
      {
        tokens: [1, 2, 3, 4, 5],
        logprobs: [-1, -2, -3, -4, -5],
        stopReason: "length",
      },
      { tokens: [7, 8, 9], logprobs: [-7, -8, -9], stopReason: "stop" },
    ],
  });
  assert.deepEqual(got, [
    { sequences: [seq(0, [1]), seq(0, [7])] },
    { sequences: [seq(1, []), seq(1, [8])] },
    { sequences: [seq(1, []), seq(2, [9])] },
    { sequences: [seq(1, [2, 3, 4, 5]), seq(3, [])] },
  ]);
  // Nothing after the reply.
  stream.take({ sequences: [seq(5, [6]), seq(3, [1])] });
  assert.equal(got.length, 4);
});

Deno.test("SampleStream: the callback's error comes out of finish, and the callback is called no more", () => {
  let calls = 0;
  const stream = new SampleStream(() => {
    calls++;
    throw new Error("boom");
  });
  stream.take({ sequences: [seq(0, [1])] });
  stream.take({ sequences: [seq(1, [2])] });
  assert.throws(
    () =>
      stream.finish({
        sequences: [{
          tokens: [1, 2, 3],
          logprobs: [-1, -2, -3],
          stopReason: "length",
        }],
      }),
    /boom/,
  );
  assert.equal(calls, 1);
});
