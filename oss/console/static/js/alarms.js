// The live alarm list: the newest alarms in one TMF642 read, then the SSE stream's changes
// applied in place; re-read on every (re)subscription (catch-up). A root cause folds the
// alarms correlated under it. Ack/clear are the operator's: a viewer sees them disabled, and
// the API refuses them anyway (403, audited).
import { api } from './api.js';
import { arrange, clickable, el, notify } from './dom.js';
import { when } from './format.js';
import { RANK, chip } from './severity.js';

const BASE = '/tmf-api/alarm/v4/alarm';
const READ_LIMIT = 1000;
const CLEARED_LIMIT = 200;

export function objectOf(alarm) {
  const type = alarm.alarmedObjectType || alarm.alarmedObject?.['@referredType'];
  const id = String(alarm.alarmedObject?.id ?? '');
  if (type === 'link') return { kind: 'link', id: Number(id) };
  if (type === 'interface') {
    const cut = id.indexOf(':');
    return { kind: 'interface', device: id.slice(0, cut), interface: id.slice(cut + 1) };
  }
  if (type === 'device') return { kind: 'device', name: id };
  if (type === 'service') return { kind: 'service', name: id };
  return { kind: type || 'object', name: id };
}

// Writes only a changed text: an unchanged one is no DOM mutation.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function deviceOf(alarm) {
  const o = objectOf(alarm);
  return o.kind === 'interface' ? o.device : o.kind === 'device' ? o.name : '';
}

export class AlarmList {
  constructor({ rows, summary, count, filters, canOperate, onFocus, onChange }) {
    this.rows = rows;
    this.summary = summary;
    this.count = count;
    this.filters = filters;
    this.canOperate = canOperate;
    this.onFocus = onFocus;
    this.onChange = onChange;
    this.alarms = new Map();
    this.drawn = new Map(); // alarm id -> { tr, doc, view }: the rows on the page
    this.expanded = new Set();
    this.selected = null;
    this.scheduled = false;
    for (const input of Object.values(filters)) input.addEventListener('input', () => this.render());
  }

  // The open alarms (raised, updated: up to READ_LIMIT each) and the latest cleared ones, in
  // three reads: a burst of cleared alarms never pushes an open one out of the list.
  async reload() {
    const reads = await Promise.all([
      api(`${BASE}?state=raised&limit=${READ_LIMIT}`),
      api(`${BASE}?state=updated&limit=${READ_LIMIT}`),
      api(`${BASE}?state=cleared&limit=${CLEARED_LIMIT}`),
    ]);
    // An alarm read back unchanged keeps its document, so its row is not refilled.
    const same = (known, doc) => known && JSON.stringify(known) === JSON.stringify(doc);
    this.alarms = new Map(reads.flat().map((d) => {
      const known = this.alarms.get(d.id);
      return [d.id, same(known, d) ? known : d];
    }));
    this.render();
  }

  // A streamed change: kept unless an older sequence of the same alarm arrives late.
  upsert(doc) {
    const known = this.alarms.get(doc.id);
    if (known && (known.sequence ?? 0) > (doc.sequence ?? 0)) return;
    this.alarms.set(doc.id, doc);
    this.schedule();
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => { this.scheduled = false; this.render(); });
  }

  visible(alarm) {
    const f = this.filters;
    const state = f.state.value;
    if (state === 'open' ? alarm.state === 'cleared' : state && alarm.state !== state) return false;
    if (f.severity.value && alarm.perceivedSeverity !== f.severity.value) return false;
    if (f.ack.value && alarm.ackState !== f.ack.value) return false;
    const needle = f.device.value.trim().toLowerCase();
    if (needle && !String(alarm.alarmedObject?.id ?? '').toLowerCase().includes(needle)) return false;
    return true;
  }

  // Patches the table to what the alarms and filters show, keyed by alarm id: a row is built
  // once, refilled in place when its alarm (or its fold, selection, role) changed, and moved
  // only if its place changed; hidden ones are removed. A change in a 700-row list touches one
  // row, not the whole table (its style and layout were most of the page's time under load).
  render() {
    const all = [...this.alarms.values()];
    const shown = all.filter((a) => this.visible(a));
    const shownIds = new Set(shown.map((a) => a.id));
    // Children whose root cause is shown fold under it; the others stand alone.
    const children = new Map();
    const top = [];
    for (const a of shown) {
      const parent = a.parentAlarm?.[0]?.id;
      if (parent !== undefined && shownIds.has(Number(parent))) {
        const key = Number(parent);
        if (!children.has(key)) children.set(key, []);
        children.get(key).push(a);
      } else top.push(a);
    }
    const order = (a, b) => (a.state === 'cleared') - (b.state === 'cleared')
      || (RANK[b.perceivedSeverity] || 0) - (RANK[a.perceivedSeverity] || 0)
      || b.id - a.id;
    top.sort(order);
    const operator = this.canOperate();
    const rows = [];
    const drawn = new Map();
    const put = (a, childCount, isChild) => {
      const view = `${childCount}|${isChild}|${this.expanded.has(a.id)}|${this.selected === a.id}|${operator}`;
      let row = this.drawn.get(a.id);
      if (!row) row = { tr: clickable(el('tr'), () => this.select(a.id)), doc: null, view: '' };
      if (row.doc !== a || row.view !== view) {
        this.fill(row.tr, a, childCount, isChild, operator);
        row.doc = a;
        row.view = view;
      }
      drawn.set(a.id, row);
      rows.push(row.tr);
    };
    for (const a of top) {
      const kids = (children.get(a.id) || []).sort(order);
      put(a, kids.length, false);
      if (kids.length && this.expanded.has(a.id)) for (const k of kids) put(k, 0, true);
    }
    arrange(this.rows, rows);
    this.drawn = drawn;
    const open = all.filter((a) => a.state !== 'cleared').length;
    setText(this.count, `(${open} open)`);
    setText(this.summary, `${shown.length} shown of ${all.length} (${open} open)`);
    if (document.body.dataset.openAlarms !== String(open)) document.body.dataset.openAlarms = String(open);
  }

  // The row's classes, data-* hooks and cells for this alarm; the row element stays.
  fill(tr, a, childCount, isChild, operator) {
    const cleared = a.state === 'cleared';
    const acked = a.ackState === 'acknowledged';
    const why = operator ? '' : 'needs the operator role';
    const fold = childCount
      ? el('button', {
        type: 'button', class: 'fold', 'aria-expanded': this.expanded.has(a.id) ? 'true' : 'false',
        title: `${childCount} correlated alarm(s)`, text: `${this.expanded.has(a.id) ? '▾' : '▸'}${childCount}`,
        onclick: (event) => { event.stopPropagation(); this.toggle(a.id); },
      })
      : null;
    const classes = [isChild ? 'child' : '', this.selected === a.id ? 'selected' : ''].filter(Boolean).join(' ');
    if (tr.className !== classes) tr.className = classes;
    const hooks = {
      alarmId: a.id, severity: a.perceivedSeverity, state: a.state, ackState: a.ackState,
      rootCause: a.isRootCause ? 'true' : 'false', children: childCount, object: a.alarmedObject?.id ?? '',
      device: deviceOf(a),
    };
    for (const [key, value] of Object.entries(hooks)) {
      if (value === undefined || value === null) delete tr.dataset[key];
      else if (tr.dataset[key] !== String(value)) tr.dataset[key] = String(value);
    }
    tr.replaceChildren(
      el('td', {}, fold),
      el('td', {}, chip(cleared ? 'cleared' : a.perceivedSeverity)),
      el('td', { text: a.id }),
      el('td', { class: 'object', text: `${a.alarmedObjectType ?? ''} ${a.alarmedObject?.id ?? ''}`.trim() }),
      el('td', { class: 'problem', text: `${a.isRootCause ? '[root cause] ' : ''}${a.specificProblem || a.probableCause || ''}${a.count > 1 ? ` ×${a.count}` : ''}` }),
      el('td', { text: when(a.alarmRaisedTime) }),
      el('td', { text: a.state }),
      el('td', { text: acked ? `✓ ${a.ackUserId ?? ''}`.trim() : '—' }),
      el('td', {},
        el('button', { type: 'button', class: 'ack', text: 'Ack', disabled: !operator || acked || cleared, title: why || (acked ? 'acknowledged' : 'acknowledge'), onclick: (event) => { event.stopPropagation(); this.patch(a.id, { ackState: 'acknowledged' }); } }),
        ' ',
        el('button', { type: 'button', class: 'clear', text: 'Clear', disabled: !operator || cleared, title: why || 'clear', onclick: (event) => { event.stopPropagation(); this.patch(a.id, { state: 'cleared' }); } })));
  }

  select(id) {
    const alarm = this.alarms.get(id);
    if (!alarm) return;
    this.selected = id;
    this.onFocus(alarm);
    this.render();
  }

  toggle(id) {
    if (this.expanded.has(id)) this.expanded.delete(id); else this.expanded.add(id);
    this.render();
  }

  async patch(id, body) {
    try {
      const doc = await api(`${BASE}/${id}`, { method: 'PATCH', body });
      this.upsert(doc);
      this.onChange();
    } catch (error) {
      notify(`Alarm ${id} not changed: ${error.message}`, { error: true });
    }
  }
}
