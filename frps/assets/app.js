// app.js (frps): the frps dashboard. Hash routes #/overview, #/clients, #/proxies and #/log show
// one <section> each; a view polls its data only while it is shown, and the log view tails the
// vhost access log over server-sent events while shown.
import {
  $, $$, enc, url, api, el, setText, setAttr, setContent, setTime, badge, syncTable, poller, notify,
  notifyError, confirmDialog, drawChart, fmtBytes, fmtRate, fmtNum, fmtDuration, fmtAbs, fmtAgo,
} from './common.js';

// ---- Overview ------------------------------------------------------------------------------

/** When the interval of a lone traffic point began (ms): when frps started, its first interval
 * being under way; null when there are earlier points (the chart measures from the last one). */
async function startOf(data) {
  if (!data || !data.points || data.points.length !== 1) return null;
  return Date.parse((await api('/api/v1/serverinfo')).startedAt);
}

/** Writes a figure into [data-stat=name], its raw value in data-value. */
function stat(name, value, fmt = fmtNum) {
  const node = $(`[data-stat="${name}"]`);
  if (!node) return;
  setAttr(node, 'data-value', value == null ? null : value);
  setText(node, value == null ? '–' : fmt(value));
}

function overviewView() {
  let last = null;
  const info = poller(async () => showInfo(await api('/api/v1/serverinfo')), 1000);
  const history = poller(async () => {
    const data = await api('/api/v1/traffic');
    drawChart($('#traffic-chart'), data, 'Traffic', await startOf(data));
  }, 10000);

  function showInfo(d) {
    const counts = d.proxyCounts || {};
    stat('clients', d.clientCounts);
    stat('proxies', Object.values(counts).reduce((a, b) => a + b, 0));
    for (const t of ['tcp', 'http', 'https']) stat(`proxies-${t}`, counts[t] || 0);
    stat('connections', d.connections);
    stat('bytesIn', d.bytesIn, fmtBytes);
    stat('bytesOut', d.bytesOut, fmtBytes);
    stat('uptime', d.uptimeSeconds, fmtDuration);
    stat('version', d.version, String);
    showRate(d.bytesIn + d.bytesOut);
    const req = d.vhostRequests || {};
    for (const c of ['1xx', '2xx', '3xx', '4xx', '5xx']) stat(`requests-${c}`, req[c] ?? null);
    for (const k of ['bindAddr', 'vhostHTTPAddr', 'vhostHTTPSAddr']) stat(k, d[k] || 'off', String);
    stat('startedAt', d.startedAt, (v) => `${fmtAbs(v)}, ${fmtAgo(v)}`);
    stat('revokedCertificates', d.revokedCertificates);
    const h = d.handshakes;
    stat('handshakes', h ? `${h.completed} completed, ${h.underWay} under way, ${h.refused} refused, `
      + `${h.tlsRefused} TLS refused, ${h.failed} failed` : null, String);
  }

  /** The rate from the change in bytes since the previous poll. */
  function showRate(total) {
    const now = performance.now();
    if (last && now > last.at) stat('rate', Math.max(0, (total - last.total) / ((now - last.at) / 1000)), fmtRate);
    last = { at: now, total };
  }

  return {
    start() { last = null; info.start(); history.start(); },
    stop() { info.stop(); history.stop(); },
  };
}

// ---- Clients -------------------------------------------------------------------------------

const clientCols = [
  (td, c) => setText(td, c.identity),
  (td, c) => setText(td, c.addr),
  (td, c) => setTime(td, c.connectedSince),
  (td, c) => setText(td, c.rttMs == null ? '–' : `${c.rttMs.toFixed(1)} ms`),
  (td, c) => setText(td, (c.proxies || []).join(', ') || '–'),
  (td, c) => setText(td, fmtNum(c.connections)),
  (td, c) => setText(td, fmtBytes(c.bytesIn)),
  (td, c) => setText(td, fmtBytes(c.bytesOut)),
  clientActions,
];

function clientActions(td, c) {
  if (!td.firstChild) {
    td.append(
      el('button', { type: 'button', 'data-action': 'disconnect', 'aria-label': `Disconnect ${c.identity}` }, 'Disconnect'),
      el('button', { type: 'button', class: 'danger', 'data-action': 'revoke', 'aria-label': `Revoke the certificate of ${c.identity}` }, 'Revoke'));
  }
  const revoke = td.lastChild;
  revoke.disabled = !(c.certificate && c.certificate.fingerprint);
  setAttr(revoke, 'title', revoke.disabled ? 'The server did not report this client\'s certificate' : null);
}

/** Closes client `c`'s connection (it reconnects); `list` is polled again after. */
async function disconnectClient(c, button, list) {
  button.disabled = true;
  try {
    await api(`/api/v1/clients/${enc(c.key || c.identity)}`, { method: 'DELETE' });
    notify(`Disconnected ${c.identity}: it reconnects unless its certificate is revoked.`, 'ok');
  } catch (e) {
    notifyError(`Could not disconnect ${c.identity}`, e);
  } finally {
    button.disabled = false;
    list.now();
  }
}

/** Revokes client `c`'s certificate after a confirmation that names it. */
async function revokeClient(c, list) {
  const cert = c.certificate;
  const ok = await confirmDialog(`Revoke the certificate of ${c.identity}?`,
    'The certificate is added to the revocation list: the client is disconnected and refused from now on.',
    [['Client', c.identity], ['Subject', cert.subject], ['Serial', cert.serial],
      ['SHA-256', cert.fingerprint], ['Expires', cert.notAfter ? fmtAbs(cert.notAfter) : '–']], 'Revoke');
  if (!ok) return;
  try {
    const r = await api('/api/v1/revocations', { method: 'POST', body: { fingerprint: cert.fingerprint } });
    notify(`Revoked the certificate of ${c.identity}: ${r.entry}${r.alreadyListed ? ' (already listed)' : ''}; `
      + `${r.disconnected} client(s) disconnected.`, 'ok');
  } catch (e) {
    notifyError(`Could not revoke the certificate of ${c.identity}`, e);
  }
  list.now();
}

function clientsView() {
  const table = $('#clients');
  const clients = new Map();
  const list = poller(async () => render(await api('/api/v1/clients')), 1000);

  function render(items) {
    clients.clear();
    for (const c of items) clients.set(c.identity, c);
    const n = syncTable(table, items, (c) => c.identity, clientCols, (tr, c) => {
      setAttr(tr, 'data-client', c.identity);
      setAttr(tr, 'data-bytes-in', c.bytesIn);
      setAttr(tr, 'data-bytes-out', c.bytesOut);
    });
    $('#clients-empty').hidden = n > 0;
  }

  table.addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    const c = button && clients.get(button.closest('tr').dataset.client);
    if (!c) return;
    if (button.dataset.action === 'disconnect') disconnectClient(c, button, list);
    else if (button.dataset.action === 'revoke') revokeClient(c, list);
  });

  return { start: list.start, stop: list.stop };
}

// ---- Proxies -------------------------------------------------------------------------------

const proxyKey = (p) => `${p.clientKey || p.client}/${p.name}`;

function proxyStatus(td, p) {
  const tone = p.status === 'running' ? 'ok' : 'err';
  setContent(td, `${p.status}\n${p.lastError || ''}`, () => [badge(p.status, tone),
    p.lastError ? el('span', { class: 'reason' }, p.lastError) : null]);
}

function proxyPublic(td, p) {
  const names = (p.domains || []).join(', ');
  const paths = (p.locations || []).filter((l) => l && l !== '/').join(', ');
  const sub = [names, paths && `paths ${paths}`].filter(Boolean).join(' · ');
  setContent(td, `${p.remoteAddr}\n${sub}`, () => [el('span', { class: 'mono' }, p.remoteAddr || '–'),
    sub ? el('span', { class: 'sub' }, sub) : null]);
}

/** A "Chart" button (aria-pressed while its chart is open) on the rows of running proxies only. */
function chartButton(td, p, pressed) {
  const running = p.status === 'running';
  setContent(td, running ? 'chart' : '', () => (running ? [el('button', { type: 'button', 'data-action': 'chart',
    'aria-pressed': 'false', 'aria-label': `Traffic chart of ${p.name} (${p.client})` }, 'Chart')] : []));
  if (td.firstChild) setAttr(td.firstChild, 'aria-pressed', String(pressed));
}

/** A proxy's traffic history, or `{ gone }` (the error) when it is no longer published: 404, or 409
 * when several clients now have its name. */
async function proxyTraffic(p) {
  try {
    return await api(`/api/v1/proxies/${enc(p.name)}/traffic?client=${enc(p.clientKey || p.client)}`);
  } catch (e) {
    if (e.status === 404 || e.status === 409) return { gone: e };
    throw e;
  }
}

/**
 * The traffic chart of one proxy (#proxy-chart-box), polled every 10 s while open and shown.
 * A proxy no longer published stops the polling, and the box says so.
 */
function proxyChart(table) {
  const box = $('#proxy-chart-box'), note = $('#proxy-chart-note'), chart = $('#proxy-chart');
  let selected = null;
  const history = poller(async () => {
    const s = selected;
    const data = s && await proxyTraffic(s);
    const since = data && !data.gone ? await startOf(data) : null;
    if (!s || s !== selected) return;
    if (data.gone) return gone(s, data.gone);
    note.hidden = true;
    drawChart(chart, data, `Traffic of ${s.name}`, since);
  }, 10000);

  function gone(s, e) {
    history.stop();
    setText(note, `${s.name} (client ${s.client}) is no longer published: the chart stopped updating (${e.message}).`);
    note.hidden = false;
  }
  const isOpen = (key) => selected != null && proxyKey(selected) === key;
  const buttons = () => $$('button[data-action="chart"]', table);
  const keyOf = (button) => button.closest('tr').dataset.key;
  const press = () => buttons().forEach((b) => setAttr(b, 'aria-pressed', String(isOpen(keyOf(b)))));

  function open(p) {
    selected = p;
    press();
    box.hidden = false;
    note.hidden = true;
    setText($('#proxy-chart-title'), `Traffic of ${p.name} (client ${p.client}), last hour`);
    drawChart(chart, null, `Traffic of ${p.name}`);
    box.scrollIntoView({ block: 'nearest' });
    history.stop();
    history.start();
  }

  /** Closes the chart; with `refocus`, focus goes to the proxy's Chart button (else the table). */
  function close(refocus) {
    const key = selected && proxyKey(selected);
    selected = null;
    history.stop();
    box.hidden = true;
    press();
    if (refocus) (buttons().find((b) => keyOf(b) === key) || table).focus();
  }

  $('#proxy-chart-close').addEventListener('click', () => close(true));
  const toggle = (p) => (isOpen(proxyKey(p)) ? close(false) : open(p));
  const start = () => { if (selected) history.start(); };
  return { isOpen, close, toggle, selected: () => selected, start, stop: history.stop };
}

function proxiesView() {
  const table = $('#proxies'), type = $('#proxy-type');
  const proxies = new Map();
  const chart = proxyChart(table);
  const list = poller(async () => {
    render(await api(`/api/v1/proxies${type.value ? `?type=${enc(type.value)}` : ''}`));
  }, 1000);
  const cols = [
    (td, p) => setText(td, p.name),
    (td, p) => setText(td, p.type),
    (td, p) => setText(td, p.client),
    proxyStatus,
    proxyPublic,
    (td, p) => setText(td, fmtNum(p.connections)),
    (td, p) => setText(td, fmtBytes(p.bytesIn)),
    (td, p) => setText(td, fmtBytes(p.bytesOut)),
    (td, p) => chartButton(td, p, chart.isOpen(proxyKey(p))),
  ];

  function render(items) {
    proxies.clear();
    for (const p of items) proxies.set(proxyKey(p), p);
    const n = syncTable(table, items, proxyKey, cols, (tr, p) => {
      setAttr(tr, 'data-proxy', p.name);
      setAttr(tr, 'data-client', p.client);
      setAttr(tr, 'data-type', p.type);
      setAttr(tr, 'data-status', p.status);
      setAttr(tr, 'data-bytes-in', p.bytesIn);
      setAttr(tr, 'data-bytes-out', p.bytesOut);
    });
    $('#proxies-empty').hidden = n > 0;
  }

  table.addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action="chart"]');
    const p = button && proxies.get(button.closest('tr').dataset.key);
    if (p) chart.toggle(p);
  });
  type.addEventListener('change', () => {
    // A chart of a proxy the filter no longer lists goes.
    const s = chart.selected();
    if (s && type.value && s.type !== type.value) chart.close(false);
    list.now();
  });

  return {
    start() { list.start(); chart.start(); },
    stop() { list.stop(); chart.stop(); },
  };
}

// ---- Access log ----------------------------------------------------------------------------

const MAX_ROWS = 500;
const STATUS_FILTER = /^([1-5][0-9][0-9]|[1-5]xx)?$/i;

function setLogState(state, text) {
  const node = $('#log-state');
  setAttr(node, 'data-state', state);
  setText(node, text);
}

/** The log filters as a query, or null (with the reason shown) when the status filter is invalid. */
function logFilters() {
  const statusInput = $('#log-status');
  const host = $('#log-host').value.trim(), status = statusInput.value.trim().toLowerCase();
  const valid = STATUS_FILTER.test(status);
  setText($('#log-status-error'), valid ? '' : 'Status: a code such as 404 or a class such as 4xx');
  setAttr(statusInput, 'aria-invalid', valid ? null : 'true');
  if (!valid) return null;
  const q = new URLSearchParams();
  if (host) q.set('host', host);
  if (status) q.set('status', status);
  return q.toString();
}

/** One access log entry as a table row. */
function logRow(e) {
  const code = Number(e.status) || 0;
  const tone = code >= 500 ? 'err' : code >= 400 ? 'warn' : code >= 200 && code < 400 ? 'ok' : 'muted';
  const iso = e.receivedAt.toISOString();
  return el('tr', { 'data-host': e.host ?? '', 'data-status': e.status ?? '' },
    el('td', {}, el('time', { datetime: iso, title: fmtAbs(iso) }, e.receivedAt.toLocaleTimeString())),
    el('td', {}, badge(String(e.status ?? '–'), tone)),
    el('td', {}, e.method ?? ''),
    el('td', { class: 'mono' }, e.host ?? ''),
    el('td', { class: 'mono path' }, e.path ?? ''),
    el('td', { class: 'num' }, fmtBytes(e.bytes)),
    el('td', { class: 'num' }, e.durationMs == null ? '–' : `${e.durationMs} ms`),
    el('td', {}, e.proxy ?? ''),
    el('td', { class: 'mono' }, e.client ?? ''));
}

/** The log table (newest first, at most MAX_ROWS) and its pause button, which holds new rows back. */
function logTable() {
  const body = $('#access-log').tBodies[0], pause = $('#log-pause');
  let paused = false, held = [];

  function add(e) {
    body.prepend(logRow(e));
    while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
    $('#log-empty').hidden = true;
  }

  function receive(entry) {
    if (!paused) return add(entry);
    held.push(entry);
    if (held.length > MAX_ROWS) held.shift();
    setText(pause, `Resume (${held.length} new)`);
  }

  function clear() {
    body.replaceChildren();
    held = [];
    $('#log-empty').hidden = false;
    if (paused) setText(pause, 'Resume');
  }

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    setText(pause, paused ? 'Resume' : 'Pause');
    if (!paused) { for (const e of held) add(e); held = []; }
  });
  $('#log-clear').addEventListener('click', clear);
  return { receive, clear };
}

function logView() {
  const rows = logTable();
  let source = null, query = null;

  function connect() {
    const q = logFilters();
    if (q == null) return;
    close();
    if (q !== query) rows.clear();
    query = q;
    source = new EventSource(url(`/api/v1/access-log${q ? `?${q}` : ''}`));
    setLogState('connecting', 'Connecting…');
    source.onopen = () => setLogState('live', q ? 'Live (filtered)' : 'Live');
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setLogState('closed', 'Disconnected: the server refused the stream (log in again, or check the filters and apply)');
      } else setLogState('connecting', 'Connection lost, reconnecting…');
    };
    source.onmessage = (ev) => receive(ev.data);
  }

  function close() {
    if (source) source.close();
    source = null;
    setLogState('closed', 'Not connected');
  }

  function receive(data) {
    let entry;
    try { entry = JSON.parse(data); } catch { return; }
    entry.receivedAt = new Date();
    rows.receive(entry);
  }

  $('#log-filters').addEventListener('submit', (ev) => { ev.preventDefault(); connect(); });
  for (const input of [$('#log-host'), $('#log-status')]) input.addEventListener('change', connect);

  return { start: connect, stop: close };
}

// ---- Routing -------------------------------------------------------------------------------

const views = new Map([
  ['overview', overviewView()], ['clients', clientsView()], ['proxies', proxiesView()], ['log', logView()],
]);
let current = null;

/** Shows the view the hash names (#/clients ...), the overview for an unknown name; hashes not
 * starting with #/ leave it as it is. */
function route(focus) {
  const hash = location.hash;
  let name = hash.startsWith('#/') ? hash.slice(2) : current ? null : 'overview';
  if (name == null) return;
  if (!views.has(name)) name = 'overview';
  if (name === current) return;
  if (current) { views.get(current).stop(); notify(''); }
  current = name;
  for (const key of views.keys()) $(`#view-${key}`).hidden = key !== name;
  for (const a of $$('nav a')) setAttr(a, 'aria-current', a.getAttribute('href') === `#/${name}` ? 'page' : null);
  const heading = $(`#view-${name} h2`);
  document.title = `${heading.textContent} · frps`;
  views.get(name).start();
  if (focus) heading.focus();
}

window.addEventListener('hashchange', () => route(true));
route(false);
