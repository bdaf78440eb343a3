// The technician's app: today's orders, an order, closing it incomplete, finding a slot for the
// follow-up with the customer, booking it (through the outbox, which survives a lost network),
// and the follow-ups booked. Every screen is a function of the URL's hash and the public API.

import { request, describe, NetworkError } from '../shared/api.js';
import * as session from '../shared/session.js';
import { h, mount, announce, errorSummary, field } from '../shared/dom.js';
import * as t from '../shared/time.js';
import { zoneOf } from '../shared/places.js';
import * as outbox from './outbox.js';

const main = document.getElementById('main');
const WO = '/seiapi/v3/trans/WorkOrder';
const STATUS = {
  1: ['New', 'tag'], 6: ['En route', 'tag tag--purple'], 7: ['Onsite', 'tag tag--yellow'],
  8: ['Travel complete', 'tag tag--purple'], 9: ['Pending', 'tag tag--grey'], 1001: ['Rejected', 'tag tag--red'],
  4096: ['Closed complete', 'tag tag--green'], 4097: ['Closed incomplete', 'tag tag--red'],
};
const CLOSED = [4096, 4097, 1001];

/** The session ended (by the clock or a 401): the screen is kept, the log-in comes first. */
class SessionEnded extends Error {}

// ---------------------------------------------------------------------------------------------
// Talking to the server.

let online = navigator.onLine;
function setOnline(v) {
  online = v;
  const b = document.getElementById('offline');
  b.hidden = v;
  b.textContent = v ? '' : 'You are offline. Bookings are kept on this phone and sent when the network is back.';
}
window.addEventListener('offline', () => setOnline(false));
window.addEventListener('online', () => setOnline(true));
window.addEventListener('revisit:network', (e) => setOnline(e.detail.online));

/** A call with the session's token; a 401 or an ended session becomes SessionEnded. */
async function api(method, path, opts = {}) {
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

function orderPath(num) { return `${WO}/${encodeURIComponent(num)}`; }

/** What this device remembers for the user, to show when offline. */
const cache = {
  key(name) { return `revisit.cache.${session.lastUser()}.${name}`; },
  get(name) { try { return JSON.parse(localStorage.getItem(this.key(name)) || 'null'); } catch { return null; } },
  set(name, value) { try { localStorage.setItem(this.key(name), JSON.stringify({ at: Date.now(), value })); } catch { /* full: not needed */ } },
};

/** Work in progress on an order (the close reason, the customer's availability, the parts,
 * the chosen window), kept on the device until the follow-up is booked. */
const drafts = {
  key(num) { return `revisit.draft.${session.lastUser()}.${num}`; },
  get(num) { try { return JSON.parse(localStorage.getItem(this.key(num)) || 'null') || {}; } catch { return {}; } },
  set(num, d) { localStorage.setItem(this.key(num), JSON.stringify(d)); },
  drop(num) { localStorage.removeItem(this.key(num)); },
};

async function categories() {
  const ent = (session.current() || {}).entity || '';
  const mem = cache.get('categories.' + ent);
  if (mem && Date.now() - mem.at < 3600e3) return mem.value;
  try {
    const [a, b] = await Promise.all([15, 16].map((c) => api('GET', `/seiapi/v3/trans/SystemCategory/Default/${c}`)));
    if (a.ok && b.ok) {
      const v = { followup: a.body.Items || [], none: b.body.Items || [] };
      cache.set('categories.' + ent, v);
      return v;
    }
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
  }
  return mem ? mem.value : { followup: [], none: [] };
}

function reasonKind(cats, code) {
  if (cats.followup.some((i) => i.Code === code)) return 'followup';
  if (cats.none.some((i) => i.Code === code)) return 'none';
  return null;
}

function reasonText(cats, code) {
  const i = [...cats.followup, ...cats.none].find((x) => x.Code === code);
  return i ? i.Desc : code;
}

// ---------------------------------------------------------------------------------------------
// What an order looks like on a screen.

function windowOf(o) {
  return (o.TimeConstraints || []).find((tc) => String(tc.Type) === '1001') || null;
}

function label(tc, zone) {
  if (!tc) return '';
  if (tc.Desc) return tc.Desc;
  const s = t.parse(tc.Period && tc.Period.Start);
  const e = t.parse(tc.Period && tc.Period.End);
  return s && e ? t.period(s, e, zone) : '';
}

function customer(o) {
  return (o.Account && o.Account.Name) || (o.Location && o.Location.Name) || 'Customer not named';
}

function address(o) {
  const a = (o.Location && o.Location.Address) || {};
  return [a.AddrLine1, a.AddrLine2, a.City].filter(Boolean).join(', ');
}

function areaOf(o) { return (o.Location && o.Location.ServiceAreaID) || ''; }

function statusTag(code) {
  const [text, cls] = STATUS[code] || ['Unknown status', 'tag tag--grey'];
  return h('span', { class: cls }, text);
}

function row(term, ...value) {
  const v = value.filter((x) => x !== '' && x !== null && x !== undefined);
  if (!v.length) return null;
  return h('div', {}, h('dt', {}, term), h('dd', {}, v));
}

function back(href, text) { return h('a', { class: 'back', href }, '‹ ', text); }

function heading(text) { return h('h1', { tabindex: '-1' }, text); }

// ---------------------------------------------------------------------------------------------
// Screens.

async function viewLogin(params) {
  const ended = sessionStorage.getItem('revisit.returnTo');
  const waiting = outbox.entries(session.lastUser()).filter((e) => e.state === 'login' || e.state === 'waiting').length;
  const error = params.error;
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const username = form.querySelector('#username').value.trim();
    const password = form.querySelector('#password').value;
    const errs = [];
    if (!username) errs.push({ field: 'username', text: 'Enter your user name' });
    if (!password) errs.push({ field: 'password', text: 'Enter your password' });
    if (errs.length) return render({ error: { list: errs, username } });
    const btn = form.querySelector('button');
    btn.disabled = true;
    let r;
    try {
      r = await request('POST', '/createjwt', { body: { username, password } });
    } catch (e) {
      return render({ error: { list: [{ text: describe(e) + ' Logging in needs the network.' }], username } });
    }
    if (!r.ok) {
      return render({ error: { list: [{ field: 'username', text: describe(r) }], username } });
    }
    const previous = session.lastUser();
    const s = session.save(r.body.token);
    const to = sessionStorage.getItem('revisit.returnTo');
    sessionStorage.removeItem('revisit.returnTo');
    outbox.kick();
    go(to && previous === s.user ? to : '#/');
  } },
  field({ id: 'username', label: 'User name', value: (error && error.username) || session.lastUser(),
    attrs: { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' } }),
  field({ id: 'password', label: 'Password', type: 'password', attrs: { autocomplete: 'current-password' } }),
  h('button', { class: 'button', type: 'submit' }, 'Log in'));
  document.getElementById('nav').hidden = true;
  return [
    error ? errorSummary(error.list) : null,
    heading('Log in'),
    ended ? h('div', { class: 'notice notice--info', role: 'status' },
      h('p', {}, 'Your session has ended. Log in again to carry on: your work is kept.')) : null,
    waiting ? h('p', { class: 'notice notice--info' },
      `${waiting === 1 ? 'A booking is' : `${waiting} bookings are`} kept on this phone and will be sent after you log in.`) : null,
    online ? null : h('p', { class: 'notice notice--warning' }, 'You are offline. Logging in needs the network.'),
    form,
  ];
}

async function viewToday() {
  const now = Date.now();
  const q = new URLSearchParams({ From: t.wire(now - 36 * 3600e3), To: t.wire(now + 36 * 3600e3), Limit: '500' });
  let orders;
  let asOf = null;
  try {
    const r = await api('GET', '/seiapi/v3/trans/WorkOrders?' + q);
    if (!r.ok) return failure('Today', r);
    orders = r.body.WorkOrders || [];
    cache.set('today', orders);
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
    const c = cache.get('today');
    if (!c) return [heading('Today'), h('p', { class: 'notice notice--warning' }, describe(e))];
    orders = c.value;
    asOf = c.at;
  }
  const s = session.current();
  const zones = await zonesOf(orders);
  const today = orders.filter((o) => {
    const st = t.parse(o.PlannedStartDate);
    const z = zones[areaOf(o)];
    return st && o.UserName === s.user && t.localDate(st, z) === t.localDate(now, z);
  }).sort((a, b) => t.parse(a.PlannedStartDate) - t.parse(b.PlannedStartDate));
  const zone = today.length ? zones[areaOf(today[0])] : t.deviceZone();
  return [
    heading('Today'),
    h('p', { class: 'muted' }, t.dayHeading(now, zone)),
    asOf ? h('p', { class: 'notice notice--warning' }, `Offline: your orders as of ${t.clock(asOf, t.deviceZone())}.`) : null,
    pendingStrip(),
    today.length
      ? h('ul', { class: 'cards', 'aria-label': 'Your orders today' }, today.map((o) => {
        const z = zones[areaOf(o)];
        return h('li', {}, h('a', { class: 'card', href: `#/order/${encodeURIComponent(o.OrderNum)}` },
          h('span', { class: 'card__top' }, h('span', { class: 'card__time' }, t.clock(t.parse(o.PlannedStartDate), z)), statusTag(o.OrderStatus)),
          h('span', { class: 'card__title' }, customer(o)),
          h('span', { class: 'card__line' }, address(o)),
          windowOf(o) ? h('span', { class: 'card__line muted' }, 'Promised ', label(windowOf(o), z)) : null,
          h('span', { class: 'card__line muted small' }, o.OrderNum)));
      }))
      : h('p', {}, 'No visits are planned for you today.'),
  ];
}

async function zonesOf(orders) {
  const s = session.current();
  const ids = [...new Set(orders.map(areaOf))];
  const zs = await Promise.all(ids.map((id) => zoneOf(id, s && s.token)));
  return Object.fromEntries(ids.map((id, i) => [id, zs[i]]));
}

/** The bookings still on their way, on top of the lists. */
function pendingStrip() {
  const s = session.current();
  const list = outbox.entries(s.user).filter((e) => ['waiting', 'sending', 'login'].includes(e.state));
  if (!list.length) return null;
  return h('div', { class: 'notice notice--info', role: 'status' },
    h('p', {}, h('strong', {}, list.length === 1 ? 'A follow-up is on its way' : `${list.length} follow-ups are on their way`)),
    h('ul', { class: 'plain' }, list.map((e) => h('li', {},
      h('a', { href: `#/booking/${e.key}` }, `${e.context.customer}, ${e.context.label}`), `: ${outbox.stateText(e)}`))));
}

function failure(title, r) {
  return [heading(title), h('div', { class: 'notice notice--warning', role: 'alert' }, h('p', {}, describe(r))),
    h('p', {}, h('a', { href: '#/' }, 'Back to today\'s orders'))];
}

async function loadOrder(num) {
  try {
    const r = await api('GET', orderPath(num));
    if (r.ok) cache.set('order.' + num, r.body);
    return { r, order: r.ok ? r.body : null };
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
    const c = cache.get('order.' + num);
    if (c) return { order: c.value, offline: true };
    return { error: e };
  }
}

async function viewOrder({ num }) {
  const { r, order: o, error } = await loadOrder(num);
  if (error) return [back('#/', 'Today'), heading(`Order ${num}`), h('p', { class: 'notice notice--warning' }, describe(error))];
  if (!o) return [back('#/', 'Today'), ...failure(`Order ${num}`, r)];
  const s = session.current();
  const [cats, zone] = await Promise.all([categories(), zoneOf(areaOf(o), s.token)]);
  const st = t.parse(o.PlannedStartDate);
  const en = t.parse(o.PlannedEndDate);
  const kind = o.OrderStatus === 4097 ? reasonKind(cats, o.ReasonCode) : null;
  const actions = [];
  if (!CLOSED.includes(o.OrderStatus) && o.UserName === s.user) {
    actions.push(h('a', { class: 'button', href: `#/order/${encodeURIComponent(num)}/close` }, 'Close as incomplete'));
  }
  if (o.OrderStatus === 4097 && kind === 'followup') {
    actions.push(h('a', { class: 'button', href: `#/order/${encodeURIComponent(num)}/followup` }, 'Book a follow-up visit'));
  } else if (o.OrderStatus === 4097 && kind === 'none') {
    actions.push(h('p', { class: 'notice' }, 'Closed with a reason that needs no follow-up visit.'));
  }
  const parts = o.RequiredParts || [];
  return [
    back('#/', 'Today'),
    heading(customer(o)),
    h('p', { class: 'muted' }, `Order ${o.OrderNum} `, statusTag(o.OrderStatus)),
    h('dl', { class: 'summary' },
      row('Address', address(o)),
      row('Phone', phones(o)),
      row('Planned', st ? `${t.shortDay(st, zone)}, ${t.clock(st, zone)}${en ? '-' + t.clock(en, zone) : ''}` : ''),
      row('Promised', label(windowOf(o), zone)),
      row('Work', [o.OrderType, o.Description].filter(Boolean).join(': ')),
      row('Reason', o.ReasonCode ? reasonText(cats, o.ReasonCode) : ''),
      row('Parts', parts.length ? h('ul', { class: 'plain' }, parts.map((p) => h('li', {}, `${p.Qty || 1} × ${p.ProdNum}`))) : ''),
      row('Follows up', o.OriginalOrderNum ? h('a', { href: `#/order/${encodeURIComponent(o.OriginalOrderNum)}` }, o.OriginalOrderNum) : '')),
    actions,
    o.OrderStatus === 4097 ? await followupsOfOrder(num, zone) : null,
  ];
}

function phones(o) {
  const list = [];
  for (const c of (o.Location && o.Location.Contacts) || []) {
    for (const p of c.Phones || []) {
      if (p.PhoneNum) list.push(h('a', { href: 'tel:' + p.PhoneNum.replace(/[^+\d]/g, '') }, p.PhoneNum));
    }
  }
  return list.length ? list : '';
}

async function followupsOfOrder(num, zone) {
  let items = [];
  try {
    const r = await api('GET', orderPath(num) + '/Followup');
    if (r.ok) items = (r.body.Followups || []).filter((f) => f.OrderNum);
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
  }
  if (!items.length) return null;
  return [h('h2', {}, 'Follow-ups booked'), h('ul', { class: 'cards' }, items.map((f) => h('li', {},
    h('a', { class: 'card', href: `#/order/${encodeURIComponent(f.OrderNum)}` },
      h('span', { class: 'card__title' }, f.OrderNum),
      h('span', { class: 'card__line' }, t.period(t.parse(f.Slot.Start), t.parse(f.Slot.End), zone))))))];
}

async function viewClose({ num }, params) {
  const { r, order: o, error } = await loadOrder(num);
  if (error) return [heading('Close as incomplete'), h('p', { class: 'notice notice--warning' }, describe(error))];
  if (!o) return failure('Close as incomplete', r);
  const cats = await categories();
  const draft = drafts.get(num);
  const err = params.error;
  const radio = (item, i, group) => h('div', { class: 'radio' },
    h('input', { type: 'radio', name: 'reason', id: `reason-${group}-${i}`, value: item.Code, checked: draft.reason === item.Code,
      onchange: () => drafts.set(num, { ...drafts.get(num), reason: item.Code }) }),
    h('label', { for: `reason-${group}-${i}` }, item.Desc));
  const firstId = cats.followup.length ? 'reason-f-0' : 'reason-n-0';
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const chosen = form.querySelector('input[name=reason]:checked');
    if (!chosen) return render({ error: [{ field: firstId, text: 'Choose why the job is not complete' }] });
    const btn = form.querySelector('button');
    btn.disabled = true;
    let res;
    try {
      res = await api('PATCH', orderPath(num), { body: { OrderStatus: 4097, ReasonCode: chosen.value } });
    } catch (e) {
      if (e instanceof NetworkError) return render({ error: [{ text: describe(e) }] });
      throw e;
    }
    if (!res.ok) return render({ error: [{ text: describe(res) }] });
    cache.set('order.' + num, res.body);
    announce('The order is closed as incomplete.');
    go(reasonKind(cats, chosen.value) === 'followup' ? `#/order/${encodeURIComponent(num)}/followup` : `#/order/${encodeURIComponent(num)}`);
  } },
  h('fieldset', { 'aria-describedby': err ? 'reason-error' : null },
    h('legend', {}, 'Why is the job not complete?'),
    err ? h('span', { class: 'error-message', id: 'reason-error' }, err[0].text) : null,
    h('div', { class: 'radios', role: 'group', 'aria-labelledby': 'reasons-followup' },
      h('h2', { id: 'reasons-followup' }, 'A follow-up visit is needed'),
      cats.followup.map((item, i) => radio(item, i, 'f'))),
    h('div', { class: 'radios', role: 'group', 'aria-labelledby': 'reasons-none' },
      h('h2', { id: 'reasons-none' }, 'No follow-up visit'),
      cats.none.map((item, i) => radio(item, i, 'n')))),
  h('button', { class: 'button', type: 'submit' }, 'Close order as incomplete'));
  return [
    err ? errorSummary(err) : null,
    back(`#/order/${encodeURIComponent(num)}`, 'Order'),
    heading('Close as incomplete'),
    h('p', { class: 'muted' }, `${customer(o)}, order ${o.OrderNum}`),
    form,
  ];
}

// The follow-up: who the customer is, when they can be visited, the parts, the windows.
async function viewFollowup({ num }, params) {
  const { r, order: o, error } = await loadOrder(num);
  if (error) return [heading('Book a follow-up visit'), h('p', { class: 'notice notice--warning' }, describe(error))];
  if (!o) return failure('Book a follow-up visit', r);
  const s = session.current();
  const zone = await zoneOf(areaOf(o), s.token);
  const intro = [
    back(`#/order/${encodeURIComponent(num)}`, 'Order'),
    heading('Book a follow-up visit'),
    h('p', { class: 'muted' }, `${customer(o)}, ${address(o)}. Order ${o.OrderNum}.`),
  ];
  const pending = outbox.pendingFor(s.user, num);
  if (pending) {
    return [...intro, h('div', { class: 'notice notice--info', role: 'status' },
      h('p', {}, `A booking for ${pending.context.label} is on its way: ${outbox.stateText(pending)}.`),
      h('p', {}, h('a', { href: `#/booking/${pending.key}` }, 'See the booking')))];
  }
  // Already booked (from this phone or another): show it rather than offer a second one.
  try {
    const f = await api('GET', orderPath(num) + '/Followup');
    const done = f.ok ? (f.body.Followups || []).find((x) => x.OrderNum) : null;
    if (done) {
      return [...intro, h('div', { class: 'notice notice--info', role: 'status' },
        h('p', {}, `The follow-up ${done.OrderNum} is booked for ${t.period(t.parse(done.Slot.Start), t.parse(done.Slot.End), zone)}.`),
        h('p', {}, h('a', { href: `#/order/${encodeURIComponent(done.OrderNum)}` }, 'See the follow-up order')))];
    }
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
  }
  const draft = drafts.get(num);
  if (!draft.parts && (o.RequiredParts || []).length) {
    draft.parts = o.RequiredParts.map((p) => ({ ProdNum: p.ProdNum || '', Qty: String(p.Qty || 1),
      date: p.EstimatedDelivery ? t.localDate(t.parse(p.EstimatedDelivery), zone) : '' }));
  }
  const results = h('section', { id: 'results', 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Finding windows…'));
  const errs = params.error || [];
  const form = availabilityForm(num, zone, draft, errs, () => search(num, o, zone, results));
  search(num, o, zone, results, params.searchError);
  return [errs.length ? errorSummary(errs) : null, ...intro, form, results];
}

function availabilityForm(num, zone, draft, errs, onSearch) {
  const err = (id) => (errs.find((e) => e.field === id) || {}).text;
  const save = () => drafts.set(num, { ...drafts.get(num), ...readForm(form) });
  const awayRow = (a, i) => h('div', { class: 'inline', 'data-row': 'away' },
    field({ id: `away-date-${i}`, label: 'Away on', type: 'date', value: a.date || '', error: err(`away-date-${i}`) }),
    field({ id: `away-from-${i}`, label: 'From', type: 'time', value: a.from || '' }),
    field({ id: `away-to-${i}`, label: 'To', type: 'time', value: a.to || '', error: err(`away-to-${i}`) }),
    h('button', { type: 'button', class: 'linkish', 'aria-label': `Remove away time ${i + 1}`, onclick: () => {
      const d = readForm(form); d.away.splice(i, 1); drafts.set(num, { ...drafts.get(num), ...d }); render();
    } }, 'Remove'));
  const partRow = (p, i) => h('div', { class: 'inline', 'data-row': 'part' },
    field({ id: `part-num-${i}`, label: 'Part number', value: p.ProdNum || '', error: err(`part-num-${i}`) }),
    field({ id: `part-qty-${i}`, label: 'Quantity', type: 'number', value: p.Qty || '1', error: err(`part-qty-${i}`), attrs: { min: '1', step: 'any', inputmode: 'decimal' } }),
    field({ id: `part-date-${i}`, label: 'Expected delivery', type: 'date', value: p.date || '' }),
    h('button', { type: 'button', class: 'linkish', 'aria-label': `Remove part ${i + 1}`, onclick: () => {
      const d = readForm(form); d.parts.splice(i, 1); drafts.set(num, { ...drafts.get(num), ...d }); render();
    } }, 'Remove'));
  const away = draft.away || [];
  const parts = draft.parts || [];
  const form = h('form', { novalidate: true, oninput: save, onsubmit: (ev) => {
    ev.preventDefault();
    save();
    const problems = validate(readForm(form));
    if (problems.length) return render({ error: problems });
    onSearch();
  } },
  h('details', { open: !!(draft.notBefore || away.length || parts.length || errs.length) },
    h('summary', {}, 'Customer availability and parts'),
    h('div', { class: 'details__body' },
      h('fieldset', {},
        h('legend', {}, 'When the customer can be visited'),
        field({ id: 'not-before', label: 'Not before', type: 'date', value: draft.notBefore || '', hint: 'The first day the customer can have the visit' }),
        away.length ? h('p', { class: 'hint' }, 'Leave From and To empty when the customer is away all day.') : null,
        away.map(awayRow),
        h('button', { type: 'button', class: 'button button--secondary', onclick: () => {
          const d = readForm(form); d.away.push({}); drafts.set(num, { ...drafts.get(num), ...d }); render();
        } }, 'Add a time the customer is away')),
      h('fieldset', {},
        h('legend', {}, 'Parts still needed'),
        parts.map(partRow),
        h('button', { type: 'button', class: 'button button--secondary', onclick: () => {
          const d = readForm(form); d.parts.push({ Qty: '1' }); drafts.set(num, { ...drafts.get(num), ...d }); render();
        } }, 'Add a part')),
      h('button', { class: 'button', type: 'submit' }, 'Find windows'))));
  return form;
}

function readForm(form) {
  const v = (id) => { const el = form.querySelector('#' + id); return el ? el.value.trim() : ''; };
  const away = [...form.querySelectorAll('[data-row=away]')].map((_, i) => ({ date: v(`away-date-${i}`), from: v(`away-from-${i}`), to: v(`away-to-${i}`) }));
  const parts = [...form.querySelectorAll('[data-row=part]')].map((_, i) => ({ ProdNum: v(`part-num-${i}`), Qty: v(`part-qty-${i}`), date: v(`part-date-${i}`) }));
  return { notBefore: v('not-before'), away, parts };
}

function validate(d) {
  const out = [];
  d.away.forEach((a, i) => {
    if (!a.date) out.push({ field: `away-date-${i}`, text: `Enter the day the customer is away (row ${i + 1})` });
    if (a.from && a.to && a.from >= a.to) out.push({ field: `away-to-${i}`, text: `The end of an away time must be after its start (row ${i + 1})` });
  });
  d.parts.forEach((p, i) => {
    if (!p.ProdNum) out.push({ field: `part-num-${i}`, text: `Enter the part number (part ${i + 1})` });
    if (!(Number(p.Qty) > 0)) out.push({ field: `part-qty-${i}`, text: `Enter a quantity above zero (part ${i + 1})` });
  });
  return out;
}

/** The Appointment Search object for the draft: 1002 "available from", 1003 "away" periods. */
function searchBody(num, zone, d) {
  const tcs = [];
  if (d.notBefore) {
    tcs.push({ Type: '1002', Desc: 'Customer available from', Period: {
      Start: t.wire(t.zonedToUtc(d.notBefore, '00:00', zone)), End: t.wire(t.zonedToUtc(t.addDays(d.notBefore, 366), '00:00', zone)) } });
  }
  for (const a of d.away || []) {
    if (!a.date) continue;
    const start = t.zonedToUtc(a.date, a.from || '00:00', zone);
    const end = a.to ? t.zonedToUtc(a.date, a.to, zone) : t.zonedToUtc(t.addDays(a.date, 1), '00:00', zone);
    tcs.push({ Type: '1003', Desc: 'Customer away', Period: { Start: t.wire(start), End: t.wire(end) } });
  }
  const body = { OriginalOrderNum: num };
  if (tcs.length) body.TimeConstraints = tcs;
  const parts = requiredParts(zone, d);
  if (parts.length) body.RequiredParts = parts;
  return body;
}

function requiredParts(zone, d) {
  return (d.parts || []).filter((p) => p.ProdNum).map((p) => {
    const part = { ProdNum: p.ProdNum, Qty: Number(p.Qty) || 1 };
    if (p.date) part.EstimatedDelivery = t.wire(t.zonedToUtc(p.date, '00:00', zone));
    return part;
  });
}

async function search(num, o, zone, results) {
  const d = drafts.get(num);
  results.setAttribute('aria-busy', 'true');
  let r;
  try {
    r = await api('POST', '/seiapi/v3/trans/Appointments/OpenSlots', { body: searchBody(num, zone, d), timeoutMs: 20000 });
  } catch (e) {
    if (e instanceof SessionEnded) return sessionEnded();
    if (!(e instanceof NetworkError)) throw e;
    mount(results, h('p', { class: 'notice notice--warning' }, describe(e)));
    results.setAttribute('aria-busy', 'false');
    return;
  }
  results.setAttribute('aria-busy', 'false');
  if (!r.ok) {
    // 409: the rule or the reason does not allow a follow-up; the server says which, in words.
    mount(results, h('div', { class: 'notice notice--warning', role: 'alert' },
      h('p', {}, h('strong', {}, r.status === 409 ? 'A follow-up cannot be booked for this order.' : 'No windows could be found.')),
      h('p', {}, describe(r))));
    return;
  }
  const slots = (r.body.TimeConstraints || []).filter((tc) => tc.Period);
  if (!slots.length) {
    mount(results, h('div', { class: 'notice notice--warning' },
      h('p', {}, h('strong', {}, 'No free window was found.')),
      r.body.StatusMsg ? h('p', {}, r.body.StatusMsg) : null));
    return;
  }
  const ctx = { customer: customer(o), address: address(o), zone };
  mount(results, h('h2', {}, 'Free windows'),
    h('p', { class: 'muted small' }, `Times are the customer's local time (${zone}). Choose one, then book it.`),
    slotList(slots, zone, (slot) => h('button', { class: 'button', type: 'button', onclick: () => bookSlot(num, slot, ctx) },
      `Book ${label(slot, zone)}`), drafts.get(num).selected, (id) => drafts.set(num, { ...drafts.get(num), selected: id })));
}

/** Windows grouped by the customer's local day. `action(slot)` is shown under the chosen one
 * (or under each, when `select` is not given: one tap books). */
function slotList(slots, zone, action, selected, select) {
  const days = new Map();
  for (const s of slots) {
    const start = t.parse(s.Period.Start);
    const k = t.localDate(start, zone);
    if (!days.has(k)) days.set(k, { start, items: [] });
    days.get(k).items.push(s);
  }
  const key = (s) => s.ID || s.Period.Start;
  const groups = [...days.values()].map((d) => h('div', { class: 'slot-day' },
    h('h3', {}, t.dayHeading(d.start, zone)),
    h('ul', { class: 'slots' }, d.items.map((s) => {
      if (!select) return h('li', {}, action(s));
      const chosen = selected === key(s);
      return h('li', {},
        h('button', { type: 'button', class: 'slot', 'aria-pressed': chosen ? 'true' : 'false',
          onclick: (ev) => {
            select(key(s));
            const list = ev.currentTarget.closest('.slot-days');
            list.replaceWith(slotList(slots, zone, action, key(s), select));
            document.querySelector('.slot[aria-pressed=true]')?.focus();
          } }, label(s, zone)),
        chosen ? h('div', { class: 'slot__confirm' }, action(s)) : null);
    }))));
  return h('div', { class: 'slot-days' }, groups);
}

function bookSlot(num, slot, ctx) {
  const s = session.current();
  if (!s) return sessionEnded();
  // A second tap while the first booking is on its way shows that one: one key per booking.
  const pending = outbox.pendingFor(s.user, num);
  if (pending) return go(`#/booking/${pending.key}`);
  const d = drafts.get(num);
  const e = outbox.book(s.user, num, slot, requiredParts(ctx.zone, d), { ...ctx, label: label(slot, ctx.zone) });
  go(`#/booking/${e.key}`);
}

async function viewBooking({ key }) {
  const e = outbox.get(key);
  if (!e) return [heading('Booking'), h('p', {}, 'This booking is not on this phone.'), h('p', {}, h('a', { href: '#/' }, 'Back to today\'s orders'))];
  const state = h('p', { class: 'booking-state', 'data-state': e.state, role: 'status' },
    h('span', { class: e.state === 'booked' ? 'tag tag--green' : e.state === 'waiting' || e.state === 'login' ? 'tag tag--yellow' : e.state === 'sending' ? 'tag' : 'tag tag--red' }, outbox.stateText(e)));
  const facts = h('dl', { class: 'summary' },
    row('Customer', e.context.customer),
    row('Address', e.context.address),
    row('Window', e.context.label),
    row('Follows up', h('a', { href: `#/order/${encodeURIComponent(e.original)}` }, e.original)));
  if (e.state === 'booked') {
    const a = e.answer || {};
    drafts.drop(e.original);
    return [
      h('div', { class: 'panel' }, h('h1', { tabindex: '-1' }, 'Follow-up booked'), h('p', {}, 'New order', h('strong', { id: 'new-order' }, a.OrderNum))),
      state,
      facts,
      (a.OrderedParts || []).length ? [h('h2', {}, 'Parts ordered'), h('ul', { class: 'cards' }, a.OrderedParts.map((p) => h('li', {},
        h('div', { class: 'card' }, h('span', { class: 'card__line' }, h('strong', { class: 'part-order' }, p.PartOrderNum)),
          h('span', { class: 'card__line' }, (p.Parts || []).join(', '))))))] : null,
      h('p', {}, h('a', { href: '#/' }, 'Back to today\'s orders')),
      h('p', {}, h('a', { href: '#/followups' }, 'My follow-ups')),
    ];
  }
  if (e.state === 'refused') {
    const alts = (e.alternatives || []).filter((x) => x.Period);
    return [
      heading('That window has just been taken'),
      state,
      h('div', { class: 'notice notice--warning', role: 'alert' }, h('p', {}, e.detail)),
      facts,
      alts.length ? [h('h2', {}, 'Other free windows'), h('p', {}, 'One tap books a window.'),
        slotList(alts, e.context.zone, (slot) => h('button', { class: 'button', type: 'button', onclick: () => {
          const s = session.current();
          if (!s) return sessionEnded();
          const n = outbox.book(s.user, e.original, slot, e.body.RequiredParts || [], { ...e.context, label: label(slot, e.context.zone) });
          go(`#/booking/${n.key}`);
        } }, `Book ${label(slot, e.context.zone)}`))]
        : h('p', {}, 'There is no other free window right now.'),
      h('p', {}, h('a', { href: `#/order/${encodeURIComponent(e.original)}/followup` }, 'Search again')),
    ];
  }
  if (e.state === 'failed') {
    return [heading('The follow-up was not booked'), state,
      h('div', { class: 'notice notice--warning', role: 'alert' }, h('p', {}, e.detail)), facts,
      h('p', {}, h('a', { href: `#/order/${encodeURIComponent(e.original)}` }, 'Back to the order'))];
  }
  return [
    heading(e.state === 'sending' ? 'Booking the follow-up' : 'Follow-up not sent yet'),
    state,
    e.state === 'waiting' ? h('p', {}, 'The booking is kept on this phone and is sent by itself when the network is back. You can leave this screen.') : null,
    e.state === 'login' ? h('p', {}, 'Your session has ended. ', h('a', { href: '#/login' }, 'Log in'), ' and the booking is sent.') : null,
    facts,
    e.state === 'waiting' ? h('button', { class: 'button button--secondary', type: 'button', onclick: () => outbox.kick() }, 'Try now') : null,
  ];
}

async function viewFollowups() {
  const s = session.current();
  const local = outbox.entries(s.user);
  const open = local.filter((e) => e.state !== 'booked');
  const booked = new Map();
  for (const e of local.filter((x) => x.state === 'booked' && x.answer)) {
    booked.set(e.answer.OrderNum, { num: e.answer.OrderNum, original: e.original, label: e.context.label, customer: e.context.customer, at: e.bookedAt });
  }
  let offline = null;
  try {
    const q = new URLSearchParams({ OrderStatus: '4097', From: t.wire(Date.now() - 60 * 86400e3), Limit: '100' });
    const r = await api('GET', '/seiapi/v3/trans/WorkOrders?' + q);
    if (r.ok) {
      const closed = (r.body.WorkOrders || []).filter((o) => o.UserName === s.user).slice(-30);
      const zones = await zonesOf(closed);
      const lists = await Promise.all(closed.map((o) => api('GET', orderPath(o.OrderNum) + '/Followup').then((x) => [o, x])));
      for (const [o, x] of lists) {
        if (!x.ok) continue;
        for (const f of x.body.Followups || []) {
          if (!f.OrderNum) continue;
          const z = zones[areaOf(o)];
          booked.set(f.OrderNum, { num: f.OrderNum, original: o.OrderNum, customer: customer(o),
            label: t.period(t.parse(f.Slot.Start), t.parse(f.Slot.End), z), at: t.parse(f.BookedAt), start: t.parse(f.Slot.Start) });
        }
      }
    }
  } catch (e) {
    if (!(e instanceof NetworkError)) throw e;
    offline = e;
  }
  const list = [...booked.values()].sort((a, b) => (b.at || 0) - (a.at || 0));
  return [
    heading('My follow-ups'),
    offline ? h('p', { class: 'notice notice--warning' }, 'Offline: showing the follow-ups booked from this phone.') : null,
    open.length ? [h('h2', {}, 'Not booked yet'), h('ul', { class: 'cards' }, open.map((e) => h('li', {},
      h('a', { class: 'card', href: `#/booking/${e.key}` },
        h('span', { class: 'card__top' }, h('span', { class: 'card__title' }, e.context.customer), h('span', { class: 'tag tag--yellow' }, outbox.stateText(e))),
        h('span', { class: 'card__line' }, e.context.label),
        h('span', { class: 'card__line muted small' }, `Follows up ${e.original}`)))))] : null,
    h('h2', {}, 'Booked'),
    list.length ? h('ul', { class: 'cards', 'aria-label': 'Follow-ups booked' }, list.map((f) => h('li', {},
      h('a', { class: 'card', href: `#/order/${encodeURIComponent(f.num)}` },
        h('span', { class: 'card__top' }, h('span', { class: 'card__title' }, f.num), h('span', { class: 'tag tag--green' }, 'Booked')),
        h('span', { class: 'card__line' }, f.customer),
        h('span', { class: 'card__line' }, f.label),
        h('span', { class: 'card__line muted small' }, `Follows up ${f.original}`)))))
      : h('p', {}, 'You have not booked a follow-up yet.'),
  ];
}

// ---------------------------------------------------------------------------------------------
// Routing.

const ROUTES = [
  [/^#?\/?$/, viewToday, 'Today'],
  [/^#\/login$/, viewLogin, 'Log in', { public: true }],
  [/^#\/order\/([^/]+)$/, viewOrder, 'Order', {}, ['num']],
  [/^#\/order\/([^/]+)\/close$/, viewClose, 'Close as incomplete', {}, ['num']],
  [/^#\/order\/([^/]+)\/followup$/, viewFollowup, 'Book a follow-up', {}, ['num']],
  [/^#\/booking\/([^/]+)$/, viewBooking, 'Booking', {}, ['key']],
  [/^#\/followups$/, viewFollowups, 'My follow-ups'],
];

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

let seq = 0;
let firstRender = true;

/** Draws the screen of the current hash; `params` carries a form's errors across a redraw. */
async function render(params = {}) {
  const my = ++seq;
  const hash = location.hash || '#/';
  const found = ROUTES.map(([re, view, title, opts = {}, names = []]) => {
    const m = hash.match(re);
    return m && { view, title, opts, args: Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }).find(Boolean);
  if (!found) return go('#/');
  if (!found.opts.public && !session.current()) {
    if (sessionStorage.getItem('revisit.returnTo') === null && session.lastUser() && hash !== '#/') {
      sessionStorage.setItem('revisit.returnTo', hash);
    }
    return go('#/login');
  }
  if (found.view !== viewLogin) {
    const nav = document.getElementById('nav');
    nav.hidden = false;
    for (const a of nav.querySelectorAll('a')) {
      if (a.getAttribute('href') === hash) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
  }
  let content;
  try {
    content = await found.view(found.args, params);
  } catch (e) {
    if (e instanceof SessionEnded) return sessionEnded();
    content = [heading('Something went wrong'), h('p', { class: 'notice notice--warning' }, describe(e))];
  }
  if (my !== seq) return; // a newer screen was asked for meanwhile
  document.title = `${found.title} · Revisit`;
  mount(main, content);
  const focusTarget = main.querySelector('.error-summary') || (firstRender || params.quiet ? null : main.querySelector('h1'));
  if (focusTarget) focusTarget.focus();
  if (firstRender) {
    firstRender = false;
    document.documentElement.dataset.ready = 'true';
    performance.mark('revisit:ready');
  }
}

/** The token ended (clock or 401): keep where the user was, ask for the log-in. */
function sessionEnded() {
  session.end();
  const hash = location.hash || '#/';
  if (hash !== '#/login') sessionStorage.setItem('revisit.returnTo', hash);
  go('#/login');
}

session.onEnd(() => { if (location.hash !== '#/login') sessionEnded(); });
window.addEventListener('revisit:session-ended', () => { if (location.hash !== '#/login') sessionEnded(); });
window.addEventListener('hashchange', () => render());
document.getElementById('logout').addEventListener('click', () => {
  session.end();
  sessionStorage.removeItem('revisit.returnTo');
  go('#/login');
});
// A booking's screen follows its state as the outbox sends it.
outbox.subscribe(() => {
  if (/^#\/booking\//.test(location.hash)) render({ quiet: true });
});

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch(() => { /* the app works without it, online */ });
}
setOnline(navigator.onLine);
render();
outbox.kick();
