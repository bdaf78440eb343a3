// The admin's settings, all through the public API: the entity configuration (the RestApi
// targets, with the server's validation errors shown at their fields, and WorkOrderRules), the
// reason categories, work centers, technicians, a roster file imported one object at a time, and
// the entity's users through the admin API (/admin/v1).

import { describe } from '../shared/api.js';
import { h, mount, announce, errorSummary, field } from '../shared/dom.js';
import { api, heading } from './board.js';

const CONFIG = '/seiapi/v3/SysConfig/mobility';
const SECTIONS = [
  ['config', 'Configuration'], ['categories', 'Reason categories'], ['workcenters', 'Work centers'],
  ['technicians', 'Technicians'], ['import', 'Import a roster'], ['users', 'Users'],
];

export async function viewSettings({ section }, params) {
  const here = section || 'config';
  const nav = h('nav', { class: 'subnav', 'aria-label': 'Settings' }, h('ul', { class: 'plain' }, SECTIONS.map(([id, text]) =>
    h('li', {}, h('a', { href: `#/settings/${id}`, 'aria-current': id === here ? 'page' : null }, text)))));
  const view = { config, categories, workcenters: (p) => objects('workcenters', p), technicians: (p) => objects('technicians', p), import: roster, users }[here] || config;
  return h('div', { class: 'settings' }, heading('Settings'), nav, h('div', { class: 'settings__body' }, await view(params)));
}

/** The server's `invalidParams` as `{path: reason}`. */
function problems(r) {
  const out = {};
  for (const p of (r.body && r.body.invalidParams) || []) out[p.path || p.name || ''] = p.reason;
  return out;
}

function saved(text) {
  return h('div', { class: 'notice notice--info', role: 'status', id: 'saved' }, text);
}

// ---------------------------------------------------------------------------------------------

const REST = [
  ['SearchAppts', 'Appointment search (RestApi.SearchAppts)', 'builtin: for Revisit\'s own scheduler, or an https URL of your scheduler.'],
  ['BookJob', 'Book a follow-up (RestApi.BookJob)', 'builtin:, or an https URL with {0} where the original order number goes.'],
  ['TimeoutMs', 'Time-out in milliseconds (RestApi.TimeoutMs)', 'How long Revisit waits for your scheduler.'],
];

async function config(params = {}) {
  const r = await api('GET', CONFIG);
  if (!r.ok) return h('p', { class: 'notice notice--warning' }, describe(r));
  const cfg = params.cfg || r.body || {};
  const rest = cfg.RestApi || {};
  const errs = params.errors || {};
  const form = h('form', { novalidate: true, id: 'config-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const next = { RestApi: {} };
    for (const [k] of REST) {
      const v = form.querySelector(`#cfg-${k}`).value.trim();
      if (v !== '') next.RestApi[k] = k === 'TimeoutMs' && /^\d+$/.test(v) ? Number(v) : v;
    }
    const rulesText = form.querySelector('#cfg-rules').value.trim();
    const local = {};
    // Rules sent only when changed: the configuration is merged, and an untouched field must
    // not rewrite what is stored.
    if (rulesText) {
      try {
        const rules = JSON.parse(rulesText);
        if (JSON.stringify(rules) !== JSON.stringify((r.body || {}).WorkOrderRules || {})) next.WorkOrderRules = rules;
      } catch { local['$.WorkOrderRules'] = 'Enter the rules as JSON, for example {"Default": {"CanScheduleFollowup": true}}'; }
    }
    if (Object.keys(local).length) return show({ errors: local, cfg: { ...cfg, ...next, WorkOrderRules: rulesText } });
    const res = await api('POST', CONFIG, { body: next });
    if (!res.ok) {
      const p = problems(res);
      if (!Object.keys(p).length) p[''] = describe(res);
      return show({ errors: p, cfg: { ...cfg, ...next, WorkOrderRules: rulesText } });
    }
    show({ saved: 'The configuration was saved.' });
  } });
  async function show(p) { mount(form.parentElement, await config(p)); const f = document.querySelector('.error-summary, #saved'); if (f) { f.setAttribute('tabindex', '-1'); f.focus(); } }
  const ids = { '$.RestApi.SearchAppts': 'cfg-SearchAppts', '$.RestApi.BookJob': 'cfg-BookJob', '$.RestApi.TimeoutMs': 'cfg-TimeoutMs', '$.WorkOrderRules': 'cfg-rules' };
  const list = Object.entries(errs).map(([path, text]) => ({ field: ids[path] || (Object.entries(ids).find(([k]) => path.startsWith(k)) || [])[1], text: path && !ids[path] ? `${path}: ${text}` : text }));
  const errOf = (path) => errs[path] || Object.entries(errs).filter(([k]) => k.startsWith(path + '.') || k.startsWith(path + '[')).map(([k, v]) => `${k}: ${v}`).join('; ') || null;
  const rulesValue = typeof cfg.WorkOrderRules === 'string' ? cfg.WorkOrderRules : JSON.stringify(cfg.WorkOrderRules || {}, null, 2);
  const rulesErr = errOf('$.WorkOrderRules');
  mount(form,
    h('h2', {}, 'Configuration'),
    h('fieldset', {}, h('legend', {}, 'Scheduler (RestApi)'),
      REST.map(([k, label, hint]) => field({ id: `cfg-${k}`, label, hint, value: rest[k] === undefined ? '' : String(rest[k]), error: errOf(`$.RestApi.${k}`),
        attrs: { spellcheck: 'false', autocapitalize: 'none', class: 'wide-input' } }))),
    h('div', { class: 'field' + (rulesErr ? ' field--error' : '') },
      h('label', { for: 'cfg-rules' }, 'Work order rules (WorkOrderRules)'),
      h('span', { class: 'hint', id: 'cfg-rules-hint' }, 'JSON: which order types may be followed up, e.g. {"Default": {"CanScheduleFollowup": true}}.'),
      rulesErr ? h('span', { class: 'error-message', id: 'cfg-rules-error' }, h('span', { class: 'visually-hidden' }, 'Error: '), rulesErr) : null,
      h('textarea', { id: 'cfg-rules', rows: '6', spellcheck: 'false', 'aria-describedby': 'cfg-rules-hint' + (rulesErr ? ' cfg-rules-error' : ''), 'aria-invalid': rulesErr ? 'true' : null }, rulesValue)),
    h('button', { class: 'button', type: 'submit' }, 'Save the configuration'));
  return h('div', {}, list.length ? errorSummary(list) : null, params.saved ? saved(params.saved) : null, form);
}

// ---------------------------------------------------------------------------------------------

const CATS = [['15', 'Reasons that need a follow-up (15)'], ['16', 'Reasons that need no follow-up (16)']];

async function categories(params = {}) {
  const got = await Promise.all(CATS.map(([c]) => api('GET', `/seiapi/v3/trans/SystemCategory/Default/${c}`)));
  const host = h('div', {});
  const forms = CATS.map(([code, title], i) => {
    const r = got[i];
    if (!r.ok) return h('p', { class: 'notice notice--warning' }, describe(r));
    const err = params.errors && params.errors[code];
    const text = (params.text && params.text[code]) ?? (r.body.Items || []).map((x) => `${x.Code} ${x.Desc}`).join('\n');
    const id = `cat-${code}`;
    const form = h('form', { novalidate: true, onsubmit: async (ev) => {
      ev.preventDefault();
      const lines = form.querySelector('textarea').value.split('\n').map((l) => l.trim()).filter(Boolean);
      const items = lines.map((l) => { const m = l.match(/^(\S+)\s+(.+)$/); return m ? { Code: m[1], Desc: m[2] } : { Code: l, Desc: '' }; });
      const res = await api('PUT', `/seiapi/v3/trans/SystemCategory/Default/${code}`, { body: { Code: code, Desc: r.body.Desc, Items: items } });
      const again = async (p) => { mount(host, await categories(p)); const f = host.querySelector('.error-message, #saved'); if (f) { f.setAttribute('tabindex', '-1'); f.focus(); } };
      if (!res.ok) {
        const p = problems(res);
        return again({ errors: { [code]: Object.keys(p).length ? Object.entries(p).map(([k, v]) => `${k}: ${v}`).join('; ') : describe(res) }, text: { [code]: form.querySelector('textarea').value } });
      }
      again({ saved: `Category ${code} was saved.` });
    } },
    h('div', { class: 'field' + (err ? ' field--error' : '') },
      h('label', { for: id }, title),
      h('span', { class: 'hint', id: id + '-hint' }, 'One reason a line: its code, a space, its description.'),
      err ? h('span', { class: 'error-message', id: id + '-error' }, h('span', { class: 'visually-hidden' }, 'Error: '), err) : null,
      h('textarea', { id, rows: '6', 'aria-describedby': id + '-hint' + (err ? ` ${id}-error` : '') }, text)),
    h('button', { class: 'button', type: 'submit' }, `Save category ${code}`));
    return form;
  });
  mount(host, h('h2', {}, 'Reason categories'), params.saved ? saved(params.saved) : null, forms);
  return host;
}

// ---------------------------------------------------------------------------------------------

const TEMPLATES = {
  workcenters: { ServiceAreaID: '', Name: '', TimeZone: 'Europe/Paris', Lat: 0, Lon: 0,
    Policy: { Windows: [{ Days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], Start: '08:00', End: '12:00' }, { Days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], Start: '12:00', End: '16:00' }] } },
  technicians: { UserName: '', Name: '', ServiceAreaIDs: [], Skills: [{ Code: 'GEN', Level: 1 }], Home: { Lat: 0, Lon: 0 },
    Shifts: [{ Days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], Start: '08:00', End: '17:00' }], Exceptions: [] },
};
const ID = { workcenters: 'ServiceAreaID', technicians: 'UserName' };
const TITLE = { workcenters: 'Work centers', technicians: 'Technicians' };

function describeObject(kind, o) {
  if (kind === 'workcenters') {
    const w = (o.Policy && o.Policy.Windows) || [];
    return `${o.Name} · ${o.TimeZone} · windows ${w.map((x) => `${x.Start}-${x.End}`).join(', ') || 'none'}`;
  }
  return `${o.Name} · ${(o.ServiceAreaIDs || []).join(', ')} · skills ${(o.Skills || []).map((s) => `${s.Code} ${s.Level}`).join(', ')} · ` +
    `shifts ${(o.Shifts || []).map((s) => `${s.Days.join('/')} ${s.Start}-${s.End}`).join('; ')}${o.Active === false ? ' · inactive' : ''}`;
}

/** An editor of one set-up object as JSON; the server's errors are shown at it. */
function editor(kind, obj, { errors, text, onSaved, isNew }) {
  const id = `edit-${kind}`;
  const err = errors && Object.entries(errors).map(([k, v]) => (k ? `${k}: ${v}` : v)).join('; ');
  const form = h('form', { novalidate: true, class: 'editor', onsubmit: async (ev) => {
    ev.preventDefault();
    const raw = form.querySelector('textarea').value;
    let body;
    try { body = JSON.parse(raw); } catch { return onSaved({ errors: { '': 'This is not valid JSON' }, text: raw, editing: obj }); }
    const key = body && typeof body === 'object' ? body[ID[kind]] : '';
    if (!key) return onSaved({ errors: { [`$.${ID[kind]}`]: 'required' }, text: raw, editing: obj });
    const res = await api('PUT', `/scheduling/v1/${kind}/${encodeURIComponent(key)}`, { body });
    if (!res.ok) {
      const p = problems(res);
      return onSaved({ errors: Object.keys(p).length ? p : { '': describe(res) }, text: raw, editing: obj });
    }
    onSaved({ saved: `${key} was saved.` });
  } },
  h('div', { class: 'field' + (err ? ' field--error' : '') },
    h('label', { for: id }, isNew ? `New ${kind === 'workcenters' ? 'work center' : 'technician'} (JSON)` : `${obj[ID[kind]]} (JSON)`),
    err ? h('span', { class: 'error-message', id: id + '-error' }, h('span', { class: 'visually-hidden' }, 'Error: '), err) : null,
    h('textarea', { id, rows: '14', spellcheck: 'false', 'aria-describedby': err ? id + '-error' : null, 'aria-invalid': err ? 'true' : null },
      text ?? JSON.stringify(obj, null, 2))),
  h('div', { class: 'inline' },
    h('button', { class: 'button', type: 'submit' }, 'Save'),
    h('button', { class: 'button button--secondary', type: 'button', onclick: () => onSaved({}) }, 'Cancel')));
  return form;
}

async function objects(kind, params = {}) {
  const r = await api('GET', `/scheduling/v1/${kind}`);
  if (!r.ok) return h('p', { class: 'notice notice--warning' }, describe(r));
  const items = r.body.Items || [];
  const host = h('div', {});
  const again = async (p) => {
    mount(host, await objects(kind, p));
    const f = host.querySelector('.error-message, #saved, textarea');
    if (f) { if (!f.matches('textarea')) f.setAttribute('tabindex', '-1'); f.focus(); }
  };
  const editing = params.editing;
  mount(host,
    h('h2', {}, TITLE[kind]),
    params.saved ? saved(params.saved) : null,
    editing ? editor(kind, editing, { errors: params.errors, text: params.text, isNew: !editing[ID[kind]], onSaved: again }) : h('button', {
      class: 'button', type: 'button', onclick: () => again({ editing: TEMPLATES[kind] }),
    }, kind === 'workcenters' ? 'Add a work center' : 'Add a technician'),
    items.length ? h('ul', { class: 'cards' }, items.map((o) => h('li', {}, h('div', { class: 'card' },
      h('span', { class: 'card__top' }, h('strong', {}, o[ID[kind]]),
        h('span', { class: 'inline' },
          h('button', { class: 'linkish', type: 'button', 'aria-label': `Edit ${o[ID[kind]]}`, onclick: () => again({ editing: o }) }, 'Edit'),
          h('button', { class: 'linkish', type: 'button', 'aria-label': `Delete ${o[ID[kind]]}`, onclick: async () => {
            if (!confirm(`Delete ${o[ID[kind]]}?`)) return;
            const d = await api('DELETE', `/scheduling/v1/${kind}/${encodeURIComponent(o[ID[kind]])}`);
            again(d.ok ? { saved: `${o[ID[kind]]} was deleted.` } : { errors: { '': describe(d) } });
          } }, 'Delete'))),
      h('span', { class: 'card__line small' }, describeObject(kind, o)))))) : h('p', {}, 'None yet.'));
  return host;
}

// ---------------------------------------------------------------------------------------------

/** CSV rows (RFC 4180: quoted fields may hold commas, quotes and line breaks). */
function csvRows(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell.trim()); cell = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell.trim()); cell = '';
      if (row.some((x) => x !== '')) rows.push(row);
      row = [];
    } else cell += c;
  }
  row.push(cell.trim());
  if (row.some((x) => x !== '')) rows.push(row);
  return rows;
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const list = (v) => v.split(';').map((x) => x.trim()).filter(Boolean);

/** `Mon-Fri 08:00-17:00; Sat 09:00-13:00`, as `revisit import` reads it. */
function shiftsOf(v) {
  return list(v).map((item) => {
    const [days, hours = ''] = item.split(/\s+/, 2);
    const [start, end] = hours.split('-');
    const ds = days.split(',').flatMap((part) => {
      const [a, b] = part.split('-');
      const ia = DAYS.indexOf(a);
      const ib = b === undefined ? ia : DAYS.indexOf(b);
      if (ia < 0 || ib < 0) throw new Error(`unknown day in "${item}"`);
      return DAYS.slice(ia, Math.max(ia, ib) + 1);
    });
    return { Days: ds, Start: start, End: end };
  });
}

/** A roster file: JSON (`{"WorkCenters": [...], "Technicians": [...], "OrderTypes": [...]}` or an
 * array of technicians), or a CSV of technicians with the columns `revisit import` reads
 * (`UserName, Name, ServiceAreaIDs, Skills, HomeLat, HomeLon, Shifts[, Active]`). */
function parseRoster(name, text) {
  if (/\.csv$/i.test(name) || /^\s*"?UserName"?\s*,/.test(text)) {
    const [cols, ...rows] = csvRows(text);
    const col = (cells, n) => { const i = cols.indexOf(n); return i < 0 ? '' : (cells[i] || ''); };
    return { technicians: rows.map((c) => ({
      UserName: col(c, 'UserName'), Name: col(c, 'Name'),
      ServiceAreaIDs: list(col(c, 'ServiceAreaIDs')),
      Skills: list(col(c, 'Skills')).map((x) => { const [code, lvl] = x.split(':'); return { Code: code.trim(), Level: Number(lvl || 1) }; }),
      Home: { Lat: Number(col(c, 'HomeLat')), Lon: Number(col(c, 'HomeLon')) },
      Shifts: shiftsOf(col(c, 'Shifts')),
      Active: !/^(false|no|0)$/i.test(col(c, 'Active')),
    })) };
  }
  const v = JSON.parse(text);
  if (Array.isArray(v)) return { technicians: v };
  return { workcenters: v.WorkCenters || [], technicians: v.Technicians || [], ordertypes: v.OrderTypes || [] };
}

async function roster(params = {}) {
  const host = h('div', {});
  const form = h('form', { novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    const file = form.querySelector('#roster').files[0];
    if (!file) return mount(host, await roster({ error: 'Choose a roster file' }));
    let parsed;
    try { parsed = parseRoster(file.name, await file.text()); } catch (e) {
      return mount(host, await roster({ error: `The file could not be read: ${e.message}` }));
    }
    const results = [];
    // Work centers first: technicians name them.
    for (const kind of ['workcenters', 'ordertypes', 'technicians']) {
      for (const o of parsed[kind] || []) {
        const key = o[{ workcenters: 'ServiceAreaID', technicians: 'UserName', ordertypes: 'OrderType' }[kind]];
        const res = await api('PUT', `/scheduling/v1/${kind}/${encodeURIComponent(key || '-')}`, { body: o });
        const p = problems(res);
        results.push({ kind, key, ok: res.ok, text: res.ok ? (res.status === 201 ? 'added' : 'updated') : (Object.keys(p).length ? Object.entries(p).map(([k, v]) => `${k}: ${v}`).join('; ') : describe(res)) });
      }
    }
    mount(host, await roster({ results }));
    announce(`${results.filter((x) => x.ok).length} of ${results.length} imported.`);
  } },
  h('div', { class: 'field' + (params.error ? ' field--error' : '') },
    h('label', { for: 'roster' }, 'Roster file'),
    h('span', { class: 'hint', id: 'roster-hint' }, 'JSON with WorkCenters, Technicians and OrderTypes (as revisit import reads it), or a CSV of technicians with the columns UserName, Name, ServiceAreaIDs, Skills, HomeLat, HomeLon, Shifts.'),
    params.error ? h('span', { class: 'error-message', id: 'roster-error' }, params.error) : null,
    h('input', { id: 'roster', type: 'file', accept: '.json,.csv,application/json,text/csv', 'aria-describedby': 'roster-hint' })),
  h('button', { class: 'button', type: 'submit' }, 'Import'));
  const res = params.results;
  mount(host, h('h2', {}, 'Import a roster'),
    res ? h('div', { class: 'notice notice--info', role: 'status' }, h('p', {}, `${res.filter((x) => x.ok).length} of ${res.length} imported.`),
      h('ul', {}, res.map((x) => h('li', { class: x.ok ? '' : 'error-text' }, `${x.kind} ${x.key || '(no id)'}: ${x.text}`)))) : null,
    form);
  return host;
}



// ---------------------------------------------------------------------------------------------

const ROLES = ['technician', 'dispatcher', 'admin'];
const USER_FIELDS = { '$.UserName': 'user-name', '$.Role': 'user-role', '$.Password': 'user-password', '$.Technician': 'user-profile' };

/** The entity's users (`/admin/v1/users`): created with an optional scheduler profile, their role
 * changed, their password reset, deactivated or reactivated; the server's refusals shown at the
 * form or the user they concern. */
async function users(params = {}) {
  const [r, t] = await Promise.all([api('GET', '/admin/v1/users'), api('GET', '/admin/v1/technicians')]);
  if (!r.ok) return h('p', { class: 'notice notice--warning' }, describe(r));
  const host = h('div', {});
  const again = async (p) => {
    mount(host, await users(p));
    const f = host.querySelector('.error-summary, .card .error-message, #saved, #user-reset-password');
    if (f) { if (!f.matches('input')) f.setAttribute('tabindex', '-1'); f.focus(); }
  };
  const errs = params.errors || {};
  const draft = params.draft || {};
  // The profile's own errors (`$.Home.Lat`, `$.Technician...`) are shown at the profile.
  const fieldOf = (k) => USER_FIELDS[k] || (k.startsWith('$.Technician') || (k && (draft.Technician || '').trim()) ? 'user-profile' : null);
  const textOf = (k, v) => (k && !USER_FIELDS[k] ? `${k}: ${v}` : v);
  const errAt = (id) => Object.entries(errs).filter(([k]) => fieldOf(k) === id).map(([k, v]) => textOf(k, v)).join('; ') || null;
  const summary = Object.entries(errs).map(([k, v]) => ({ field: fieldOf(k), text: textOf(k, v) }));

  const create = h('form', { novalidate: true, id: 'user-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const val = (id) => create.querySelector('#' + id).value;
    const d = { UserName: val('user-name').trim(), Role: val('user-role'), Password: val('user-password'), Technician: val('user-profile') };
    const body = { UserName: d.UserName, Role: d.Role, Password: d.Password };
    if (d.Technician.trim()) {
      try { body.Technician = JSON.parse(d.Technician); } catch { return again({ errors: { '$.Technician': 'Enter the profile as JSON, or leave it empty' }, draft: d }); }
    }
    const res = await api('POST', '/admin/v1/users', { body });
    if (!res.ok) {
      const p = problems(res);
      return again({ errors: Object.keys(p).length ? p : { '': describe(res) }, draft: { ...d, Password: '' } });
    }
    again({ saved: `${res.body.UserName} was created as ${res.body.Role}${res.body.TechnicianProfile ? ', with its technician profile' : ''}.` });
  } },
  h('h3', {}, 'Add a user'),
  field({ id: 'user-name', label: 'User name', value: draft.UserName || '', error: errAt('user-name'), attrs: { autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none' } }),
  h('div', { class: 'field' + (errAt('user-role') ? ' field--error' : '') },
    h('label', { for: 'user-role' }, 'Role'),
    errAt('user-role') ? h('span', { class: 'error-message', id: 'user-role-error' }, h('span', { class: 'visually-hidden' }, 'Error: '), errAt('user-role')) : null,
    h('select', { id: 'user-role', 'aria-describedby': errAt('user-role') ? 'user-role-error' : null },
      ROLES.map((x) => h('option', { value: x, selected: (draft.Role || 'technician') === x ? 'selected' : null }, x)))),
  field({ id: 'user-password', label: 'Password', type: 'password', hint: '8 to 1024 characters. Give it to the user; it is never shown again.', error: errAt('user-password'), attrs: { autocomplete: 'new-password' } }),
  (() => {
    const e = errAt('user-profile');
    return h('div', { class: 'field' + (e ? ' field--error' : '') },
      h('label', { for: 'user-profile' }, 'Technician profile (JSON, optional)'),
      h('span', { class: 'hint', id: 'user-profile-hint' }, 'For a technician: its scheduler profile, as in Technicians (UserName may be left out), created with the login. Leave empty when the profile exists already: the login is joined to it by its user name.'),
      e ? h('span', { class: 'error-message', id: 'user-profile-error' }, h('span', { class: 'visually-hidden' }, 'Error: '), e) : null,
      h('textarea', { id: 'user-profile', rows: '6', spellcheck: 'false', 'aria-describedby': 'user-profile-hint' + (e ? ' user-profile-error' : ''), 'aria-invalid': e ? 'true' : null }, draft.Technician || ''));
  })(),
  h('button', { class: 'button', type: 'submit' }, 'Create the user'));

  const report = t.ok ? t.body : null;
  const gaps = report && (report.WithoutProfile.length || report.WithoutLogin.length) ? h('div', { class: 'notice notice--warning', id: 'user-gaps' },
    report.WithoutProfile.length ? h('p', {}, `Technician logins without a scheduler profile (never offered work): ${report.WithoutProfile.join(', ')}.`) : null,
    report.WithoutLogin.length ? h('p', {}, `Technician profiles without a technician login (work nobody can open): ${report.WithoutLogin.join(', ')}.`) : null) : null;

  const row = (u) => {
    const here = params.row && params.row.user === u.UserName ? params.row : {};
    const safe = u.UserName.replace(/[^A-Za-z0-9_-]/g, '_');
    const patch = async (body, done) => {
      const res = await api('PATCH', `/admin/v1/users/${encodeURIComponent(u.UserName)}`, { body });
      if (!res.ok) {
        const p = problems(res);
        return again({ row: { user: u.UserName, error: Object.keys(p).length ? Object.entries(p).map(([k, v]) => `${k}: ${v}`).join('; ') : describe(res), reset: here.reset && 'Password' in body } });
      }
      again({ saved: done });
    };
    const roleId = `role-${safe}`;
    return h('li', {}, h('div', { class: 'card' + (u.Active ? '' : ' card--inactive') },
      h('span', { class: 'card__top' }, h('strong', {}, u.UserName)),
      h('span', { class: 'card__line small' }, `${u.Role} · ${u.Active ? 'active' : 'deactivated'}${u.Role === 'technician' ? (u.TechnicianProfile ? ' · technician profile' : ' · no technician profile') : ''}`),
      here.error ? h('p', { class: 'error-message', id: `user-${safe}-error` }, h('span', { class: 'visually-hidden' }, 'Error: '), here.error) : null,
      h('div', { class: 'inline' },
        h('div', { class: 'field' },
          h('label', { for: roleId }, `Role of ${u.UserName}`),
          h('select', { id: roleId }, ROLES.map((x) => h('option', { value: x, selected: u.Role === x ? 'selected' : null }, x)))),
        h('button', { class: 'button button--secondary', type: 'button', 'aria-label': `Change role of ${u.UserName}`, onclick: (ev) => {
          const role = ev.target.closest('.card').querySelector('select').value;
          if (role !== u.Role) patch({ Role: role }, `${u.UserName} is now ${role}.`);
        } }, 'Change role'),
        h('button', { class: 'button button--secondary', type: 'button', 'aria-label': `Reset password of ${u.UserName}`, 'aria-expanded': here.reset ? 'true' : 'false',
          onclick: () => again({ row: { user: u.UserName, reset: !here.reset } }) }, 'Reset password'),
        h('button', { class: 'button button--secondary', type: 'button', 'aria-label': `${u.Active ? 'Deactivate' : 'Reactivate'} ${u.UserName}`, onclick: () => {
          if (u.Active && !confirm(`Deactivate ${u.UserName}? It is logged out at once and cannot log in.`)) return;
          patch({ Active: !u.Active }, `${u.UserName} was ${u.Active ? 'deactivated' : 'reactivated'}.`);
        } }, u.Active ? 'Deactivate' : 'Reactivate')),
      here.reset ? h('form', { novalidate: true, class: 'inline', onsubmit: (ev) => {
        ev.preventDefault();
        patch({ Password: ev.target.querySelector('input').value }, `The password of ${u.UserName} was reset.`);
      } },
      field({ id: 'user-reset-password', label: `New password for ${u.UserName}`, type: 'password', attrs: { autocomplete: 'new-password' } }),
      h('button', { class: 'button', type: 'submit' }, 'Set the password')) : null));
  };

  const list = r.body.Users || [];
  mount(host,
    h('h2', {}, 'Users'),
    summary.length ? errorSummary(summary) : null,
    params.saved ? saved(params.saved) : null,
    gaps,
    list.length ? h('ul', { class: 'cards', id: 'users' }, list.map(row)) : h('p', {}, 'No users yet.'),
    create);
  return host;
}
