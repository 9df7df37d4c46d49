// The services/slices and customers lists (one request each); a row opens its detail in the
// side panel.
import { api } from './api.js';
import { clear, clickable, el } from './dom.js';
import { when } from './format.js';

export class ServiceList {
  constructor({ rows, type, customer, open }) {
    this.rows = rows;
    this.type = type;
    this.customer = customer;
    this.open = open;
    this.items = [];
    type.addEventListener('input', () => this.render());
    customer.addEventListener('input', () => this.render());
  }

  async reload() {
    this.items = await api('/api/v1/services');
    const types = [...new Set(this.items.map((s) => s.type))].sort();
    const chosen = this.type.value;
    clear(this.type).append(el('option', { value: '', text: 'all' }), ...types.map((t) => el('option', { value: t, text: t })));
    this.type.value = types.includes(chosen) ? chosen : '';
    this.render();
  }

  render() {
    const needle = this.customer.value.trim().toLowerCase();
    const shown = this.items.filter((s) => (!this.type.value || s.type === this.type.value)
      && (!needle || String(s.customer ?? '').toLowerCase().includes(needle)));
    clear(this.rows).append(...shown.map((s) => clickable(
      el('tr', { dataset: { service: s.name, state: s.state } },
        el('td', { text: s.name }), el('td', { text: s.type }), el('td', { text: s.customer ?? '—' }),
        el('td', { text: s.state }), el('td', { text: (s.resources?.devices || []).length }),
        el('td', { text: (s.resources?.links || []).length }), el('td', { text: when(s.updated_at) })),
      () => this.open(s.name))));
    if (!shown.length) this.rows.append(el('tr', {}, el('td', { colspan: 7, class: 'muted', text: 'No services.' })));
  }
}

export class CustomerList {
  constructor({ rows, open }) {
    this.rows = rows;
    this.open = open;
  }

  async reload() {
    const page = await api('/api/v1/customers?limit=1000');
    const items = page.items || [];
    clear(this.rows).append(...items.map((c) => clickable(
      el('tr', { dataset: { customer: c.id } },
        el('td', { text: c.id }), el('td', { text: c.name ?? '' }), el('td', { text: c.email ?? '' }),
        el('td', { text: when(c.created_at) })),
      () => this.open(c.id))));
    if (!items.length) this.rows.append(el('tr', {}, el('td', { colspan: 4, class: 'muted', text: 'No customers.' })));
  }
}
