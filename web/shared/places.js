// Work centers, for their time zone: the customer's local time is the work center's. Read
// from the scheduler's set-up API (readable by every role) and remembered on the device, so
// the app still shows local times offline.

import { request } from './api.js';
import { deviceZone } from './time.js';

const KEY = 'revisit.workcenters';

function remembered() {
  try { return JSON.parse(localStorage.getItem(KEY) || '{}'); } catch { return {}; }
}

/** The IANA zone of work center `id` (the device's zone when it is unknown or unreadable). */
export async function zoneOf(id, token) {
  if (!id) return deviceZone();
  const known = remembered();
  if (known[id]) return known[id];
  try {
    const r = await request('GET', `/scheduling/v1/workcenters/${encodeURIComponent(id)}`, { token, timeoutMs: 8000 });
    if (r.ok && r.body && typeof r.body.TimeZone === 'string') {
      known[id] = r.body.TimeZone;
      localStorage.setItem(KEY, JSON.stringify(known));
      return r.body.TimeZone;
    }
  } catch { /* offline: fall back below */ }
  return deviceZone();
}
