// common.js: helpers shared by the frps and frpc dashboards (an ES module, no dependencies).
// API calls with error handling, formatting, polling without overlap, tables updated row by row,
// an SVG line chart, the confirmation dialog and status messages. Data from the API only ever
// reaches the page as text (textContent, attribute values), never as markup.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
export const enc = encodeURIComponent;

/** An absolute URL on this origin: a page opened as http://user:pass@host/ has a base URL with
 * credentials, against which fetch() and EventSource refuse relative URLs. */
export const url = (path) => new URL(path, location.origin).href;

// ---- API ---------------------------------------------------------------------------------

/** An API answer other than 2xx: `status` (0 when unreachable), the message, maybe a `field`. */
export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

let authLost = false;

/** Calls the same-origin API; resolves to the parsed JSON (or null), throws an ApiError. */
export async function api(path, { method = 'GET', body } = {}) {
  if (authLost) throw new ApiError(401, 'Not logged in');
  const init = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path), init);
  } catch {
    throw new ApiError(0, 'The server could not be reached');
  }
  const data = parseJson(await res.text().catch(() => ''));
  if (res.ok) return data;
  if (res.status === 401) showAuthLost();
  throw new ApiError(res.status, errorMessage(res, data), data && data.field);
}

const parseJson = (text) => { try { return text ? JSON.parse(text) : null; } catch { return null; } };

function errorMessage(res, data) {
  if (data && typeof data.error === 'string') return data.error;
  if (res.status === 401) return 'Not logged in';
  if (res.status === 429) return `Too many failed logins: retry in ${res.headers.get('Retry-After') || 'a few'} s`;
  return `${res.status} ${res.statusText || 'error'}`;
}

/** After a 401 every call stops (each would count as a failed login) and a banner asks to reload. */
function showAuthLost() {
  if (authLost) return;
  authLost = true;
  const reload = el('button', { type: 'button' }, 'Reload and log in');
  reload.addEventListener('click', () => location.reload());
  const banner = el('div', { id: 'auth-banner', class: 'banner', role: 'alert' },
    el('span', {}, 'Your login is no longer accepted. Reload the page to log in again.'), reload);
  document.body.prepend(banner);
  setConnection();
}

// ---- DOM -----------------------------------------------------------------------------------

/** Creates an element: props are attributes (`text` sets textContent); children are nodes or text. */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

/** Sets text only when it changed (no needless DOM writes, selections survive). */
export function setText(node, text) {
  const t = text == null ? '' : String(text);
  if (node.textContent !== t) node.textContent = t;
}

/** Sets or removes an attribute only when it changed. */
export function setAttr(node, name, value) {
  if (value == null) node.removeAttribute(name);
  else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, value);
}

/** Replaces a node's children when `sig` (a summary of what they show) changed. */
export function setContent(node, sig, build) {
  if (node.dataset.sig === sig) return;
  node.dataset.sig = sig;
  node.replaceChildren(...build().filter((c) => c != null));
}

/** Shows a time as "3 min ago" in a <time>, the absolute time in its title. */
export function setTime(node, iso) {
  if (!iso) return setContent(node, '', () => ['–']);
  setContent(node, iso, () => [el('time', { datetime: iso, title: fmtAbs(iso) })]);
  setText(node.firstChild, fmtAgo(iso));
}

/** A coloured badge. */
export function badge(text, tone) {
  return el('span', { class: `badge ${tone}` }, text);
}

/**
 * Brings the rows of `table` in line with `items`, keyed by `key(item)` (kept in `data-key`):
 * existing rows are updated in place and only moved when the order changed, so focus and
 * clicks survive. `cols[i](td, item)` fills cell i (the first is a row header); the cells take
 * the header cells' classes. `onRow(tr, item)` sets row attributes. Returns the row count.
 */
export function syncTable(table, items, key, cols, onRow) {
  const body = table.tBodies[0];
  const heads = table.tHead.rows[0].cells;
  const old = new Map([...body.rows].map((r) => [r.dataset.key, r]));
  let prev = null;
  for (const item of items) {
    const k = key(item);
    let row = old.get(k);
    if (row) old.delete(k);
    else row = newRow(k, heads, cols.length);
    cols.forEach((fill, i) => fill(row.cells[i], item));
    if (onRow) onRow(row, item);
    const want = prev ? prev.nextSibling : body.firstChild;
    if (row !== want) body.insertBefore(row, want);
    prev = row;
  }
  for (const row of old.values()) row.remove();
  return items.length;
}

function newRow(key, heads, n) {
  const row = el('tr', { 'data-key': key });
  for (let i = 0; i < n; i++) {
    const cls = heads[i] ? heads[i].className : '';
    row.append(i ? el('td', { class: cls || null }) : el('th', { scope: 'row', class: cls || null }));
  }
  return row;
}

// ---- Formatting ----------------------------------------------------------------------------

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB". */
export function fmtBytes(n) {
  if (n == null || !Number.isFinite(n)) return '–';
  let i = 0;
  while (Math.abs(n) >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(n < 100 ? 1 : 0) : Math.round(n)} ${UNITS[i]}`;
}

export const fmtRate = (bytesPerSecond) => `${fmtBytes(bytesPerSecond)}/s`;

export const fmtNum = (n) => (n == null ? '–' : Number(n).toLocaleString('en'));

/** 3725 -> "1 h 2 min". */
export function fmtDuration(seconds) {
  if (seconds == null) return '–';
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/** The largest unit only: "12 s", "3 min", "2 h", "4 d". */
function fmtSpan(s) {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** An RFC 3339 time relative to now: "3 min ago", "in 5 s", "just now". */
export function fmtAgo(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso || '–';
  const diff = (Date.now() - t) / 1000;
  if (Math.abs(diff) < 2) return 'just now';
  return diff > 0 ? `${fmtSpan(diff)} ago` : `in ${fmtSpan(-diff)}`;
}

/** An RFC 3339 time in the browser's locale, with its zone. */
export function fmtAbs(iso) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso || '';
  return t.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }) + ` (${iso})`;
}

const hhmm = (t) => new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

// ---- Polling and status --------------------------------------------------------------------

const failures = new Map(); // a token per failing poller -> its error
/** The server is out of reach: no answer (status 0) or a 5xx. */
const unreachable = (e) => e.status === 0 || e.status >= 500;
/** The message, with the HTTP status when it lacks it. */
const describe = (e) => (e.status && !String(e.message).startsWith(String(e.status))
  ? `${e.message} (HTTP ${e.status})` : e.message);

/** #conn-status: "Connection lost, retrying…" while a poll gets no answer or a 5xx; other failures as what they are. */
function setConnection() {
  const node = $('#conn-status');
  if (!node) return;
  const errors = [...failures.values()];
  const lost = errors.find(unreachable);
  node.classList.toggle('lost', authLost || errors.length > 0);
  if (authLost) setText(node, 'Logged out');
  else if (lost) setText(node, `Connection lost, retrying…${lost.status ? ` (${describe(lost)})` : ''}`);
  else setText(node, errors.length ? `Could not update: ${describe(errors[0])}` : '');
}

/**
 * Runs `fn` (async) every `ms` while started: one call at a time, the next one `ms` after the
 * previous began (or at once when it took longer). Errors show in #conn-status; the loop goes on
 * (until a 401, after which nothing is polled). `now()` polls at once, or right after the
 * current call. `fn` may call `stop()`: no further call follows.
 */
export function poller(fn, ms) {
  let running = false, busy = false, again = false, timer = null;
  const me = {};
  function report(e) {
    const had = failures.get(me);
    if (e && running) failures.set(me, e);
    else failures.delete(me);
    if (had !== failures.get(me)) setConnection();
  }
  async function tick() {
    timer = null;
    if (!running || authLost) return;
    if (busy) { again = true; return; }
    busy = true; again = false;
    const began = Date.now();
    try { await fn(); report(null); } catch (e) { report(e); }
    busy = false;
    if (running && !authLost) timer = setTimeout(tick, again ? 0 : Math.max(0, ms - (Date.now() - began)));
  }
  return {
    start() { if (!running) { running = true; tick(); } },
    stop() { running = false; clearTimeout(timer); timer = null; report(null); },
    now() { if (running) { clearTimeout(timer); tick(); } },
  };
}

/** Shows the outcome of an action in #notice (a polite live region). tone: ok | error | info. */
export function notify(message, tone = 'info') {
  const node = $('#notice');
  if (!node) return;
  node.className = `notice ${tone}`;
  node.textContent = message;
}

export const notifyError = (what, e) => notify(`${what}: ${e.message}`, 'error');

// ---- Confirmation dialog -------------------------------------------------------------------

function dialog() {
  let dlg = $('#confirm');
  if (dlg) return dlg;
  dlg = el('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-text' },
    el('h2', { id: 'confirm-title' }),
    el('p', { id: 'confirm-text' }),
    el('dl', { id: 'confirm-details' }),
    el('div', { class: 'buttons' },
      el('button', { type: 'button', id: 'confirm-cancel' }, 'Cancel'),
      el('button', { type: 'button', id: 'confirm-ok', class: 'danger' }, 'Confirm')));
  $('#confirm-cancel', dlg).addEventListener('click', () => dlg.close('cancel'));
  $('#confirm-ok', dlg).addEventListener('click', () => dlg.close('ok'));
  document.body.append(dlg);
  return dlg;
}

/**
 * Asks for confirmation in the modal <dialog id="confirm">: a title, a sentence, and
 * [label, value] rows. Resolves true for #confirm-ok, false for #confirm-cancel or Escape.
 */
export function confirmDialog(title, text, rows = [], okLabel = 'Confirm') {
  const dlg = dialog();
  setText($('#confirm-title', dlg), title);
  setText($('#confirm-text', dlg), text);
  $('#confirm-details', dlg).replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v ?? '–')]));
  setText($('#confirm-ok', dlg), okLabel);
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    $('#confirm-cancel', dlg).focus();
  });
}

// ---- SVG line chart ------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

/** A round top for the y axis in bytes per second, 4 steps, and a label for each step in one unit. */
function scale(max) {
  if (!(max >= 1)) max = 1024;
  const i = Math.min(5, Math.floor(Math.log(max) / Math.log(1024))), unit = 1024 ** i, m = max / unit;
  const p = 10 ** Math.floor(Math.log10(m)), nice = [1, 2, 2.5, 5, 10].find((n) => m / p <= n) * p;
  const label = (v) => `${+(v / unit).toFixed(2)} ${UNITS[i]}/s`;
  return [nice * unit, (nice * unit) / 4, label];
}

/** The rates of one direction: [[ms, bytes per second], ...]. Each `at` ends a `step` s interval, but
 * the last is the one under way (`at` is now): divided by the time since the previous `at`, or for a
 * lone point since `since` (ms, when it began; else `step`), at least 1 s. */
function rates(points, key, step, since) {
  const n = points.length;
  return points.map((p, i) => {
    const t = Date.parse(p.at);
    const from = i < n - 1 ? null : i ? Date.parse(points[i - 1].at) : since;
    const secs = Number.isFinite(from) ? Math.max(1, (t - from) / 1000) : step;
    return [t, (p[key] || 0) / secs];
  });
}

/** A path through the points, broken where an interval is missing. */
function pathOf(vals, x, y, step) {
  let d = '', last = null;
  for (const [t, v] of vals) {
    d += `${last != null && t - last <= step * 1500 ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    last = t;
  }
  return d;
}

/**
 * Draws traffic history `{intervalSeconds, points: [{at, bytesIn, bytesOut}]}` into `node`
 * (an <svg role="img">): the last hour, in and out as two lines, rates on the y axis, clock
 * times on the x axis; its aria-label summarises it. Redrawn on resize. `since` (ms): when
 * the interval of a lone point began (see `rates`).
 */
export function drawChart(node, data, what = 'Traffic', since = null) {
  node._chart = [data, what, since];
  const W = Math.max(280, Math.round(node.clientWidth || node.parentNode.clientWidth || 720));
  const H = 220, L = 72, R = 14, T = 26, B = 24;
  const step = (data && data.intervalSeconds) || 10;
  const points = (data && data.points) || [];
  const end = points.length ? Date.parse(points.at(-1).at) : Date.now(), start = end - 3600e3;
  const lines = [['in', rates(points, 'bytesIn', step, since)], ['out', rates(points, 'bytesOut', step, since)]];
  const max = Math.max(0, ...lines.flatMap(([, v]) => v.map((p) => p[1])));
  const [top, tick, label] = scale(max);
  const x = (t) => L + ((t - start) / 3600e3) * (W - L - R);
  const y = (v) => H - B - (v / top) * (H - T - B);
  const kids = [];
  for (let v = 0; v <= top * 1.0001; v += tick) {
    kids.push(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    kids.push(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, label(v)));
  }
  const every = W < 500 ? 1200e3 : 600e3;
  for (let t = Math.ceil(start / every) * every; t <= end; t += every) {
    kids.push(svg('line', { class: 'axis', x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4 }));
    kids.push(svg('text', { x: x(t), y: H - 6, 'text-anchor': 'middle' }, hhmm(t)));
  }
  kids.push(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  for (const [name, vals] of lines) {
    kids.push(svg('path', { class: `line ${name}`, d: pathOf(vals.filter(([t]) => t >= start), x, y, step) }));
  }
  lines.forEach(([name], i) => {
    const lx = W - R - 150 + i * 75;
    kids.push(svg('rect', { class: name, x: lx, y: 8, width: 14, height: 4, rx: 2 }));
    kids.push(svg('text', { x: lx + 19, y: 14 }, name));
  });
  if (!points.length) kids.push(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No data yet'));
  node.setAttribute('viewBox', `0 0 ${W} ${H}`);
  node.replaceChildren(...kids);
  node.setAttribute('aria-label', summary(what, lines, points.length));
}

function summary(what, lines, n) {
  if (!n) return `${what} over the last hour: no data yet`;
  const [[, ins], [, outs]] = lines;
  const peak = (v) => fmtRate(Math.max(...v.map((p) => p[1])));
  return `${what} over the last hour: now ${fmtRate(ins.at(-1)[1])} in and ${fmtRate(outs.at(-1)[1])} out; `
    + `peak ${peak(ins)} in and ${peak(outs)} out`;
}

let resizeTimer = null;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    for (const node of $$('svg.chart')) if (node._chart && node.clientWidth) drawChart(node, ...node._chart);
  }, 150);
});
