// A few DOM helpers, so views are plain functions that build elements. No framework: a view
// returns a node; the app puts it into <main>.

/** h('a', {href: '#/', class: 'card', onclick: fn}, 'text', child, [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'open') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the content of `el` with `children`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Says `text` to screen readers through the page's polite live region. */
export function announce(text) {
  const live = document.getElementById('announce');
  if (!live) return;
  live.textContent = '';
  setTimeout(() => { live.textContent = text; }, 50);
}

/** The GOV.UK error summary: a titled box listing each problem, linking to its field. */
export function errorSummary(errors, title = 'There is a problem') {
  const box = h('div', { class: 'error-summary', role: 'alert', tabindex: '-1', 'aria-labelledby': 'error-summary-title' },
    h('h2', { id: 'error-summary-title' }, title),
    h('ul', {}, errors.map((e) => h('li', {}, e.field
      ? h('a', { href: '#' + e.field, onclick: (ev) => { ev.preventDefault(); document.getElementById(e.field)?.focus(); } }, e.text)
      : e.text))));
  return box;
}

/** A labelled input in a `.field`, with optional hint and error message wired by aria. */
export function field({ id, label, type = 'text', value = '', hint, error, attrs = {} }) {
  const described = [hint && id + '-hint', error && id + '-error'].filter(Boolean).join(' ') || null;
  return h('div', { class: 'field' + (error ? ' field--error' : '') },
    h('label', { for: id }, label),
    hint && h('span', { class: 'hint', id: id + '-hint' }, hint),
    error && h('span', { class: 'error-message', id: id + '-error' }, h('span', { class: 'visually-hidden' }, 'Error: '), error),
    h('input', { id, name: id, type, value, 'aria-describedby': described, 'aria-invalid': error ? 'true' : null, ...attrs }));
}
