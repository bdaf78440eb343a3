// Bookings on their way to the server. A booking is written to localStorage before it is sent,
// with its Idempotency-Key, and keeps that key on every retry: a reload, a lost answer or a
// network that comes and goes cannot book it twice (the server replays the first answer for
// the same key). Sent again when the network is back, when the page opens, and on a timer.
//
// States: 'waiting' (no network: sent again by itself), 'sending' (sent, waiting for the
// answer), 'login' (the session ended: sent again after the log-in), 'booked', 'refused' (the
// window was taken: the server's alternatives are kept), 'failed' (the server said no, in words).

import { request, describe, newKey, NetworkError } from '../shared/api.js';
import * as session from '../shared/session.js';

const KEY = 'revisit.outbox';
const listeners = new Set();
const inFlight = new Set();
let retryTimer = null;
let backoffMs = 2000;

function all() {
  try { return JSON.parse(localStorage.getItem(KEY) || '[]'); } catch { return []; }
}

function store(list) {
  localStorage.setItem(KEY, JSON.stringify(list));
  listeners.forEach((f) => f());
}

function update(key, changes) {
  const list = all();
  const e = list.find((x) => x.key === key);
  if (!e) return null;
  Object.assign(e, changes, { updatedAt: Date.now() });
  store(list);
  return e;
}

/** Calls `fn` on every change (also from other tabs). */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
window.addEventListener('storage', (ev) => { if (ev.key === KEY) listeners.forEach((f) => f()); });

/** The bookings of `user`, newest first. */
export function entries(user) {
  return all().filter((e) => e.user === user).sort((a, b) => b.createdAt - a.createdAt);
}

export function get(key) {
  return all().find((e) => e.key === key) || null;
}

/** The booking of `original` still on its way (not booked, refused or failed), if any. */
export function pendingFor(user, original) {
  return entries(user).find((e) => e.original === original && ['waiting', 'sending', 'login'].includes(e.state)) || null;
}

/**
 * Queues the booking of `slot` (a 1001 TimeConstraints item) as the follow-up of `original`,
 * and sends it. `context` is what the confirmation shows (customer, window label, zone).
 */
export function book(user, original, slot, requiredParts, context) {
  const body = { TimeConstraints: [{ Type: '1001', ID: slot.ID, Desc: slot.Desc, Period: slot.Period }] };
  if (requiredParts && requiredParts.length) body.RequiredParts = requiredParts;
  const e = {
    key: newKey(), user, original, body, context, state: 'waiting',
    createdAt: Date.now(), updatedAt: Date.now(), attempts: 0,
  };
  const list = all();
  list.push(e);
  // Keep the device's list short: the last 50 bookings.
  store(list.slice(-50));
  send(e.key);
  return e;
}

/** Sends every booking of the signed-in user that is waiting. */
export function kick() {
  const s = session.current();
  if (!s) return;
  for (const e of entries(s.user)) {
    if (['waiting', 'sending', 'login'].includes(e.state)) send(e.key);
  }
}

async function send(key) {
  if (inFlight.has(key)) return;
  const s = session.current();
  let e = get(key);
  if (!e || !s || e.user !== s.user) {
    if (e && !s) update(key, { state: 'login' });
    return;
  }
  inFlight.add(key);
  e = update(key, { state: 'sending', attempts: (e.attempts || 0) + 1 });
  try {
    const r = await request('POST', `/seiapi/v3/trans/WorkOrder/${encodeURIComponent(e.original)}/Followup`, {
      body: e.body, token: s.token, headers: { 'Idempotency-Key': e.key }, timeoutMs: 30000,
    });
    if (r.ok && r.body && r.body.OrderNum) {
      backoffMs = 2000;
      update(key, { state: 'booked', answer: r.body, bookedAt: Date.now(), detail: null });
      window.dispatchEvent(new CustomEvent('revisit:network', { detail: { online: true } }));
    } else if (r.status === 401) {
      update(key, { state: 'login' });
      session.end();
      window.dispatchEvent(new CustomEvent('revisit:session-ended'));
    } else if (r.status === 409 && r.body && r.body.type === 'urn:revisit:error:slot-unavailable') {
      update(key, { state: 'refused', detail: describe(r), alternatives: r.body.Alternatives || [] });
    } else if (r.status === 409 && r.body && r.body.type === 'urn:revisit:error:request-in-flight') {
      update(key, { state: 'sending' });
      later(3000);
    } else if (r.status === 502 || r.status === 503 || r.status === 504) {
      // Nothing was booked; the server or the scheduler behind it will be back.
      const after = Number(r.headers.get('Retry-After')) || 0;
      update(key, { state: 'waiting', detail: describe(r) });
      later(Math.max(after * 1000, backoffMs));
    } else {
      update(key, { state: 'failed', detail: describe(r) });
    }
  } catch (err) {
    if (!(err instanceof NetworkError)) {
      update(key, { state: 'waiting', detail: describe(err) });
      later(backoffMs);
      return;
    }
    update(key, { state: 'waiting', detail: describe(err) });
    window.dispatchEvent(new CustomEvent('revisit:network', { detail: { online: false } }));
    later(backoffMs);
    backoffMs = Math.min(backoffMs * 2, 15000);
  } finally {
    inFlight.delete(key);
  }
}

function later(ms) {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(kick, ms);
}

window.addEventListener('online', () => { backoffMs = 2000; kick(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden) kick(); });

/** Words for a state, as the screens show them. */
export function stateText(e) {
  switch (e.state) {
    case 'waiting': return 'Waiting for network';
    case 'sending': return 'Sent, waiting for the answer';
    case 'login': return 'Waiting for you to log in again';
    case 'booked': return 'Booked';
    case 'refused': return 'Window no longer free';
    default: return 'Not booked';
  }
}
