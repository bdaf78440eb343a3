// The dispatcher's board: one work center's day, a row per technician on a time axis in the
// work center's local time, the routes on a map beside it, a visit's panel, kept live by polling
// the board with its ETag (an unchanged day costs a 304). Admins also get the settings.
// Every screen is a function of the URL's hash and the public API.

import { request, describe, NetworkError } from '../shared/api.js';
import * as session from '../shared/session.js';
import { h, mount, announce, errorSummary, field } from '../shared/dom.js';
import * as t from '../shared/time.js';
import { drawMap, highlight, techColour } from './map.js';
import { viewSettings } from './settings.js';

const main = document.getElementById('main');
const WO = '/seiapi/v3/trans/WorkOrder';
/** How often an open board asks whether its day changed. */
const POLL_MS = 1000;

export const STATUS = {
  1: ['New', 'new'], 6: ['En route', 'enroute'], 7: ['Onsite', 'onsite'], 8: ['Travel complete', 'enroute'],
  9: ['Pending', 'pending'], 1001: ['Rejected', 'rejected'], 4096: ['Closed complete', 'done'],
  4097: ['Closed incomplete', 'incomplete'],
};

/** The session ended (by the clock or a 401): the log-in comes first. */
class SessionEnded extends Error {}

function setOnline(v) {
  const b = document.getElementById('offline');
  b.hidden = v;
  b.textContent = v ? '' : 'The server cannot be reached. The board shows the day as it was last read.';
}

/** A call with the session's token; a 401 or an ended session becomes SessionEnded. */
export async function api(method, path, opts = {}) {
  const s = session.current();
  if (!s) throw new SessionEnded();
  let r;
  try {
    r = await request(method, path, { ...opts, token: s.token });
  } catch (e) {
    if (e instanceof NetworkError) setOnline(false);
    throw e;
  }
  setOnline(true);
  if (r.status === 401) {
    session.end();
    throw new SessionEnded();
  }
  return r;
}

export function heading(text) { return h('h1', { tabindex: '-1' }, text); }

const mins = (ms) => Math.round(ms / 60000);
function duration(m) {
  if (m === null || m === undefined) return '–';
  const hh = Math.floor(m / 60);
  return hh ? `${hh} h ${String(m % 60).padStart(2, '0')}` : `${m} min`;
}
function pct(x) { return x === null || x === undefined ? '–' : `${Math.round(x * 100)} %`; }

// ---------------------------------------------------------------------------------------------
// Log-in.

async function viewLogin(params) {
  const error = params.error;
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const username = form.querySelector('#username').value.trim();
    const password = form.querySelector('#password').value;
    const errs = [];
    if (!username) errs.push({ field: 'username', text: 'Enter your user name' });
    if (!password) errs.push({ field: 'password', text: 'Enter your password' });
    if (errs.length) return render({ error: { list: errs, username } });
    form.querySelector('button').disabled = true;
    let r;
    try {
      r = await request('POST', '/createjwt', { body: { username, password } });
    } catch (e) {
      return render({ error: { list: [{ text: describe(e) }], username } });
    }
    if (!r.ok) return render({ error: { list: [{ field: 'username', text: describe(r) }], username } });
    session.save(r.body.token);
    const to = sessionStorage.getItem('revisit.board.returnTo');
    sessionStorage.removeItem('revisit.board.returnTo');
    go(to || '#/');
  } },
  field({ id: 'username', label: 'User name', value: (error && error.username) || session.lastUser(),
    attrs: { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' } }),
  field({ id: 'password', label: 'Password', type: 'password', attrs: { autocomplete: 'current-password' } }),
  h('button', { class: 'button', type: 'submit' }, 'Log in'));
  return h('div', { class: 'narrow' },
    error ? errorSummary(error.list) : null,
    heading('Log in to the board'),
    h('p', {}, 'For dispatchers and admins.'),
    form);
}

function viewRefused() {
  return h('div', { class: 'narrow' },
    heading('The board is for dispatchers and admins'),
    h('p', { class: 'notice notice--warning', id: 'refused' },
      `You are logged in as ${session.current().user}, a ${session.current().role}. Technicians use the app at `,
      h('a', { href: '/' }, 'Revisit'), '.'),
    h('button', { class: 'button button--secondary', type: 'button', onclick: () => { session.end(); go('#/login'); } }, 'Log in as someone else'));
}

// ---------------------------------------------------------------------------------------------
// The day board.

/** What the open board shows, kept across redraws and polls. */
const state = {
  centers: null, // work centers, [{ServiceAreaID, Name, TimeZone}]
  area: null,
  date: null,
  board: null,
  etag: null,
  selTech: null,
  selVisit: null,
  timer: null,
  timing: null,
  error: null,
};

async function workCenters() {
  if (state.centers) return state.centers;
  const r = await api('GET', '/scheduling/v1/workcenters');
  if (!r.ok) throw new Error(describe(r));
  state.centers = (r.body.Items || []).map((w) => ({ id: w.ServiceAreaID, name: w.Name, zone: w.TimeZone }));
  return state.centers;
}

function boardHash(area, date) { return `#/day/${encodeURIComponent(area)}/${date}`; }

async function viewBoard(args) {
  const centers = await workCenters();
  if (!centers.length) {
    return [heading('Day board'), h('p', { class: 'notice notice--info' }, 'There is no work center yet. ',
      session.current().role === 'admin' ? h('a', { href: '#/settings' }, 'Add one in the settings.') : 'An admin adds them in the settings.')];
  }
  const remembered = localStorage.getItem('revisit.board.area');
  const area = args.area || (centers.some((c) => c.id === remembered) ? remembered : centers[0].id);
  const wc = centers.find((c) => c.id === area) || centers[0];
  const zone = wc.zone || t.deviceZone();
  const date = args.date || t.localDate(Date.now(), zone);
  if (!args.area || !args.date) { go(boardHash(wc.id, date), true); return null; }
  localStorage.setItem('revisit.board.area', wc.id);
  if (state.area !== wc.id || state.date !== date) {
    Object.assign(state, { area: wc.id, date, board: null, etag: null, selTech: null, selVisit: null, error: null });
  }
  await load();
  startPolling();
  return boardScreen(centers, wc, date);
}

/** Reads the board; with `poll`, asks only whether it changed. Returns whether it changed. */
async function load(poll = false) {
  const q = new URLSearchParams({ ServiceAreaID: state.area, Date: state.date });
  const t0 = performance.now();
  const r = await api('GET', '/scheduling/v1/board?' + q, {
    headers: poll && state.etag ? { 'If-None-Match': state.etag } : {},
  });
  if (r.status === 304) return false;
  if (!r.ok) {
    state.error = describe(r);
    return true;
  }
  state.error = null;
  state.board = r.body;
  state.etag = r.headers.get('ETag');
  state.timing = { fetched: performance.now(), started: t0 };
  return true;
}

function startPolling() {
  clearTimeout(state.timer);
  const tick = async () => {
    if (!/^#\/day\//.test(location.hash)) return;
    if (!document.hidden && session.current()) {
      try {
        if (await load(true)) redrawBoard('poll');
      } catch (e) {
        if (e instanceof SessionEnded) return sessionEnded();
        /* offline: the banner says so; try again */
      }
    }
    state.timer = setTimeout(tick, POLL_MS);
  };
  state.timer = setTimeout(tick, POLL_MS);
}

function boardScreen(centers, wc, date) {
  const b = state.board;
  const zone = (b && b.TimeZone) || wc.zone || t.deviceZone();
  const today = t.localDate(Date.now(), zone);
  const dayMs = t.zonedToUtc(date, '12:00', zone);
  const picker = h('form', { class: 'controls', 'aria-label': 'Work center and date', onsubmit: (ev) => {
    ev.preventDefault();
    const a = picker.querySelector('#wc').value;
    const d = picker.querySelector('#date').value;
    if (/^\d{4}-\d{2}-\d{2}$/.test(d)) go(boardHash(a, d));
  } },
  h('div', { class: 'field' }, h('label', { for: 'wc' }, 'Work center'),
    h('select', { id: 'wc', onchange: () => picker.requestSubmit() },
      centers.map((c) => h('option', { value: c.id, selected: c.id === wc.id ? true : null }, `${c.name || c.id} (${c.id})`)))),
  h('div', { class: 'field' }, h('label', { for: 'date' }, 'Date'),
    h('input', { id: 'date', type: 'date', value: date, onchange: () => picker.requestSubmit() })),
  h('div', { class: 'controls__days' },
    h('a', { class: 'button button--secondary', href: boardHash(wc.id, t.addDays(date, -1)) }, h('span', { 'aria-hidden': 'true' }, '‹ '), 'Previous day'),
    date === today ? null : h('a', { class: 'button button--secondary', href: boardHash(wc.id, today) }, 'Today'),
    h('a', { class: 'button button--secondary', href: boardHash(wc.id, t.addDays(date, 1)) }, 'Next day', h('span', { 'aria-hidden': 'true' }, ' ›'))),
  h('noscript', {}, h('button', { type: 'submit' }, 'Show')));
  return [
    h('div', { class: 'board-head' },
      heading(`${wc.name || wc.id}: ${t.dayHeading(dayMs, zone)}`),
      h('p', { class: 'muted small' }, `Times in ${zone}. `, h('span', { id: 'live' }, 'Live: changes appear within a second or two.'))),
    picker,
    h('div', { id: 'board-body' }, boardBody()),
  ];
}

/** Redraws the day's part of the screen (after a poll, a selection), keeping focus and scroll. */
function redrawBoard(why) {
  const host = document.getElementById('board-body');
  if (!host) return;
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  const scroller = host.querySelector('.timeline');
  const scroll = scroller ? [scroller.scrollLeft, scroller.scrollTop] : null;
  // A change may be a booking or a move of a visit whose panel is open: read its details again.
  if (why === 'poll') details.clear();
  mount(host, boardBody());
  const s2 = host.querySelector('.timeline');
  if (scroll && s2) [s2.scrollLeft, s2.scrollTop] = scroll;
  if (focused) {
    const el = host.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (el) el.focus();
  }
  if (why === 'poll') announce('The board was updated.');
}

function boardBody() {
  const b = state.board;
  if (!b) return h('p', { class: 'notice notice--warning', role: 'alert' }, state.error || 'The board could not be read.');
  const zone = b.TimeZone;
  // By name as people read it (Technician 2 before Technician 10).
  const techs = (b.Technicians || []).sort((p, q) => (p.Name || p.UserName).localeCompare(q.Name || q.UserName, 'en', { numeric: true }));
  const colours = new Map(techs.map((x, i) => [x.UserName, techColour(i)]));
  const out = h('div', { class: 'layout' },
    h('section', { class: 'layout__board', 'aria-labelledby': 'day-title' },
      h('h2', { id: 'day-title', class: 'visually-hidden' }, 'Technicians on a time axis'),
      state.error ? h('p', { class: 'notice notice--warning', role: 'alert' }, state.error) : null,
      totals(b),
      techs.length ? timeline(b, zone, colours) : h('p', { class: 'notice notice--info' }, 'No technician works in this work center.'),
      legend()),
    h('div', { class: 'layout__side' },
      h('section', { class: 'map-box', 'aria-labelledby': 'map-title' },
        h('h2', { id: 'map-title' }, 'Routes'),
        drawMap(b, colours, { tech: state.selTech, visit: state.selVisit, onSelect: select })),
      h('section', { id: 'panel', class: 'panel-box', 'aria-labelledby': 'panel-title' }, panel(b, zone))));
  if (state.timing) {
    // How long the day took to draw, from the answer to the first frame that shows it.
    const tm = state.timing;
    state.timing = null;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const done = performance.now();
      window.revisitBoardTiming = { fetchMs: tm.fetched - tm.started, renderMs: done - tm.fetched, totalMs: done - tm.started,
        technicians: techs.length, visits: techs.reduce((n, x) => n + x.Visits.length, 0) };
      document.documentElement.dataset.boardVersion = b.Version;
    }));
  }
  return out;
}

function totals(b) {
  const x = b.Totals;
  const item = (label, value) => h('div', {}, h('dt', {}, label), h('dd', {}, value));
  return h('dl', { class: 'totals', 'aria-label': 'Totals of the day', id: 'day-totals' },
    item('Technicians', x.Technicians),
    item('Visits', x.Visits),
    item('Working time', duration(x.WorkMinutes)),
    item('Travel', duration(x.TravelMinutes)),
    item('Utilisation', pct(x.Utilisation)),
    item('Follow-up visits', x.FollowupVisits),
    item('Follow-ups booked this day', x.FollowupsBooked),
    item('Refused as fully booked', x.RefusedFullyBooked ?? 0));
}

function legend() {
  const seen = new Set();
  return h('ul', { class: 'legend', 'aria-label': 'Colours' },
    Object.values(STATUS).filter(([, c]) => !seen.has(c) && seen.add(c)).map(([text, c]) =>
      h('li', {}, h('span', { class: `swatch st-${c}`, 'aria-hidden': 'true' }), text)),
    h('li', {}, h('span', { class: 'swatch swatch--window', 'aria-hidden': 'true' }), 'Promised window'),
    h('li', {}, h('span', { class: 'swatch swatch--travel', 'aria-hidden': 'true' }), 'Travel'),
    h('li', {}, h('span', { class: 'swatch swatch--off', 'aria-hidden': 'true' }), 'Off shift or break'),
    h('li', {}, h('span', { class: 'follow-mark', 'aria-hidden': 'true' }, '↻'), ' Follow-up'));
}

/** The axis: whole local hours around every shift and visit of the day. */
function axis(b, zone) {
  const dayStart = t.parse(b.Day.Start);
  const dayEnd = t.parse(b.Day.End);
  let lo = t.zonedToUtc(b.Date, '07:00', zone);
  let hi = t.zonedToUtc(b.Date, '19:00', zone);
  for (const x of b.Technicians) {
    for (const s of x.Shifts) { lo = Math.min(lo, t.parse(s.Start)); hi = Math.max(hi, t.parse(s.End)); }
    for (const v of x.Visits) {
      lo = Math.min(lo, t.parse(v.Start) - (v.TravelMinutes || 0) * 60000);
      hi = Math.max(hi, t.parse(v.End) + (x.TravelHomeMinutes || 0) * 60000);
    }
  }
  // Whole local hours, counted on the clock (a daylight-saving day has 23 or 25 of them).
  const ticks = [];
  for (let hh = 0; hh <= 24; hh++) {
    const at = hh === 24 ? dayEnd : t.zonedToUtc(b.Date, `${String(hh).padStart(2, '0')}:00`, zone);
    if (at >= dayStart && at <= dayEnd && !ticks.some((k) => k.at === at)) ticks.push({ at, label: hh === 24 ? '24:00' : t.clock(at, zone) });
  }
  const from = Math.max(dayStart, Math.max(...ticks.filter((k) => k.at <= lo).map((k) => k.at), dayStart));
  const to = Math.min(dayEnd, Math.min(...ticks.filter((k) => k.at >= hi).map((k) => k.at), dayEnd));
  return { from, to, ticks: ticks.filter((k) => k.at >= from && k.at <= to) };
}

function timeline(b, zone, colours) {
  const ax = axis(b, zone);
  const span = ax.to - ax.from;
  const x = (ms) => `${((Math.min(Math.max(ms, ax.from), ax.to) - ax.from) / span) * 100}%`;
  const w = (a, e) => `${((Math.min(e, ax.to) - Math.max(a, ax.from)) / span) * 100}%`;
  const place = (el, a, e) => { el.style.left = x(a); el.style.width = w(a, e); return el; };
  const now = Date.now();
  const nowLine = now >= ax.from && now <= ax.to
    ? () => { const l = h('div', { class: 'now', 'aria-hidden': 'true' }); l.style.left = x(now); return l; } : null;
  const head = h('div', { class: 'tl-row tl-head', 'aria-hidden': 'true' },
    h('div', { class: 'tl-name' }, 'Technician'),
    h('div', { class: 'tl-track' }, ax.ticks.filter((k, i) => k.at !== ax.from && k.at !== ax.to && (ax.ticks.length <= 15 || i % 2 === 0)).map((k) => { const e = h('span', { class: 'tick' }, k.label); e.style.left = x(k.at); return e; }),
      nowLine ? nowLine() : null));
  const rows = b.Technicians.map((tech) => {
    const selected = state.selTech === tech.UserName;
    const track = h('div', { class: 'tl-track' });
    // Off-shift time shaded: everything outside the shift blocks (the gaps are breaks).
    let cursor = ax.from;
    for (const s of tech.Shifts) {
      const a = t.parse(s.Start); const e = t.parse(s.End);
      if (a > cursor) track.append(place(h('div', { class: 'off' }), cursor, a));
      cursor = Math.max(cursor, e);
    }
    if (cursor < ax.to) track.append(place(h('div', { class: 'off' }), cursor, ax.to));
    for (const k of ax.ticks) { const g = h('div', { class: 'grid', 'data-hour': k.label }); g.style.left = x(k.at); track.append(g); }
    for (const v of tech.Visits) {
      const s = t.parse(v.Start); const e = t.parse(v.End);
      const [stText, stClass] = STATUS[v.OrderStatus] || ['Unknown status', 'pending'];
      const sel = state.selVisit === v.OrderNum;
      if (v.Window) {
        track.append(place(h('div', { class: 'win' + (sel ? ' win--sel' : ''), 'data-window': v.OrderNum }), t.parse(v.Window.Start), t.parse(v.Window.End)));
      }
      if (v.TravelMinutes) {
        const gap = place(h('div', { class: 'travel', 'data-travel': v.OrderNum, title: `${v.TravelMinutes} min travel` },
          h('span', { 'aria-hidden': 'true' }, `${v.TravelMinutes}′`)), s - v.TravelMinutes * 60000, s);
        track.append(gap);
      }
      const follow = v.OriginalOrderNum ? `, follow-up of ${v.OriginalOrderNum}` : '';
      const label = `${v.OrderNum}, ${v.Customer || 'customer not named'}, ${t.clock(s, zone)} to ${t.clock(e, zone)}, ${stText}${follow}` +
        (v.Window ? `, promised ${t.clock(t.parse(v.Window.Start), zone)} to ${t.clock(t.parse(v.Window.End), zone)}` : '') +
        (v.TravelMinutes ? `, ${v.TravelMinutes} min travel before` : '');
      const block = place(h('button', {
        type: 'button', class: `visit st-${stClass}${v.OriginalOrderNum ? ' visit--follow' : ''}${sel ? ' visit--sel' : ''}`,
        'data-key': 'v:' + v.OrderNum, 'data-order': v.OrderNum, 'data-tech': tech.UserName,
        'data-start': v.Start, 'data-end': v.End, 'aria-label': label, 'aria-pressed': sel ? 'true' : 'false',
        onclick: () => select({ tech: tech.UserName, visit: v.OrderNum }),
      }, v.OriginalOrderNum ? h('span', { class: 'follow-mark', 'aria-hidden': 'true' }, '↻') : null,
      h('span', { class: 'visit__text', 'aria-hidden': 'true' }, v.Stop ? `${v.Stop}. ` : '', v.Customer || v.OrderNum)), s, e);
      track.append(block);
    }
    if (tech.TravelHomeMinutes && tech.Visits.length) {
      const last = Math.max(...tech.Visits.map((v) => t.parse(v.End)));
      track.append(place(h('div', { class: 'travel travel--home', title: `${tech.TravelHomeMinutes} min home` },
        h('span', { 'aria-hidden': 'true' }, `${tech.TravelHomeMinutes}′`)), last, last + tech.TravelHomeMinutes * 60000));
    }
    if (nowLine) track.append(nowLine());
    const tt = tech.Totals;
    const dot = h('span', { class: 'dot', 'aria-hidden': 'true' });
    dot.style.background = colours.get(tech.UserName);
    return h('div', { class: 'tl-row' + (selected ? ' tl-row--sel' : ''), role: 'group', 'aria-label': tech.Name || tech.UserName, 'data-row': tech.UserName },
      h('div', { class: 'tl-name' },
        h('button', { type: 'button', class: 'tech', 'data-key': 't:' + tech.UserName, 'aria-pressed': selected ? 'true' : 'false',
          onclick: () => select({ tech: state.selTech === tech.UserName ? null : tech.UserName, visit: null }) }, dot, tech.Name || tech.UserName),
        h('span', { class: 'tl-totals', 'data-totals': tech.UserName },
          `${tt.Visits} visit${tt.Visits === 1 ? '' : 's'} · ${duration(tt.WorkMinutes)} work · ${tt.TravelMinutes} min travel · ${pct(tt.Utilisation)}`,
          tt.Followups ? ` · ${tt.Followups} follow-up${tt.Followups === 1 ? '' : 's'}` : '')),
      track);
  });
  return h('div', { class: 'timeline', tabindex: '0', role: 'region', 'aria-label': 'Day board. Arrow keys move between visits.', 'data-from': ax.from, 'data-to': ax.to, onkeydown: arrows }, head, rows);
}

/** Arrow keys on a visit: left and right along the technician's day, up and down to the
 * nearest visit of the row above or below. */
function arrows(e) {
  const v = e.target.closest && e.target.closest('.visit');
  if (!v || !['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].includes(e.key)) return;
  let to = null;
  if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
    const own = [...v.parentElement.querySelectorAll('.visit')];
    to = own[own.indexOf(v) + (e.key === 'ArrowRight' ? 1 : -1)];
  } else {
    const rows = [...e.currentTarget.querySelectorAll('[data-row]')];
    const x = v.getBoundingClientRect().left;
    const step = e.key === 'ArrowDown' ? 1 : -1;
    for (let i = rows.indexOf(v.closest('[data-row]')) + step; i >= 0 && i < rows.length && !to; i += step) {
      const cands = [...rows[i].querySelectorAll('.visit')];
      to = cands.sort((a, b) => Math.abs(a.getBoundingClientRect().left - x) - Math.abs(b.getBoundingClientRect().left - x))[0] || null;
    }
  }
  if (to) {
    e.preventDefault();
    to.focus();
    to.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }
}

/** Chooses a technician and a visit: the highlight moves on the board and the map in place
 * (nothing is drawn again, so a choice is instant on a board of hundreds), the panel is drawn. */
function select({ tech, visit }) {
  state.selTech = tech;
  state.selVisit = visit;
  const host = document.getElementById('board-body');
  if (!host || !state.board) return;
  const sel = (el, on, cls) => { el.classList.toggle(cls, on); if (el.hasAttribute('aria-pressed')) el.setAttribute('aria-pressed', on ? 'true' : 'false'); };
  for (const el of host.querySelectorAll('.visit--sel')) sel(el, false, 'visit--sel');
  for (const el of host.querySelectorAll('.win--sel')) el.classList.remove('win--sel');
  for (const el of host.querySelectorAll('.tl-row--sel')) el.classList.remove('tl-row--sel');
  for (const el of host.querySelectorAll('.tech[aria-pressed="true"]')) el.setAttribute('aria-pressed', 'false');
  if (tech) {
    const row = host.querySelector(`[data-row="${CSS.escape(tech)}"]`);
    if (row) {
      row.classList.add('tl-row--sel');
      row.querySelector('.tech').setAttribute('aria-pressed', 'true');
    }
  }
  if (visit) {
    const block = host.querySelector(`.visit[data-order="${CSS.escape(visit)}"]`);
    if (block) sel(block, true, 'visit--sel');
    const win = host.querySelector(`.win[data-window="${CSS.escape(visit)}"]`);
    if (win) win.classList.add('win--sel');
  }
  highlight(host.querySelector('#map'), { tech, visit });
  mount(document.getElementById('panel'), panel(state.board, state.board.TimeZone));
  if (visit) {
    const p = document.getElementById('panel');
    if (p && matchMedia('(max-width: 69.99rem)').matches) p.scrollIntoView({ block: 'nearest' });
  }
}

// ---------------------------------------------------------------------------------------------
// A visit's panel.

const details = new Map(); // order number -> Promise of {order, followups, moves, original}

function loadDetails(num, originalNum) {
  if (!details.has(num)) {
    const get = async (path) => { const r = await api('GET', path); return r.ok ? r.body : null; };
    details.set(num, Promise.all([
      get(`${WO}/${encodeURIComponent(num)}`),
      get(`${WO}/${encodeURIComponent(num)}/Followup`),
      get(`/scheduling/v1/moves?${new URLSearchParams({ OrderNum: num })}`),
      originalNum ? get(`${WO}/${encodeURIComponent(originalNum)}/Followup`) : Promise.resolve(null),
    ]).then(([order, followups, moves, booking]) => ({ order, followups, moves, booking }))
      .catch((e) => { details.delete(num); throw e; }));
  }
  return details.get(num);
}

function panel(b, zone) {
  const tech = b.Technicians.find((x) => x.UserName === state.selTech);
  const v = tech && tech.Visits.find((x) => x.OrderNum === state.selVisit);
  if (!v) {
    return [h('h2', { id: 'panel-title' }, 'Visit'), h('p', { class: 'muted' }, 'Choose a visit on the board or the map to see it here.')];
  }
  const s = t.parse(v.Start); const e = t.parse(v.End);
  const body = h('div', { class: 'panel-body' }, h('p', { class: 'muted' }, 'Loading the order…'));
  const row = (term, ...value) => h('div', {}, h('dt', {}, term), h('dd', {}, value));
  const facts = h('dl', { class: 'summary' },
    row('Technician', tech.Name || tech.UserName),
    row('Planned', `${t.clock(s, zone)} to ${t.clock(e, zone)}`),
    row('Promised', v.Window ? t.period(t.parse(v.Window.Start), t.parse(v.Window.End), zone) : 'No promised window'),
    row('Status', (STATUS[v.OrderStatus] || ['Unknown'])[0]),
    row('Customer', v.Customer || 'Not named'),
    v.Address ? row('Address', v.Address) : null,
    v.TravelMinutes !== null ? row('Travel before', `${v.TravelMinutes} min`) : null);
  loadDetails(v.OrderNum, v.OriginalOrderNum).then((d) => {
    if (!body.isConnected) return;
    mount(body, visitDetails(b, v, d, zone));
  }, (err) => {
    if (err instanceof SessionEnded) return sessionEnded();
    if (body.isConnected) mount(body, h('p', { class: 'notice notice--warning' }, describe(err)));
  });
  return [
    h('h2', { id: 'panel-title' }, `Visit ${v.OrderNum}`),
    h('p', {}, h('button', { type: 'button', class: 'linkish', onclick: () => select({ tech: state.selTech, visit: null }) }, 'Close the visit (Esc)')),
    facts,
    body,
  ];
}

function onBoard(b, num) {
  for (const x of b.Technicians) if (x.Visits.some((v) => v.OrderNum === num)) return x.UserName;
  return null;
}

function orderLink(b, num) {
  const tech = onBoard(b, num);
  return tech
    ? h('button', { type: 'button', class: 'linkish', onclick: () => select({ tech, visit: num }) }, num)
    : h('span', {}, num);
}

function visitDetails(b, v, d, zone) {
  const o = d.order || {};
  const parts = (o.RequiredParts || []).map((p) => `${p.Qty || 1} × ${p.PartNum || p.Desc || 'part'}${p.Desc && p.PartNum ? ` (${p.Desc})` : ''}`);
  const followups = ((d.followups && d.followups.Followups) || []).filter((f) => f.OrderNum);
  const history = [];
  const booking = ((d.booking && d.booking.Followups) || []).find((f) => f.OrderNum === v.OrderNum);
  if (booking) {
    history.push({ at: t.parse(booking.BookedAt), text: `Booked by ${booking.UserName} as a follow-up of ${v.OriginalOrderNum}, for ${t.period(t.parse(booking.Slot.Start), t.parse(booking.Slot.End), zone)}` });
  }
  for (const m of (d.moves && d.moves.Moves) || []) {
    const who = m.FromUserName === m.ToUserName ? `kept with ${m.ToUserName}` : `from ${m.FromUserName} to ${m.ToUserName}`;
    history.push({ at: t.parse(m.MovedAt), text: `Moved by the re-optimiser (${m.Reason}) ${who}: ${t.clock(t.parse(m.From.Start), zone)} → ${t.clock(t.parse(m.To.Start), zone)}${m.TravelSavedMinutes ? `, ${m.TravelSavedMinutes} min travel saved` : ''}` });
  }
  history.sort((a, c) => (a.at || 0) - (c.at || 0));
  return [
    h('dl', { class: 'summary' },
      o.OrderType || v.OrderType ? h('div', {}, h('dt', {}, 'Order type'), h('dd', {}, o.OrderType || v.OrderType)) : null,
      o.Description ? h('div', {}, h('dt', {}, 'Work'), h('dd', {}, o.Description)) : null,
      h('div', {}, h('dt', {}, 'Parts'), h('dd', {}, parts.length ? h('ul', { class: 'plain' }, parts.map((p) => h('li', {}, p))) : 'None needed')),
      v.OriginalOrderNum ? h('div', {}, h('dt', {}, 'Follows up'), h('dd', {}, orderLink(b, v.OriginalOrderNum))) : null,
      h('div', {}, h('dt', {}, 'Follow-ups'), h('dd', {}, followups.length
        ? h('ul', { class: 'plain' }, followups.map((f) => h('li', {}, orderLink(b, f.OrderNum), ` for ${t.period(t.parse(f.Slot.Start), t.parse(f.Slot.End), zone)}`)))
        : 'None booked'))),
    h('h3', {}, 'History'),
    history.length
      ? h('ol', { class: 'history' }, history.map((x) => h('li', {}, x.at ? h('span', { class: 'muted' }, `${t.shortDay(x.at, zone)} ${t.clock(x.at, zone)}: `) : null, x.text)))
      : h('p', { class: 'muted' }, 'No booking or move recorded.'),
  ];
}

// ---------------------------------------------------------------------------------------------
// Routing.

const ROUTES = [
  [/^#?\/?$/, viewBoard, 'Day board'],
  [/^#\/day\/([^/]+)\/(\d{4}-\d{2}-\d{2})$/, viewBoard, 'Day board', {}, ['area', 'date']],
  [/^#\/login$/, viewLogin, 'Log in', { public: true }],
  [/^#\/settings(?:\/([a-z]+))?$/, viewSettings, 'Settings', { admin: true }, ['section']],
];

export function go(hash, replace = false) {
  if (location.hash === hash) render();
  else if (replace) { history.replaceState(null, '', hash); render(); } else location.hash = hash;
}

let seq = 0;
let firstRender = true;

export async function render(params = {}) {
  const my = ++seq;
  const hash = location.hash || '#/';
  const found = ROUTES.map(([re, view, title, opts = {}, names = []]) => {
    const m = hash.match(re);
    return m && { view, title, opts, args: Object.fromEntries(names.map((n, i) => [n, m[i + 1] && decodeURIComponent(m[i + 1])])) };
  }).find(Boolean);
  if (!found) return go('#/');
  const s = session.current();
  const nav = document.getElementById('nav');
  if (!found.opts.public && !s) {
    if (hash !== '#/') sessionStorage.setItem('revisit.board.returnTo', hash);
    return go('#/login');
  }
  let content;
  if (found.opts.public) {
    nav.hidden = true;
    content = await found.view(found.args, params);
  } else if (s.role !== 'dispatcher' && s.role !== 'admin') {
    nav.hidden = true;
    content = viewRefused();
  } else if (found.opts.admin && s.role !== 'admin') {
    content = [heading('Settings are for admins'), h('p', { class: 'notice notice--warning' }, 'Ask an admin to change the settings.')];
  } else {
    nav.hidden = false;
    document.getElementById('nav-settings').hidden = s.role !== 'admin';
    for (const a of nav.querySelectorAll('a')) {
      const here = a.getAttribute('href') === '#/' ? /^#\/(day\/|$)/.test(hash) || hash === '#/' : hash.startsWith(a.getAttribute('href'));
      if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    try {
      content = await found.view(found.args, params);
    } catch (e) {
      if (e instanceof SessionEnded) return sessionEnded();
      content = [heading('Something went wrong'), h('p', { class: 'notice notice--warning' }, e instanceof NetworkError ? describe(e) : (e.message || describe(e)))];
    }
  }
  if (content === null || my !== seq) return;
  document.title = `${found.title} · Revisit`;
  if (found.view !== viewBoard) clearTimeout(state.timer);
  mount(main, content);
  const focusTarget = main.querySelector('.error-summary') || (firstRender || params.quiet ? null : main.querySelector('h1'));
  if (focusTarget) focusTarget.focus();
  if (firstRender) {
    firstRender = false;
    document.documentElement.dataset.ready = 'true';
  }
}

export function sessionEnded() {
  clearTimeout(state.timer);
  session.end();
  const hash = location.hash || '#/';
  if (hash !== '#/login') sessionStorage.setItem('revisit.board.returnTo', hash);
  go('#/login');
}

session.onEnd(() => { if (location.hash !== '#/login') sessionEnded(); });
window.addEventListener('hashchange', () => render());
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.selVisit && /^#\/day\//.test(location.hash)) select({ tech: state.selTech, visit: null });
});
document.addEventListener('visibilitychange', () => {
  // Back on the tab: ask at once rather than at the next tick.
  if (!document.hidden && /^#\/day\//.test(location.hash)) startPolling();
});
document.getElementById('logout').addEventListener('click', () => {
  clearTimeout(state.timer);
  session.end();
  sessionStorage.removeItem('revisit.board.returnTo');
  go('#/login');
});
// The now line moves with the clock.
setInterval(() => { if (/^#\/day\//.test(location.hash) && state.board && !document.hidden) redrawBoard(); }, 60000);

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch(() => { /* the board works without it */ });
}
render();
