// The console's entry point: login, then the map, the side panel, the lists and the two live
// streams (alarms, topology). Hooks for tests and the benchmark: body[data-map-state],
// performance.mark('map-interactive'), window.ossConsole.cy.
import { api, onUnauthorized, session } from './api.js';
import { $, el, notify } from './dom.js';
import { AlarmList, objectOf } from './alarms.js';
import { CustomerList, ServiceList } from './lists.js';
import { DEFAULT_VIEW, TopologyMap, VIEW_NAME } from './map.js';
import { Panel } from './panel.js';
import { subscribe } from './sse.js';

const ROLES = { viewer: 1, operator: 2, admin: 3 };
const UTILISATION_POLL_MS = 30000;
const MAP_REFRESH_MS = 250; // coalesces a burst of changes into one map read
const PANEL_REFRESH_MS = 2000;

const state = { me: null, stops: [], streams: {}, map: null, panel: null, alarms: null };
window.ossConsole = { cy: null, state };

const canOperate = () => (ROLES[state.me?.role] || 0) >= ROLES.operator;

function showLogin(message = '') {
  for (const stop of state.stops.splice(0)) stop();
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  document.body.dataset.view = 'login';
  $('login-token').focus();
}

async function start() {
  if (!session.token) { showLogin(); return; }
  try {
    state.me = await api('/api/v1/me');
  } catch (error) {
    session.clear();
    showLogin(error.status === 401 ? 'The token was refused (unknown, expired or revoked).' : error.message);
    return;
  }
  showApp();
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('login-token').value.trim();
  $('login-token').value = '';
  if (!token) return;
  session.save(token);
  start();
});

onUnauthorized(() => { session.clear(); showLogin('Signed out: the token is no longer accepted.'); });

function whoami() {
  const me = state.me;
  $('whoami').replaceChildren(el('span', { text: me.name }), el('span', { class: 'role', dataset: { role: me.role }, text: me.role }));
  document.body.dataset.role = me.role;
}

let mapTimer = null;
let panelTimer = null;
function mapChanged() {
  clearTimeout(mapTimer);
  mapTimer = setTimeout(() => { if (state.map.doc) state.map.refresh(); }, MAP_REFRESH_MS);
  if (!panelTimer) {
    panelTimer = setTimeout(() => { panelTimer = null; state.panel.refresh(); }, PANEL_REFRESH_MS);
  }
}

function liveState(name, value) {
  state.streams[name] = value;
  document.body.dataset[`${name}Stream`] = value; // body[data-alarms-stream=live]
  const all = Object.values(state.streams);
  const live = all.length === 2 && all.every((v) => v === 'live');
  const badge = $('live');
  badge.dataset.state = live ? 'live' : 'reconnecting';
  badge.textContent = live ? '● live' : '◌ reconnecting';
}

function focusAlarm(alarm) {
  const target = objectOf(alarm);
  if (target.kind === 'service') { state.panel.service(target.name); return; }
  if (target.kind === 'device') state.panel.device(target.name);
  else if (target.kind === 'interface') state.panel.device(target.device);
  else if (target.kind === 'link') state.panel.link(target.id);
  state.map.highlight(target);
  document.body.dataset.focused = `${target.kind}:${target.name ?? target.id ?? `${target.device}:${target.interface}`}`;
}

function tabs(lists) {
  const names = ['alarms', 'services', 'customers'];
  const loaded = new Set(['alarms']);
  const select = (name) => {
    for (const other of names) {
      $(`tab-${other}`).setAttribute('aria-selected', String(other === name));
      $(`${other}-view`).hidden = other !== name;
    }
    if (!loaded.has(name)) {
      loaded.add(name);
      lists[name].reload().catch((error) => notify(error.message, { error: true }));
    }
  };
  names.forEach((name, i) => {
    const tab = $(`tab-${name}`);
    tab.addEventListener('click', () => select(name));
    tab.addEventListener('keydown', (event) => {
      const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
      if (!step) return;
      const next = names[(i + step + names.length) % names.length];
      select(next);
      $(`tab-${next}`).focus();
    });
  });
}

function toolbar(map, panel) {
  const search = $('search');
  search.addEventListener('input', () => map.search(search.value));
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      const found = map.search(search.value, { unfold: true });
      if (found && found.nonempty()) panel.device(found.first().data('name'));
    } else if (event.key === 'Escape') {
      search.value = '';
      map.search('');
    }
  });
  document.addEventListener('keydown', (event) => {
    if (event.key === '/' && !['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement?.tagName)) {
      event.preventDefault();
      search.focus();
    }
  });
  const expand = async (name) => {
    const hops = Number($('hops').value);
    await map.load({ around: name, hops });
    const banner = $('focus-banner');
    banner.textContent = `${hops} hop(s) around ${name}`;
    banner.hidden = false;
    $('show-all').hidden = false;
  };
  $('expand').addEventListener('click', () => {
    const name = panel.current?.kind === 'device' ? panel.current.key : map.search(search.value)?.first()?.data('name');
    if (!name) { notify('Select a device (or search for one) to expand its neighbours.'); return; }
    expand(name).catch((error) => notify(error.message, { error: true }));
  });
  $('show-all').addEventListener('click', async () => {
    $('focus-banner').hidden = true;
    $('show-all').hidden = true;
    await map.load({}).catch((error) => notify(error.message, { error: true }));
  });
  $('fit').addEventListener('click', () => map.fit());
  $('expand-all').addEventListener('click', () => map.toggleOverview());
  views(map);
  let poll = null;
  const utilisation = async () => {
    try {
      const doc = await api('/api/v1/map/utilisation');
      map.applyUtilisation(doc.links || {});
    } catch (error) {
      notify(`Utilisation: ${error.message}`, { error: true });
    }
  };
  $('util-toggle').addEventListener('change', (event) => {
    const on = event.target.checked;
    map.setUtilisation(on);
    $('util-legend').hidden = !on;
    clearInterval(poll);
    if (on) { utilisation(); poll = setInterval(utilisation, UTILISATION_POLL_MS); }
  });
  state.stops.push(() => clearInterval(poll));
  $('logout').addEventListener('click', () => {
    session.clear();
    for (const stop of state.stops.splice(0)) stop();
    window.location.reload();
  });
  return expand;
}

// The named layouts: pick one to show it (and save drags to it), or name a new one.
async function views(map) {
  const select = $('view');
  const fill = (names) => {
    const all = [...new Set([DEFAULT_VIEW, ...names, map.view])].sort();
    select.replaceChildren(...all.map((name) => el('option', { value: name, text: name })));
    select.value = map.view;
  };
  const show = async (name) => {
    map.view = name;
    fill([...select.options].map((o) => o.value));
    document.body.dataset.layout = name;
    await map.load(map.shape).catch((error) => notify(`Map: ${error.message}`, { error: true }));
  };
  select.addEventListener('change', () => show(select.value));
  const input = $('new-view');
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    const name = input.value.trim();
    if (!VIEW_NAME.test(name)) { notify('A layout name is 1-64 letters, digits, _ . or -', { error: true }); return; }
    input.value = '';
    show(name);
    if (canOperate()) notify(`Layout ${name}: drag a device to save it.`);
  });
  try {
    fill((await api('/api/v1/map/views')).map((v) => v.name));
  } catch (error) {
    fill([]);
    notify(`Layouts: ${error.message}`, { error: true });
  }
}

function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  document.body.dataset.view = 'console';
  whoami();
  const toast = (message, options) => notify(message, options);
  const map = new TopologyMap($('map'), { canSave: canOperate, notify: toast, onSelect: (t) => select(t) });
  state.map = map;
  let expand = null;
  const panel = new Panel($('panel'), {
    map, canOperate,
    openService: (name) => panel.service(name),
    openCustomer: (id) => panel.customer(id),
    focusAlarm,
    expand: (name) => expand(name).catch((error) => notify(error.message, { error: true })),
  });
  state.panel = panel;
  const select = (target) => {
    if (target.kind === 'device') panel.device(target.name);
    else if (target.kind === 'link') panel.link(target.id);
  };
  const alarms = new AlarmList({
    rows: $('alarm-rows'), summary: $('alarm-summary'), count: $('alarm-count'),
    filters: { severity: $('f-severity'), state: $('f-state'), ack: $('f-ack'), device: $('f-device') },
    canOperate, onFocus: focusAlarm, onChange: mapChanged,
  });
  state.alarms = alarms;
  const services = new ServiceList({ rows: $('service-rows'), type: $('s-type'), customer: $('s-customer'), open: (name) => panel.service(name) });
  const customers = new CustomerList({ rows: $('customer-rows'), open: (id) => panel.customer(id) });
  $('s-refresh').addEventListener('click', () => services.reload().catch((error) => notify(error.message, { error: true })));
  $('c-refresh').addEventListener('click', () => customers.reload().catch((error) => notify(error.message, { error: true })));
  tabs({ alarms, services, customers });
  expand = toolbar(map, panel);
  window.ossConsole.map = map;
  window.ossConsole.alarms = alarms;

  map.load().catch((error) => {
    document.body.dataset.mapState = 'error';
    notify(`Map: ${error.message}`, { error: true, ms: 15000 });
  });
  const relogin = () => { session.clear(); showLogin('Signed out: the token is no longer accepted.'); };
  state.stops.push(subscribe('/tmf-api/alarm/v4/alarm/stream', {
    onOpen: () => {
      alarms.reload().catch((error) => notify(`Alarms: ${error.message}`, { error: true }));
      mapChanged();
    },
    onEvent: (event, data) => {
      if (event === 'lost') { alarms.reload().catch(() => {}); mapChanged(); return; }
      if (data && data.id !== undefined) { alarms.upsert(data); mapChanged(); }
    },
    onState: (value) => liveState('alarms', value),
    onUnauthorized: relogin,
  }));
  state.stops.push(subscribe('/api/v1/topology/stream', {
    onOpen: mapChanged,
    onEvent: () => mapChanged(),
    onState: (value) => liveState('topology', value),
    onUnauthorized: relogin,
  }));
}

start();
