// The one way the apps talk to the server: the public seiapi API, as any client calls it.
// Every answer that is not a success carries the platform's error object; `describe` turns
// it, or a failure to reach the server at all, into words for a person.

/** The server could not be reached, or did not answer in time: nothing is known to have happened. */
export class NetworkError extends Error {
  constructor(message, { timeout = false } = {}) {
    super(message);
    this.name = 'NetworkError';
    this.timeout = timeout;
  }
}

/**
 * Sends one request. Resolves with `{status, ok, body, headers}` for any HTTP answer (the body
 * parsed as JSON when it is JSON); rejects with NetworkError when there is no answer.
 * The token travels only in the `x-access-token` header, never in the URL.
 */
export async function request(method, path, { body, token, headers = {}, timeoutMs = 15000 } = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  const h = { Accept: 'application/json', ...headers };
  if (token) h['x-access-token'] = token;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal, cache: 'no-store', credentials: 'omit', redirect: 'error',
    });
  } catch (e) {
    throw new NetworkError(e && e.name === 'AbortError'
      ? 'The server did not answer in time.'
      : 'The server cannot be reached.', { timeout: e && e.name === 'AbortError' });
  } finally {
    clearTimeout(timer);
  }
  let parsed = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = text; }
  }
  return { status: res.status, ok: res.ok, body: parsed, headers: res.headers };
}

/** What went wrong, in words: the error object's `detail`, else a sentence for the kind of failure. */
export function describe(resOrError) {
  if (resOrError instanceof NetworkError) {
    return resOrError.timeout
      ? 'The server did not answer in time. Check the network and try again.'
      : 'You are offline or the server cannot be reached. Check the network and try again.';
  }
  const b = resOrError && resOrError.body;
  if (b && typeof b === 'object' && typeof b.detail === 'string' && b.detail.trim()) {
    return sentence(b.detail);
  }
  const s = resOrError && resOrError.status;
  if (s === 401) return 'You need to log in again.';
  if (s === 403) return 'You are not allowed to do this.';
  if (s === 404) return 'This could not be found.';
  if (s >= 500) return 'The server had a problem. Try again in a moment.';
  return 'Something went wrong. Try again.';
}

function sentence(s) {
  const t = s.trim();
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : first + '.';
}

/** A random key for `Idempotency-Key`. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
