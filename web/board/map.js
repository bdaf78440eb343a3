// The day's routes drawn from latitude and longitude in SVG: no tiles, no network. Each
// technician's route goes from home through the visits in order and back, in the technician's
// colour, with the stops numbered. A local equirectangular projection is plenty at city scale.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** The technician's colour: hues spread by the golden angle, dark enough for white numbers. */
export function techColour(i) {
  return `hsl(${Math.round((i * 137.508) % 360)}, 70%, 30%)`;
}

const W = 600;
const H = 480;
const PAD = 24;

/**
 * The map of board `b`. `sel.tech` and `sel.visit` are highlighted (the others fade);
 * clicking a stop or a route calls `sel.onSelect({tech, visit})`.
 */
export function drawMap(b, colours, sel) {
  const routes = b.Technicians.map((x) => ({
    tech: x,
    stops: x.Visits.filter((v) => v.Stop && v.Lat !== null && v.Lon !== null),
  }));
  const pts = [{ lat: b.Lat, lon: b.Lon }];
  for (const r of routes) {
    if (!r.stops.length) continue;
    pts.push({ lat: r.tech.Home.Lat, lon: r.tech.Home.Lon });
    for (const v of r.stops) pts.push({ lat: v.Lat, lon: v.Lon });
  }
  const k = Math.cos(((b.Lat || 0) * Math.PI) / 180);
  const xs = pts.map((p) => p.lon * k);
  const ys = pts.map((p) => -p.lat);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = Math.min((W - 2 * PAD) / Math.max(x1 - x0, 1e-4), (H - 2 * PAD) / Math.max(y1 - y0, 1e-4));
  const ox = (W - (x1 - x0) * scale) / 2;
  const oy = (H - (y1 - y0) * scale) / 2;
  const px = (lat, lon) => [ox + (lon * k - x0) * scale, oy + (-lat - y0) * scale];
  const drawn = routes.filter((r) => r.stops.length);
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'map', role: 'img', id: 'map',
    'aria-label': `Map of ${drawn.length} route${drawn.length === 1 ? '' : 's'} from each technician's home through the visits in order and back.`,
  });
  svg.append(s('rect', { x: 0, y: 0, width: W, height: H, class: 'map__bg' }));
  const [cx, cy] = px(b.Lat, b.Lon);
  svg.append(s('g', { class: 'map__center' }, s('title', {}, `Work center ${b.Name || b.ServiceAreaID}`),
    s('path', { d: `M${cx} ${cy - 9} L${cx + 8} ${cy + 6} L${cx - 8} ${cy + 6} Z` })));
  const faded = (r) => (sel.tech && sel.tech !== r.tech.UserName ? ' is-faded' : '');
  // Routes first, then every stop above every line.
  for (const r of drawn) {
    const home = px(r.tech.Home.Lat, r.tech.Home.Lon);
    const line = [home, ...r.stops.map((v) => px(v.Lat, v.Lon)), home].map((p) => p.map((n) => n.toFixed(1)).join(',')).join(' ');
    const colour = colours.get(r.tech.UserName);
    const g = s('g', { class: 'route' + faded(r) + (sel.tech === r.tech.UserName ? ' is-selected' : ''), 'data-route': r.tech.UserName, 'data-stops': r.stops.length });
    g.append(s('polyline', { points: line, stroke: colour, class: 'route__line' }));
    g.append(s('rect', { x: home[0] - 6, y: home[1] - 6, width: 12, height: 12, fill: colour, class: 'route__home' }, s('title', {}, `Home of ${r.tech.Name || r.tech.UserName}`)));
    g.addEventListener('click', () => sel.onSelect({ tech: r.tech.UserName, visit: null }));
    svg.append(g);
  }
  for (const r of drawn) {
    const colour = colours.get(r.tech.UserName);
    const g = s('g', { class: 'stops' + faded(r), 'data-stops-of': r.tech.UserName });
    for (const v of r.stops) {
      const [x, y] = px(v.Lat, v.Lon);
      const on = sel.visit === v.OrderNum;
      const m = s('g', { class: 'stop' + (on ? ' is-selected' : ''), 'data-stop': v.OrderNum, 'data-tech': r.tech.UserName, 'data-n': v.Stop },
        s('title', {}, `${v.Stop}. ${v.OrderNum}, ${v.Customer || ''} (${r.tech.Name || r.tech.UserName})`),
        s('circle', { cx: x, cy: y, r: 10, fill: colour }),
        s('text', { x, y: y + 4, 'text-anchor': 'middle', class: 'stop__n' }, v.Stop));
      m.addEventListener('click', (e) => { e.stopPropagation(); sel.onSelect({ tech: r.tech.UserName, visit: v.OrderNum }); });
      g.append(m);
    }
    svg.append(g);
  }
  return svg;
}

/** Moves the highlight on a drawn map without drawing it again (a choice on a large board is
 * instant). */
export function highlight(svg, sel) {
  if (!svg) return;
  for (const g of svg.querySelectorAll('.route')) {
    g.classList.toggle('is-selected', sel.tech === g.dataset.route);
    g.classList.toggle('is-faded', !!sel.tech && sel.tech !== g.dataset.route);
  }
  for (const g of svg.querySelectorAll('.stops')) g.classList.toggle('is-faded', !!sel.tech && sel.tech !== g.dataset.stopsOf);
  for (const g of svg.querySelectorAll('.stop.is-selected')) g.classList.remove('is-selected');
  const on = sel.visit && svg.querySelector(`.stop[data-stop="${CSS.escape(sel.visit)}"]`);
  if (on) {
    on.classList.add('is-selected');
    on.parentElement.append(on); // drawn above its neighbours
    svg.append(on.parentElement);
  }
}
