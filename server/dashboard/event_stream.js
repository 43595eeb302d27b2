/**
 * Reading a `text/event-stream` response with fetch: EventSource cannot send
 * headers, and the dashboard's key goes in the X-API-Key header, never in a
 * URL (which servers and proxies log). Events are parsed as the HTML
 * standard says (`event`, `data`, `id` fields; comment lines ignored).
 *
 * @module
 */

/**
 * @typedef {object} StreamEvent
 * @property {string} event its name (`message` when the stream gave none)
 * @property {string} data its data lines, joined with newlines
 * @property {string | undefined} id its id, if it had one
 */

/**
 * Read the event stream at `url` until it ends, `signal` aborts it, or it
 * fails; calls `onOpen` once the response is a 200, then `onEvent` per event.
 *
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {AbortSignal} signal
 * @param {(e: StreamEvent) => void} onEvent
 * @param {() => void} onOpen
 * @returns {Promise<void>}
 */
export async function readEventStream(url, headers, signal, onEvent, onOpen) {
  const res = await fetch(url, {
    headers: { ...headers, Accept: "text/event-stream" },
    cache: "no-store",
    signal,
  });
  if (!res.ok || res.body === null) {
    const text = await res.text().catch(() => "");
    throw new Error(`event stream: HTTP ${res.status} ${text}`);
  }
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      /** @type {string[]} */
      const data = [];
      let event = "message";
      /** @type {string | undefined} */
      let id;
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? "" : line.slice(colon + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (field === "data") data.push(v);
        else if (field === "event") event = v;
        else if (field === "id") id = v;
      }
      if (data.length > 0) onEvent({ event, data: data.join("\n"), id });
    }
  }
}
