// The signed-in user's token. Kept in sessionStorage (this tab, survives a reload, gone when
// the tab closes), sent only in a header, never put in a URL or printed.
//
// A token's lifetime is taken from its own `exp - iat` and counted on this device's clock from
// the moment it arrived, so a phone whose clock is wrong still knows when its token ends.

const KEY = 'revisit.session';

function decode(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { return null; }
}

/** Stores a token just received from `/createjwt`. */
export function save(token) {
  const c = decode(token) || {};
  const lifetimeMs = c.exp && c.iat ? Math.max(0, (c.exp - c.iat) * 1000) : 8 * 3600 * 1000;
  const s = { token, user: c.sub || '', role: c.role || '', entity: c.ent || '', endsAt: Date.now() + lifetimeMs };
  sessionStorage.setItem(KEY, JSON.stringify(s));
  schedule();
  return s;
}

/** The current session if its token has not ended, else null. */
export function current() {
  const s = load();
  return s && s.token && Date.now() < s.endsAt ? s : null;
}

/** The user of the last session, ended or not (whose work a new log-in may carry on). */
export function lastUser() {
  const s = load();
  return s ? s.user : '';
}

/** Forgets the token; the user name stays so the log-in can offer it. */
export function end() {
  const s = load();
  sessionStorage.setItem(KEY, JSON.stringify({ user: s ? s.user : '', endsAt: 0 }));
  schedule();
}

let timer = null;
const listeners = [];

/** Calls `fn` when the token ends by the clock (the server's 401 is handled by the caller). */
export function onEnd(fn) { listeners.push(fn); schedule(); }

function schedule() {
  clearTimeout(timer);
  const s = current();
  if (!s) return;
  // setTimeout cannot wait longer than about 24 days; tokens are far shorter.
  timer = setTimeout(() => { if (!current()) listeners.forEach((f) => f()); else schedule(); },
    Math.min(s.endsAt - Date.now() + 50, 2 ** 31 - 1));
}
