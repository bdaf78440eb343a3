// Times in a named time zone (the customer's work center), with the browser's own Intl: the
// server sends UTC instants; people read local dates and times.

const formats = new Map();
function fmt(zone, opts) {
  const k = zone + JSON.stringify(opts);
  let f = formats.get(k);
  if (!f) { f = new Intl.DateTimeFormat('en-GB', { timeZone: zone, ...opts }); formats.set(k, f); }
  return f;
}

/** The browser's own zone: the fallback when a work center's zone is unknown. */
export function deviceZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function parts(ms, zone) {
  const o = {};
  for (const p of fmt(zone, { hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(ms))) {
    o[p.type] = p.value;
  }
  return { y: +o.year, m: +o.month, d: +o.day, hh: +o.hour % 24, mm: +o.minute, ss: +o.second };
}

/** How far `zone` is ahead of UTC at the instant `ms`, in milliseconds. */
export function offsetMs(ms, zone) {
  const p = parts(ms, zone);
  return Date.UTC(p.y, p.m - 1, p.d, p.hh, p.mm, p.ss) - Math.floor(ms / 1000) * 1000;
}

/** The instant of local date `date` ('YYYY-MM-DD') and time `hhmm` ('HH:MM') in `zone`. */
export function zonedToUtc(date, hhmm, zone) {
  const [y, m, d] = date.split('-').map(Number);
  const [hh, mm] = (hhmm || '00:00').split(':').map(Number);
  const guess = Date.UTC(y, m - 1, d, hh, mm);
  let t = guess - offsetMs(guess, zone);
  const again = guess - offsetMs(t, zone);
  if (again !== t) t = again; // across a daylight-saving change, the second guess is right
  return t;
}

/** 'YYYY-MM-DD' of the instant in `zone`. */
export function localDate(ms, zone) {
  const p = parts(ms, zone);
  return `${p.y}-${String(p.m).padStart(2, '0')}-${String(p.d).padStart(2, '0')}`;
}

/** The local date `days` after 'YYYY-MM-DD'. */
export function addDays(date, days) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** '14:05' */
export function clock(ms, zone) {
  return fmt(zone, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(ms));
}

/** 'Wednesday 2 December' */
export function dayHeading(ms, zone) {
  return fmt(zone, { weekday: 'long', day: 'numeric', month: 'long' }).format(new Date(ms));
}

/** 'Wed 2 Dec' */
export function shortDay(ms, zone) {
  return fmt(zone, { weekday: 'short', day: 'numeric', month: 'short' }).format(new Date(ms));
}

/** 'Wed 2 Dec, 08:00-12:00' for a period, as the server labels its windows. */
export function period(startMs, endMs, zone) {
  const sameDay = localDate(startMs, zone) === localDate(endMs, zone);
  return `${shortDay(startMs, zone)}, ${clock(startMs, zone)}-${sameDay ? '' : shortDay(endMs, zone) + ' '}${clock(endMs, zone)}`;
}

/** The wire form of an instant: '2026-12-01T08:00:00.000Z'. */
export function wire(ms) {
  return new Date(ms).toISOString();
}

export function parse(s) {
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
}
