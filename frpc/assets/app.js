// app.js (frpc): the frpc dashboard. Polls /api/v1/status every second (server connection and
// proxies), removes proxies after a confirmation, reloads the config, and adds a proxy from a
// form whose validation errors (the API's messages) show next to the field they concern. The
// same form edits a proxy (data-mode="edit"): filled from its entry in the file, saved with PUT
// keeping the keys the form does not show.
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
    td.append(el('button', { type: 'button', 'data-action': 'edit', 'aria-label': `Edit ${p.name}` }, 'Edit'),
      el('button', { type: 'button', class: 'danger', 'data-action': 'remove', 'aria-label': `Remove ${p.name}` }, 'Remove'));
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
    if (editing && editing.name === p.name) leaveEdit(false);
  } catch (e) {
    notifyError(`Could not remove ${p.name}`, e);
  }
  status.now();
}

// ---- Add or edit a proxy -------------------------------------------------------------------

const form = $('#add-proxy');
const submit = $('#add-submit');
/** The proxy the form edits: { name, config (its keys in the file), button (its row's Edit),
 * locked (an httpPassword the API does not show) }; null in add mode. */
let editing = null;
let loads = 0; // the latest Edit click, so an older answer arriving late is ignored
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
  if (e.field) return FIELDS.includes(e.field) ? e.field : 'form';
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

/** Add mode ("Add a proxy") when `name` is null, else edit mode for proxy `name`. */
function setMode(name, locked = false) {
  const edit = name != null;
  setAttr(form, 'data-mode', edit ? 'edit' : 'add');
  setAttr(form, 'data-editing', edit ? name : null);
  setText($('#h-add'), edit ? `Edit ${name}` : 'Add a proxy');
  setText(submit, edit ? `Save ${name}` : 'Add proxy');
  form.elements.name.readOnly = edit;
  $('#edit-cancel').hidden = !edit;
  submit.disabled = locked;
  setText($('#edit-note'), locked ? `${name} has an httpPassword, which the API does not show: saving it from `
    + 'here would drop the password, so Save is off. Edit this proxy in the config file instead.' : '');
}

/** A config value as the form shows it: lists joined by ", ", absent as empty. */
const asField = (v) => (v == null ? '' : Array.isArray(v) ? v.join(', ') : String(v));

/** Loads proxy `name` (its Edit `button` was clicked) into the form, in edit mode. */
async function startEdit(name, button) {
  const load = ++loads;
  button.setAttribute('aria-busy', 'true');
  let p;
  try {
    p = await api(`/api/v1/proxies/${enc(name)}`);
  } catch (e) {
    if (load === loads) notifyError(`Could not load ${name}`, e);
    return;
  } finally {
    button.removeAttribute('aria-busy');
  }
  if (load !== loads) return;
  const config = p && p.config;
  if (!config || typeof config !== 'object') {
    notify(`${name} has no entry in the config file as it is now: it cannot be edited here.`, 'error');
    return;
  }
  form.reset();
  clearErrors();
  setText($('#add-result'), '');
  for (const f of FIELDS) form.elements[f].value = asField(config[f]);
  form.elements.name.value = name;
  editing = { name, config, button, locked: config.httpPassword === '<redacted>' };
  setMode(name, editing.locked);
  showFieldsForType();
  form.elements.type.focus();
}

/** Back to add mode with an empty form; focus to the row's Edit button when `refocus`. */
function leaveEdit(refocus) {
  const was = editing;
  editing = null;
  loads++;
  form.reset();
  clearErrors();
  setMode(null);
  showFieldsForType();
  if (refocus && was) (was.button.isConnected ? was.button : form.elements.name).focus();
}

/** The PUT body: the form's fields, then every other key of the entry as loaded (the name kept). */
function editBody(edit) {
  const body = formBody();
  body.name = edit.name;
  for (const [k, v] of Object.entries(edit.config)) {
    if (!FIELDS.includes(k) && !(k === 'httpPassword' && v === '<redacted>')) body[k] = v;
  }
  return body;
}

async function saveProxy(ev) {
  ev.preventDefault();
  const edit = editing;
  if (edit && edit.locked) return;
  clearErrors();
  setText($('#add-result'), '');
  const invalid = portErrors();
  if (invalid.length) {
    invalid.forEach(([field, message], i) => showFieldError(field, message, i === 0));
    return;
  }
  const body = edit ? editBody(edit) : formBody();
  submit.disabled = true;
  try {
    const r = edit ? await api(`/api/v1/proxies/${enc(edit.name)}`, { method: 'PUT', body })
      : await api('/api/v1/proxies', { method: 'POST', body });
    const p = (r && r.proxy) || { name: body.name, state: 'pending' };
    const where = p.state === 'running' ? ` at ${[p.remoteAddr, ...(p.domains || [])].filter(Boolean).join(', ')}`
      : p.reason ? `: ${p.reason}` : '';
    setText($('#add-result'), `${edit ? 'Saved' : 'Added'} ${p.name}: ${p.state}${where}.`);
    $('#add-result').className = tone(p.state);
    if (editing !== edit) return; // an Edit click since: that form stays
    if (edit) leaveEdit(true);
    else {
      form.reset();
      showFieldsForType();
    }
  } catch (e) {
    if (editing === edit) showError(e);
  } finally {
    submit.disabled = !!(editing && editing.locked);
    if (document.activeElement === document.body) submit.focus(); // lost when the button was disabled
    status.now();
  }
}

// ---- Wiring --------------------------------------------------------------------------------

$('#proxies').addEventListener('click', (ev) => {
  const button = ev.target.closest('button[data-action]');
  const p = button && proxies.get(button.closest('tr').dataset.proxy);
  if (!p) return;
  if (button.dataset.action === 'edit') startEdit(p.name, button);
  else if (button.dataset.action === 'remove') remove(p);
});
$('#reload').addEventListener('click', reload);
form.elements.type.addEventListener('change', showFieldsForType);
form.addEventListener('submit', saveProxy);
$('#edit-cancel').addEventListener('click', () => leaveEdit(true));
form.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && editing) { ev.preventDefault(); leaveEdit(true); }
});
showFieldsForType();
status.start();
