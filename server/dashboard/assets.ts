/**
 * The dashboard's files (this folder's `index.html`, its scripts and style),
 * served as they are: no build step, no framework, nothing fetched from
 * elsewhere. Each is read once, beside this module (`fetch` of its URL, so
 * it works from a file tree and from a package alike), then kept.
 *
 * Every answer carries a strict Content-Security-Policy: scripts, styles
 * and fetches from this origin only, no inline script, no framing.
 *
 * @module
 */

/** The dashboard's files by name, with their content types. */
export const DASHBOARD_FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "dashboard.js": "text/javascript; charset=utf-8",
  "chart.js": "text/javascript; charset=utf-8",
  "event_stream.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
  "favicon.svg": "image/svg+xml",
};

/** The headers of every dashboard file. */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

const cache = new Map<string, Promise<string>>();

/**
 * The text of dashboard file `name` (one of {@linkcode DASHBOARD_FILES}).
 *
 * @throws {Error} for another name, or when the file cannot be read
 */
export function dashboardFile(name: string): Promise<string> {
  if (!Object.hasOwn(DASHBOARD_FILES, name)) {
    throw new Error(`no dashboard file ${JSON.stringify(name)}`);
  }
  let text = cache.get(name);
  if (!text) {
    text = fetch(new URL(`./${name}`, import.meta.url)).then(async (res) => {
      if (!res.ok) throw new Error(`dashboard file ${name}: ${res.status}`);
      return await res.text();
    });
    text.catch(() => cache.delete(name));
    cache.set(name, text);
  }
  return text;
}
