// The side panel: a device or a link (one GET /api/v1/map/devices|links/...: details,
// interfaces, open alarms, services crossing it, and "if this fails"), a service or slice
// (path on the map, SLA this period, its transaction's per-device progress), a customer
// (products, SLA, credits on bills: one GET .../overview).
import { api, q } from './api.js';
import { append, clickable, clear, el, facts, table } from './dom.js';
import { bps, money, percent, when } from './format.js';
import { chip } from './severity.js';

const TERMINAL = new Set(['confirmed', 'committed', 'rolled-back', 'failed', 'done', 'aborted']);

export class Panel {
  constructor(node, { map, openService, openCustomer, focusAlarm, canOperate, expand }) {
    this.node = node;
    this.map = map;
    this.openService = openService;
    this.openCustomer = openCustomer;
    this.focusAlarm = focusAlarm;
    this.canOperate = canOperate;
    this.expand = expand;
    this.current = null;
    this.timer = null;
    this.token = 0;
  }

  // Each show() supersedes the last: a late answer for an earlier selection is dropped.
  async show(kind, key, loader) {
    clearTimeout(this.timer);
    const token = ++this.token;
    this.current = { kind, key };
    this.node.dataset.kind = kind;
    this.node.dataset.key = String(key);
    clear(this.node).append(el('p', { class: 'muted', text: 'Loading…' }));
    try {
      const body = await loader();
      if (token !== this.token) return;
      append(clear(this.node), body);
    } catch (error) {
      if (token !== this.token) return;
      clear(this.node).append(el('h2', { text: String(key) }), el('p', { class: 'error', text: error.message }));
    }
  }

  refresh() {
    if (!this.current) return;
    const { kind, key } = this.current;
    if (kind === 'device') this.device(key);
    else if (kind === 'link') this.link(key);
  }

  device(name) {
    this.map.select({ kind: 'device', name });
    return this.show('device', name, async () => {
      const doc = await api(`/api/v1/map/devices/${q(name)}`);
      const d = doc.device;
      const worst = doc.alarms[0]?.perceivedSeverity;
      return [
        el('h2', { dataset: { device: d.name } }, chip(worst), el('span', { text: d.name })),
        facts([
          ['site', d.site], ['role', d.role], ['platform', d.platform], ['kind', d.kind],
          ['state', d.state], ['management', d.mgmt_address], ['serial', d.serial],
        ]),
        el('div', { class: 'actions' },
          el('button', { type: 'button', onclick: () => this.expand(d.name), text: 'Neighbours on the map' })),
        this.interfaces(doc.interfaces, d.name),
        this.alarms(doc.alarms),
        this.services(doc.services),
        this.impact(doc.impact),
      ];
    });
  }

  link(id) {
    this.map.select({ kind: 'link', id });
    return this.show('link', id, async () => {
      const doc = await api(`/api/v1/map/links/${q(id)}`);
      const l = doc.link;
      const down = (doc.interfaces || []).some((i) => i.oper_state === 'down') || l.state === 'down';
      return [
        el('h2', { dataset: { link: l.id } }, chip(doc.alarms[0]?.perceivedSeverity),
          el('span', { text: `link ${l.id}` })),
        facts([
          ['a end', `${l.a.device} ${l.a.interface}`], ['b end', `${l.b.device} ${l.b.interface}`],
          ['state', el('span', { class: down ? 'state-down' : 'state-up', text: down ? '✖ down' : '✓ up' })],
          ['capacity', l.capacity_bps ? bps(l.capacity_bps) : null],
          ['latency', l.latency_us !== undefined && l.latency_us !== null ? `${l.latency_us} µs` : null],
        ]),
        this.interfaces(doc.interfaces, null),
        this.alarms(doc.alarms),
        this.services(doc.services),
        this.impact(doc.impact),
      ];
    });
  }

  interfaces(rows, device) {
    if (!rows || !rows.length) return el('p', { class: 'muted', text: 'No interfaces.' });
    return [
      el('h3', { text: `Interfaces (${rows.length})` }),
      table(['name', 'admin', 'oper', 'speed', 'in', 'out', 'util'], rows.map((i) => {
        const tr = el('tr', { dataset: { device: i.device || device, interface: i.name } },
          el('td', { text: device ? i.name : `${i.device} ${i.name}` }),
          el('td', { text: i.admin_state ?? '—' }),
          el('td', { class: i.oper_state === 'down' ? 'state-down' : 'state-up', text: i.oper_state === 'down' ? '✖ down' : i.oper_state === 'up' ? '✓ up' : (i.oper_state ?? '—') }),
          el('td', { text: i.speed_bps ? bps(i.speed_bps) : '—' }),
          el('td', { text: bps(i.in_bps) }),
          el('td', { text: bps(i.out_bps) }),
          el('td', { text: percent(i.utilisation) }));
        return clickable(tr, () => this.map.highlight({ kind: 'interface', device: i.device || device, interface: i.name }));
      })),
    ];
  }

  alarms(alarms) {
    if (!alarms || !alarms.length) return [el('h3', { text: 'Open alarms' }), el('p', { class: 'muted', text: 'None.' })];
    return [
      el('h3', { text: `Open alarms (${alarms.length})` }),
      table(['sev', '#', 'object', 'problem'], alarms.map((a) => clickable(
        el('tr', { dataset: { alarmId: a.id, severity: a.perceivedSeverity, state: a.state } },
          el('td', {}, chip(a.perceivedSeverity)), el('td', { text: a.id }),
          el('td', { class: 'object', text: a.alarmedObject?.id ?? '' }),
          el('td', { class: 'problem', text: a.specificProblem || a.probableCause || '' })),
        () => this.focusAlarm(a)))),
    ];
  }

  services(services) {
    if (!services || !services.length) return [el('h3', { text: 'Services & slices' }), el('p', { class: 'muted', text: 'None cross it.' })];
    return [
      el('h3', { text: `Services & slices (${services.length})` }),
      table(['name', 'type', 'customer', 'state'], services.map((s) => clickable(
        el('tr', { dataset: { service: s.name } },
          el('td', { text: s.name }), el('td', { text: s.type }),
          el('td', { text: s.customer ?? '—' }), el('td', { text: s.state })),
        () => this.openService(s.name)))),
    ];
  }

  impact(impact) {
    if (!impact) return null;
    const revenue = impact.revenue_at_risk || {};
    const customers = impact.customers || [];
    return [
      el('h3', { text: 'If this fails' }),
      el('div', { class: 'impact', dataset: { impact: 'true' } },
        el('div', { class: 'money', dataset: { revenue: revenue.monthly ?? '' } },
          `${money(revenue.monthly ?? '0.00', revenue.currency)} / month at risk`),
        facts([
          ['services', String((impact.services || []).length)],
          ['customers', customers.length ? customers.join(', ') : 'none'],
          ['links down', (impact.links || []).join(', ') || 'none'],
          ['isolated', (impact.isolated_devices || []).join(', ') || 'none'],
        ]),
        (revenue.by_customer || []).length
          ? table(['customer', 'monthly'], revenue.by_customer.map((c) => clickable(
            el('tr', { dataset: { customer: c.customer } }, el('td', { text: c.customer }), el('td', { text: money(c.monthly, revenue.currency) })),
            () => this.openCustomer(c.customer))))
          : null),
    ];
  }

  service(ref) {
    return this.show('service', ref, async () => {
      const s = await api(`/api/v1/services/${q(ref)}`);
      const devices = (s.resources?.devices || []).map((d) => d.device);
      const links = (s.resources?.links || []).map((l) => l.id);
      this.map.highlight({ kind: 'path', devices, links }, { cls: 'path' });
      const sla = await api(`/api/v1/sla/${q(s.name)}`).catch((error) => ({ error: error.message }));
      const txnId = s.last_transaction_id ?? s.transaction_id;
      const txn = txnId ? await api(`/api/v1/transactions/${q(txnId)}`).catch(() => null) : null;
      if (txn && (txn.live || !TERMINAL.has(txn.state))) {
        this.timer = setTimeout(() => { if (this.current?.key === ref) this.service(ref); }, 1500);
      }
      return [
        el('h2', { dataset: { service: s.name } }, el('span', { text: s.name })),
        facts([
          ['type', s.type], ['customer', s.customer ? clickable(el('span', { class: 'linkish', text: s.customer }), () => this.openCustomer(s.customer)) : null],
          ['state', s.state], ['VLAN', s.vlan], ['VRF', s.vrf], ['error', s.error],
          ['updated', when(s.updated_at)],
        ]),
        el('div', { class: 'actions' },
          el('button', { type: 'button', text: 'Show path on map', onclick: () => this.map.highlight({ kind: 'path', devices, links }, { cls: 'path' }) }),
          el('button', { type: 'button', text: 'Clear path', onclick: () => this.map.clearHighlight('path') })),
        el('h3', { text: 'Path' }),
        el('p', { text: devices.length ? devices.join(' → ') : 'no devices' }),
        el('p', { class: 'muted', text: links.length ? `links ${links.join(', ')}` : '' }),
        this.sla(sla),
        this.transaction(txn),
      ];
    });
  }

  sla(sla) {
    const head = el('h3', { text: 'SLA this period' });
    if (!sla || sla.error) return [head, el('p', { class: 'muted', text: sla?.error || 'no SLA' })];
    const a = sla.availability || {};
    return [head, facts([
      ['met', el('span', { class: sla.met ? 'state-up' : 'state-down', text: sla.met ? '✓ met' : '✖ missed' })],
      ['availability', `${a.measuredPercent ?? '—'} % (target ${a.targetPercent ?? '—'} %)`],
      ['outage', a.outageSeconds !== undefined ? `${a.outageSeconds} s in ${(a.outageWindows || []).length} window(s)` : null],
      ['latency', sla.latency?.measured === false ? 'not measured' : sla.latency?.met === false ? '✖ missed' : sla.latency ? '✓ met' : null],
      ['period', sla.period ? `${when(sla.period.start)} → ${when(sla.period.end)}` : null],
      ['note', sla.note],
    ])];
  }

  transaction(txn) {
    if (!txn) return null;
    const devices = txn.devices || [];
    const done = devices.filter((d) => TERMINAL.has(d.state)).length;
    const bar = el('div', { class: 'progress' }, el('span'));
    bar.firstChild.style.width = `${devices.length ? (100 * done) / devices.length : 100}%`;
    return [
      el('h3', { text: `Transaction ${txn.id} · ${txn.state}${txn.live ? ' (running)' : ''}` }),
      bar,
      table(['device', 'protocol', 'state', 'step', 'error'], devices.map((d) => el('tr', { dataset: { device: d.device } },
        el('td', { text: d.device }), el('td', { text: d.protocol ?? '' }), el('td', { text: d.state ?? '' }),
        el('td', { text: d.step ?? '' }), el('td', { class: d.error ? 'state-down' : '', text: d.error ?? '' })))),
    ];
  }

  customer(id) {
    return this.show('customer', id, async () => {
      const doc = await api(`/api/v1/customers/${q(id)}/overview`);
      const c = doc.customer;
      return [
        el('h2', { dataset: { customer: c.id } }, el('span', { text: c.name || c.id })),
        facts([['id', c.id], ['email', c.email], ['phone', c.phone]]),
        el('h3', { text: `Products (${(doc.products || []).length})` }),
        table(['offering', 'service', 'state', 'monthly', 'SLA'], (doc.products || []).map((p) => {
          const tr = el('tr', { dataset: { product: p.id } },
            el('td', { text: p.offering }), el('td', { text: p.service ?? '—' }), el('td', { text: p.state }),
            el('td', { text: p.monthly_price ?? '—' }),
            el('td', { class: p.sla ? (p.sla.met ? 'state-up' : 'state-down') : '', text: p.sla ? (p.sla.met ? '✓ met' : '✖ missed') : '—' }));
          return p.service ? clickable(tr, () => this.openService(p.service)) : tr;
        })),
        el('h3', { text: 'Bills and SLA credits' }),
        (doc.bills || []).length ? (doc.bills || []).map((b) => [
          facts([['bill', `${b.id} · ${b.period}`], ['total', b.total]]),
          (b.credits || []).length
            ? table(['product', 'credit', 'reason'], b.credits.map((cr) => el('tr', {},
              el('td', { text: cr.product }), el('td', { text: cr.amount }), el('td', { text: cr.reason ?? '' }))))
            : el('p', { class: 'muted small', text: 'no credits' }),
        ]) : el('p', { class: 'muted', text: 'No bills yet.' }),
      ];
    });
  }
}
