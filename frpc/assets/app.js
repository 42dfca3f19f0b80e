// app.js (frpc): the frpc dashboard. Polls /api/v1/status every second (server connection and
// proxies), removes proxies after a confirmation, reloads the config, and adds a proxy from a
// form whose validation errors (the API's messages) show next to the field they concern.
import {
  $, $$, enc, api, el, setText, setAttr, setContent, setTime, badge, syncTable, poller, notify,
  notifyError, confirmDialog,
} from './common.js';

const TONES = { connected: 'ok', running: 'ok', connecting: 'warn', waiting: 'warn', pending: 'warn', refused: 'err' };
const tone = (state) => TONES[state] || 'muted';
const proxies = new Map();

// ---- Status --------------------------------------------------------------------------------

const status = poller(async () => {
  const s = await api('/api/v1/status');
  showServer(s.server || {});
  showProxies(s.proxies || []);
}, 1000);

function showServer(s) {
  const state = $('#server-state');
  setText(state, s.state || 'unknown');
  setAttr(state, 'data-state', s.state || '');
  state.className = `badge ${tone(s.state)}`;
  const field = (name) => $(`[data-server="${name}"]`);
  setText(field('addr'), s.addr || '–');
  setText(field('remoteAddr'), s.remoteAddr || '–');
  setTime(field('since'), s.since);
  setText(field('rtt'), s.rttMs == null ? '–' : `${s.rttMs.toFixed(1)} ms`);
  setText(field('reconnects'), s.reconnects ?? '–');
  setText(field('lastError'), s.lastError || '–');
  field('lastError').classList.toggle('err', !!s.lastError);
  setTime(field('nextRetry'), s.nextRetry);
}

const cols = [
  (td, p) => setText(td, p.name),
  (td, p) => setText(td, p.type),
  (td, p) => setContent(td, p.state, () => [badge(p.state, tone(p.state))]),
  (td, p) => {
    const names = (p.domains || []).join(', ');
    setContent(td, `${p.remoteAddr}\n${names}`, () => [el('span', { class: 'mono' }, p.remoteAddr || '–'),
      names ? el('span', { class: 'sub' }, names) : null]);
  },
  (td, p) => { td.classList.add('mono'); setText(td, p.local || '–'); },
  (td, p) => setContent(td, p.reason || '', () => [p.reason ? el('strong', { class: 'reason' }, p.reason) : '–']),
  (td, p) => {
    if (td.firstChild) return;
    td.append(el('button', { type: 'button', class: 'danger', 'data-action': 'remove', 'aria-label': `Remove ${p.name}` }, 'Remove'));
  },
];

function showProxies(items) {
  proxies.clear();
  for (const p of items) proxies.set(p.name, p);
  const n = syncTable($('#proxies'), items, (p) => p.name, cols, (tr, p) => {
    setAttr(tr, 'data-proxy', p.name);
    setAttr(tr, 'data-state', p.state);
  });
  $('#proxies-empty').hidden = n > 0;
}

// ---- Reload and remove ---------------------------------------------------------------------

/** A reload report as a sentence: "added: a; removed: b" or "no changes". */
function describe(r) {
  if (!r) return 'done';
  const parts = ['added', 'removed', 'changed', 'retargeted']
    .filter((k) => r[k] && r[k].length).map((k) => `${k}: ${r[k].join(', ')}`);
  if (r.serverMoved) parts.push('moved to the new server settings');
  if (r.reconnected) parts.push('reconnected');
  if (r.restartNeeded && r.restartNeeded.length) parts.push(`restart needed for ${r.restartNeeded.join(', ')}`);
  if (r.connected === false) parts.push('not connected: applies at the next connection');
  return parts.length ? parts.join('; ') : 'no changes';
}

async function reload() {
  const button = $('#reload');
  button.disabled = true;
  try {
    notify(`Reloaded the config: ${describe(await api('/api/v1/reload', { method: 'POST' }))}.`, 'ok');
  } catch (e) {
    notifyError('Reload refused', e);
  } finally {
    button.disabled = false;
    status.now();
  }
}

async function remove(p) {
  const ok = await confirmDialog(`Remove proxy ${p.name}?`,
    'It is removed from the config file and withdrawn from the server; connections already open go on.',
    [['Name', p.name], ['Type', p.type], ['Public', p.remoteAddr || '–'], ['Local', p.local || '–']], 'Remove');
  if (!ok) return;
  try {
    const r = await api(`/api/v1/proxies/${enc(p.name)}`, { method: 'DELETE' });
    notify(`Removed ${p.name}: ${describe(r && r.reload)}.`, 'ok');
  } catch (e) {
    notifyError(`Could not remove ${p.name}`, e);
  }
  status.now();
}

// ---- Add a proxy ---------------------------------------------------------------------------

const form = $('#add-proxy');
const FIELDS = ['customDomains', 'subdomain', 'remotePort', 'localPort', 'localIP', 'type', 'name'];
/** The port fields: their label and least value (a remote port of 0 lets the server pick). */
const PORTS = { localPort: ['Local port', 1], remotePort: ['Remote port', 0] };
/** What the server's message starts with that the field beside it says already:
 * "<path>: proxies[N]: " or "<path>: proxies[N]." */
const ENTRY_PREFIX = /^(?:[^\n]*?: )?proxies\[\d+\](?:: |\.)/;

/** Shows only the fields that apply to the selected type. */
function showFieldsForType() {
  const type = form.elements.type.value;
  for (const f of $$('[data-types]', form)) f.hidden = !f.dataset.types.split(' ').includes(type);
}

const shown = (input) => !input.closest('[hidden]');

/** The form as the API's JSON: only non-empty fields shown, ports as numbers, domains as a list. */
function formBody() {
  const body = {};
  for (const input of form.elements) {
    const value = input.name ? input.value.trim() : '';
    if (!value || !shown(input)) continue;
    if (PORTS[input.name]) body[input.name] = Number(value);
    else if (input.name === 'customDomains') body.customDomains = value.split(',').map((d) => d.trim()).filter(Boolean);
    else body[input.name] = value;
  }
  return body;
}

/** The port fields' problems as [[field, message]]: a whole number in range (the local port required). */
function portErrors() {
  const errors = [];
  for (const [name, [label, least]] of Object.entries(PORTS)) {
    const input = form.elements[name], value = input.value.trim();
    if (!shown(input) || (!value && least === 0)) continue;
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(n >= least && n <= 65535)) {
      errors.push([name, `${label}: ${value ? `"${value}" is not` : 'required,'} a whole number from ${least} to 65535`]);
    }
  }
  return errors;
}

function clearErrors() {
  for (const node of $$('[data-error-for]', form)) setText(node, '');
  for (const input of $$('[aria-invalid]', form)) input.removeAttribute('aria-invalid');
}

/** Shows `message` beside `field` (or under the form for "form"), marks the field invalid and
 * focuses it when `focus`. */
function showFieldError(field, message, focus) {
  const input = form.elements[field];
  if (field !== 'form' && (!input || !shown(input))) field = 'form';
  setText($(`[data-error-for="${field}"]`, form), message);
  if (field === 'form') return;
  input.setAttribute('aria-invalid', 'true');
  if (focus) input.focus();
}

/** The field an error concerns: the answer's `field`, else a key the message names, else "form". */
function fieldOf(e) {
  if (e.field && form.elements[e.field]) return e.field;
  if (e.status === 409) return 'name';
  const m = e.message;
  if (/unknown field|expected one of/i.test(m)) return 'form';
  const key = m.match(/proxies\[\d+\]\.(\w+)/);
  if (key && FIELDS.includes(key[1])) return key[1];
  return FIELDS.find((f) => new RegExp(`\\b${f}\\b`).test(m)) || 'form';
}

/** The API's error beside its field, without the file and entry it starts with. */
function showError(e) {
  const field = fieldOf(e);
  const message = field === 'form' ? e.message : e.message.replace(ENTRY_PREFIX, '') || e.message;
  showFieldError(field, message, true);
}

async function addProxy(ev) {
  ev.preventDefault();
  clearErrors();
  setText($('#add-result'), '');
  const invalid = portErrors();
  if (invalid.length) {
    invalid.forEach(([field, message], i) => showFieldError(field, message, i === 0));
    return;
  }
  const body = formBody();
  const button = $('button[type="submit"]', form);
  button.disabled = true;
  try {
    const r = await api('/api/v1/proxies', { method: 'POST', body });
    form.reset();
    showFieldsForType();
    const p = (r && r.proxy) || { name: body.name, state: 'pending' };
    const where = p.state === 'running' ? ` at ${[p.remoteAddr, ...(p.domains || [])].filter(Boolean).join(', ')}`
      : p.reason ? `: ${p.reason}` : '';
    setText($('#add-result'), `Added ${p.name}: ${p.state}${where}.`);
    $('#add-result').className = tone(p.state);
  } catch (e) {
    showError(e);
  } finally {
    button.disabled = false;
    status.now();
  }
}

// ---- Wiring --------------------------------------------------------------------------------

$('#proxies').addEventListener('click', (ev) => {
  const button = ev.target.closest('button[data-action="remove"]');
  const p = button && proxies.get(button.closest('tr').dataset.proxy);
  if (p) remove(p);
});
$('#reload').addEventListener('click', reload);
form.elements.type.addEventListener('change', showFieldsForType);
form.addEventListener('submit', addProxy);
showFieldsForType();
status.start();
