// app.js (frps): the frps dashboard. Hash routes #/overview, #/clients, #/proxies and #/log show
// one <section> each; a view polls its data only while it is shown, and the log view tails the
// vhost access log over server-sent events while shown.
import {
  $, $$, enc, url, api, el, setText, setAttr, setContent, setTime, badge, syncTable, poller, notify,
  notifyError, confirmDialog, drawChart, fmtBytes, fmtRate, fmtNum, fmtDuration, fmtAbs, fmtAgo,
} from './common.js';

// ---- Overview ------------------------------------------------------------------------------

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
  const history = poller(async () => drawChart($('#traffic-chart'), await api('/api/v1/traffic'), 'Traffic'), 10000);

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

function clientsView() {
  const table = $('#clients');
  const clients = new Map();
  const list = poller(async () => render(await api('/api/v1/clients')), 1000);

  const cols = [
    (td, c) => setText(td, c.identity),
    (td, c) => setText(td, c.addr),
    (td, c) => setTime(td, c.connectedSince),
    (td, c) => setText(td, c.rttMs == null ? '–' : `${c.rttMs.toFixed(1)} ms`),
    (td, c) => setText(td, (c.proxies || []).join(', ') || '–'),
    (td, c) => setText(td, fmtNum(c.connections)),
    (td, c) => setText(td, fmtBytes(c.bytesIn)),
    (td, c) => setText(td, fmtBytes(c.bytesOut)),
    actions,
  ];

  function actions(td, c) {
    if (!td.firstChild) {
      td.append(
        el('button', { type: 'button', 'data-action': 'disconnect', 'aria-label': `Disconnect ${c.identity}` }, 'Disconnect'),
        el('button', { type: 'button', class: 'danger', 'data-action': 'revoke', 'aria-label': `Revoke the certificate of ${c.identity}` }, 'Revoke'));
    }
    const revoke = td.lastChild;
    revoke.disabled = !(c.certificate && c.certificate.fingerprint);
    setAttr(revoke, 'title', revoke.disabled ? 'The server did not report this client\'s certificate' : null);
  }

  function render(items) {
    clients.clear();
    for (const c of items) clients.set(c.identity, c);
    const n = syncTable(table, items, (c) => c.identity, cols, (tr, c) => {
      setAttr(tr, 'data-client', c.identity);
      setAttr(tr, 'data-bytes-in', c.bytesIn);
      setAttr(tr, 'data-bytes-out', c.bytesOut);
    });
    $('#clients-empty').hidden = n > 0;
  }

  async function disconnect(c, button) {
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

  async function revoke(c) {
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

  table.addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action]');
    const c = button && clients.get(button.closest('tr').dataset.client);
    if (!c) return;
    if (button.dataset.action === 'disconnect') disconnect(c, button);
    else if (button.dataset.action === 'revoke') revoke(c);
  });

  return { start: list.start, stop: list.stop };
}

// ---- Proxies -------------------------------------------------------------------------------

const proxyKey = (p) => `${p.clientKey || p.client}/${p.name}`;

function proxiesView() {
  const table = $('#proxies'), type = $('#proxy-type'), box = $('#proxy-chart-box');
  const proxies = new Map();
  let selected = null;
  const list = poller(async () => {
    render(await api(`/api/v1/proxies${type.value ? `?type=${enc(type.value)}` : ''}`));
  }, 1000);
  const history = poller(async () => {
    if (!selected) return;
    const s = selected;
    const data = await api(`/api/v1/proxies/${enc(s.name)}/traffic?client=${enc(s.clientKey || s.client)}`);
    if (s === selected) drawChart($('#proxy-chart'), data, `Traffic of ${s.name}`);
  }, 10000);

  const cols = [
    (td, p) => setText(td, p.name),
    (td, p) => setText(td, p.type),
    (td, p) => setText(td, p.client),
    status,
    pub,
    (td, p) => setText(td, fmtNum(p.connections)),
    (td, p) => setText(td, fmtBytes(p.bytesIn)),
    (td, p) => setText(td, fmtBytes(p.bytesOut)),
    chartButton,
  ];

  function status(td, p) {
    const tone = p.status === 'running' ? 'ok' : 'err';
    setContent(td, `${p.status}\n${p.lastError || ''}`, () => [badge(p.status, tone),
      p.lastError ? el('span', { class: 'reason' }, p.lastError) : null]);
  }

  function pub(td, p) {
    const names = (p.domains || []).join(', ');
    const paths = (p.locations || []).filter((l) => l && l !== '/').join(', ');
    const sub = [names, paths && `paths ${paths}`].filter(Boolean).join(' · ');
    setContent(td, `${p.remoteAddr}\n${sub}`, () => [el('span', { class: 'mono' }, p.remoteAddr || '–'),
      sub ? el('span', { class: 'sub' }, sub) : null]);
  }

  function chartButton(td, p) {
    if (!td.firstChild) {
      td.append(el('button', { type: 'button', 'data-action': 'chart', 'aria-pressed': 'false',
        'aria-label': `Traffic chart of ${p.name} (${p.client})` }, 'Chart'));
    }
    setAttr(td.firstChild, 'aria-pressed', String(selected != null && proxyKey(selected) === proxyKey(p)));
  }

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

  function select(p) {
    selected = p;
    for (const b of $$('button[data-action="chart"]', table)) b.setAttribute('aria-pressed', 'false');
    box.hidden = !p;
    if (!p) return history.stop();
    const row = [...table.tBodies[0].rows].find((r) => r.dataset.key === proxyKey(p));
    if (row) $('button[data-action="chart"]', row).setAttribute('aria-pressed', 'true');
    setText($('#proxy-chart-title'), `Traffic of ${p.name} (client ${p.client}), last hour`);
    drawChart($('#proxy-chart'), null, `Traffic of ${p.name}`);
    box.scrollIntoView({ block: 'nearest' });
    history.stop();
    history.start();
  }

  table.addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-action="chart"]');
    const p = button && proxies.get(button.closest('tr').dataset.key);
    if (p) select(p);
  });
  $('#proxy-chart-close').addEventListener('click', () => select(null));
  type.addEventListener('change', () => list.now());

  return {
    start() { list.start(); if (selected) history.start(); },
    stop() { list.stop(); history.stop(); },
  };
}

// ---- Access log ----------------------------------------------------------------------------

const MAX_ROWS = 500;
const STATUS_FILTER = /^([1-5][0-9][0-9]|[1-5]xx)?$/i;

function logView() {
  const body = $('#access-log').tBodies[0], form = $('#log-filters'), pause = $('#log-pause');
  const hostInput = $('#log-host'), statusInput = $('#log-status'), statusError = $('#log-status-error');
  let source = null, query = null, paused = false, held = [];

  function setState(state, text) {
    const node = $('#log-state');
    setAttr(node, 'data-state', state);
    setText(node, text);
  }

  /** The filter query, or null (with the reason shown) when the status filter is invalid. */
  function filters() {
    const host = hostInput.value.trim(), status = statusInput.value.trim().toLowerCase();
    const valid = STATUS_FILTER.test(status);
    setText(statusError, valid ? '' : 'Status: a code such as 404 or a class such as 4xx');
    setAttr(statusInput, 'aria-invalid', valid ? null : 'true');
    if (!valid) return null;
    const q = new URLSearchParams();
    if (host) q.set('host', host);
    if (status) q.set('status', status);
    return q.toString();
  }

  function connect() {
    const q = filters();
    if (q == null) return;
    close();
    if (q !== query) clear();
    query = q;
    source = new EventSource(url(`/api/v1/access-log${q ? `?${q}` : ''}`));
    setState('connecting', 'Connecting…');
    source.onopen = () => setState('live', q ? 'Live (filtered)' : 'Live');
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setState('closed', 'Disconnected: the server refused the stream (log in again, or check the filters and apply)');
      } else setState('connecting', 'Connection lost, reconnecting…');
    };
    source.onmessage = (ev) => receive(ev.data);
  }

  function close() {
    if (source) source.close();
    source = null;
    setState('closed', 'Not connected');
  }

  function receive(data) {
    let entry;
    try { entry = JSON.parse(data); } catch { return; }
    entry.receivedAt = new Date();
    if (!paused) return add(entry);
    held.push(entry);
    if (held.length > MAX_ROWS) held.shift();
    setText(pause, `Resume (${held.length} new)`);
  }

  function add(e) {
    const code = Number(e.status) || 0;
    const tone = code >= 500 ? 'err' : code >= 400 ? 'warn' : code >= 200 && code < 400 ? 'ok' : 'muted';
    const iso = e.receivedAt.toISOString();
    body.prepend(el('tr', { 'data-host': e.host ?? '', 'data-status': e.status ?? '' },
      el('td', {}, el('time', { datetime: iso, title: fmtAbs(iso) }, e.receivedAt.toLocaleTimeString())),
      el('td', {}, badge(String(e.status ?? '–'), tone)),
      el('td', {}, e.method ?? ''),
      el('td', { class: 'mono' }, e.host ?? ''),
      el('td', { class: 'mono path' }, e.path ?? ''),
      el('td', { class: 'num' }, fmtBytes(e.bytes)),
      el('td', { class: 'num' }, e.durationMs == null ? '–' : `${e.durationMs} ms`),
      el('td', {}, e.proxy ?? ''),
      el('td', { class: 'mono' }, e.client ?? '')));
    while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
    $('#log-empty').hidden = true;
  }

  function clear() {
    body.replaceChildren();
    held = [];
    $('#log-empty').hidden = false;
    if (paused) setText(pause, 'Resume');
  }

  function togglePause() {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    setText(pause, paused ? 'Resume' : 'Pause');
    if (!paused) { for (const e of held) add(e); held = []; }
  }

  form.addEventListener('submit', (ev) => { ev.preventDefault(); connect(); });
  for (const input of [hostInput, statusInput]) input.addEventListener('change', connect);
  pause.addEventListener('click', togglePause);
  $('#log-clear').addEventListener('click', clear);

  return { start: connect, stop: close };
}

// ---- Routing -------------------------------------------------------------------------------

const views = { overview: overviewView(), clients: clientsView(), proxies: proxiesView(), log: logView() };
let current = null;

/** Shows the view the hash names (#/clients ...); hashes not starting with #/ leave it as it is. */
function route(focus) {
  const hash = location.hash;
  let name = hash.startsWith('#/') ? hash.slice(2) : current ? null : 'overview';
  if (name == null) return;
  if (!views[name]) name = 'overview';
  if (name === current) return;
  if (current) { views[current].stop(); notify(''); }
  current = name;
  for (const key of Object.keys(views)) $(`#view-${key}`).hidden = key !== name;
  for (const a of $$('nav a')) setAttr(a, 'aria-current', a.getAttribute('href') === `#/${name}` ? 'page' : null);
  const heading = $(`#view-${name} h2`);
  document.title = `${heading.textContent} · frps`;
  views[name].start();
  if (focus) heading.focus();
}

window.addEventListener('hashchange', () => route(true));
route(false);
