// The topology map: one GET /api/v1/map, drawn by cytoscape.js with preset positions (the saved
// view's; the others from placement.js), sites as compound nodes, interface names at each end
// of a link. Refreshes apply a diff in one cy.batch: nothing moves but what the server moved.
import { ApiError, api, q } from './api.js';
import { COLOUR, DOWN, marker } from './severity.js';
import { place } from './placement.js';
import { OVERVIEW_DEVICES, clusterId, foldedElements, siteOf } from './overview.js';

const cytoscape = window.cytoscape;
export const DEFAULT_VIEW = 'default';
export const VIEW_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const BIG = 1500; // elements past which the renderer trades detail for speed while moving
const SEARCH_UNFOLDS = 3; // folded sites a typed search unfolds by itself (Enter: all it finds)
const UTIL_STOPS = ['#3b528b', '#21918c', '#5ec962', '#fde725']; // viridis: colour-blind safe
const SHAPES = { aggregation: 'hexagon', agg: 'hexagon', core: 'octagon', pe: 'diamond', p: 'diamond', access: 'ellipse' };

function utilColour(value) {
  const v = Math.min(1, Math.max(0, value)) * (UTIL_STOPS.length - 1);
  const i = Math.min(UTIL_STOPS.length - 2, Math.floor(v));
  const f = v - i;
  const [a, b] = [UTIL_STOPS[i], UTIL_STOPS[i + 1]].map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
  return `rgb(${a.map((x, k) => Math.round(x + (b[k] - x) * f)).join(',')})`;
}

const STYLE = [
  { selector: 'node.site', style: {
    shape: 'round-rectangle', 'background-color': '#16202a', 'background-opacity': 0.7,
    'border-width': 1, 'border-style': 'dashed', 'border-color': '#3b4b5d', padding: 24,
    label: 'data(label)', 'text-valign': 'top', 'text-halign': 'center', 'text-margin-y': -4,
    color: '#9fb3c8', 'font-size': 13, 'font-weight': 'bold', 'min-zoomed-font-size': 6,
  } },
  { selector: 'node.device', style: {
    shape: 'round-rectangle',
    width: 30, height: 30, 'background-color': '#56697e', 'border-width': 2, 'border-color': '#0e1319',
    label: 'data(label)', color: '#e3e9ef', 'font-size': 11, 'text-valign': 'bottom',
    'text-margin-y': 5, 'text-wrap': 'wrap', 'text-outline-color': '#0e1319', 'text-outline-width': 2,
    'min-zoomed-font-size': 7,
  } },
  ...Object.entries(SHAPES).map(([role, shape]) => ({ selector: `node.device[role = "${role}"]`, style: { shape } })),
  { selector: 'node.device[state != "active"]', style: { 'border-style': 'dashed', 'border-color': '#9fb3c8' } },
  ...['indeterminate', 'warning', 'minor', 'major', 'critical'].map((s) => ({
    selector: `node.device[severity = "${s}"]`,
    style: { 'background-color': COLOUR[s], 'border-color': '#ffffff', 'border-width': s === 'critical' ? 4 : 2, color: s === 'critical' || s === 'major' ? COLOUR[s] : '#e3e9ef' },
  })),
  // Text properties only on the links that carry text: on 8,000 plain links they cost seconds.
  { selector: 'edge', style: { width: 2, 'line-color': '#66788c', 'curve-style': 'bezier' } },
  { selector: 'edge.labelled, edge.bad, edge:selected, edge.hl, edge.path, edge.hover', style: {
    'source-label': 'data(aIf)', 'target-label': 'data(bIf)', 'font-size': 9, color: '#a9bacb',
    'text-outline-color': '#0e1319', 'text-outline-width': 2, 'min-zoomed-font-size': 12,
    'source-text-offset': 40, 'target-text-offset': 40,
  } },
  { selector: 'edge.bad, edge:selected, edge.hl, edge.path, edge.hover', style: { 'min-zoomed-font-size': 4 } },
  { selector: 'edge.straight', style: { 'curve-style': 'straight' } },
  { selector: 'edge.util[?util]', style: {
    'line-color': 'data(ucolour)', width: 'mapData(util, 0, 1, 2, 8)',
  } },
  { selector: 'edge.bad', style: {
    'line-color': DOWN, width: 5, color: DOWN, 'font-weight': 'bold', 'font-size': 10,
    label: 'data(mark)', 'text-rotation': 'autorotate',
  } },
  // The overview: a folded site (its size grows with its devices) and a bundle of links.
  { selector: 'node.cluster', style: {
    shape: 'round-rectangle', width: 'data(w)', height: 'data(h)',
    'background-color': '#2a3a4c', 'border-width': 2, 'border-color': '#3b4b5d', 'border-style': 'dashed',
    label: 'data(label)', 'text-wrap': 'wrap', 'text-valign': 'center', 'text-halign': 'center',
    color: '#e3e9ef', 'font-size': 'data(fs)', 'font-weight': 'bold', 'text-outline-color': '#0e1319',
    'text-outline-width': 3, 'min-zoomed-font-size': 4,
  } },
  ...['indeterminate', 'warning', 'minor', 'major', 'critical'].map((s) => ({
    selector: `node.cluster[severity = "${s}"]`,
    style: { 'background-color': COLOUR[s], 'border-color': '#ffffff', 'border-style': 'solid', 'border-width': s === 'critical' ? 5 : 3 },
  })),
  { selector: 'edge.bundle', style: {
    width: 'mapData(count, 1, 100, 4, 24)', 'curve-style': 'straight', label: 'data(mark)',
    'font-size': 'data(fs)', color: '#c9d6e3', 'text-outline-color': '#0e1319', 'text-outline-width': 2,
    'text-rotation': 'autorotate', 'min-zoomed-font-size': 4,
  } },
  { selector: 'edge.bundle.bad', style: { width: 'mapData(count, 1, 100, 6, 26)', 'font-size': 'data(fs)', color: DOWN } },
  { selector: 'edge.down', style: { 'line-style': 'dashed', 'line-dash-pattern': [8, 4] } },
  { selector: '.faded', style: { opacity: 0.18 } },
  { selector: '.path', style: { 'underlay-color': '#00c2ff', 'underlay-opacity': 0.45, 'underlay-padding': 7 } },
  { selector: '.hl', style: { 'underlay-color': '#ffd400', 'underlay-opacity': 0.55, 'underlay-padding': 10 } },
  { selector: 'node:selected', style: { 'border-color': '#ffd400', 'border-width': 4 } },
  { selector: 'edge:selected', style: { 'underlay-color': '#ffd400', 'underlay-opacity': 0.5, 'underlay-padding': 5 } },
];

function deviceLabel(d) {
  if (!d.severity) return d.name;
  return `${d.name}\n${marker(d.severity)}${d.open_alarms > 1 ? ` ×${d.open_alarms}` : ''}`;
}

function linkMark(link) {
  if (link.state === 'down') return '✖ DOWN';
  return link.severity ? marker(link.severity) : '';
}

export function neighbourMap(links) {
  const found = new Map();
  const add = (a, b) => { if (!found.has(a)) found.set(a, []); found.get(a).push(b); };
  for (const l of links) { add(l.a.device, l.b.device); add(l.b.device, l.a.device); }
  return found;
}

export class TopologyMap {
  constructor(container, { canSave, onSelect, notify }) {
    this.container = container;
    this.canSave = canSave;
    this.onSelect = onSelect;
    this.notify = notify;
    this.cy = null;
    this.doc = null;
    this.shape = {};
    this.view = DEFAULT_VIEW; // the named layout shown and saved to
    this.utilOn = false;
    this.pending = new Map();
    this.saveTimer = null;
    this.refreshing = null;
    this.again = false;
    this.marked = false;
    // The overview: whether the map is folded into sites, and the sites unfolded since.
    this.overview = false;
    this.unfolded = new Set();
    this.positions = new Map(); // every device's, drawn or folded
    // The pane changes size with the window and the panel: keep the canvas in step, and keep
    // the whole map in view until the user pans or zooms.
    new ResizeObserver(() => {
      if (!this.cy) return;
      this.cy.resize();
      if (!this.userMoved) this.fit();
    }).observe(container);
  }

  // The map in this layout; a layout never saved yet (404) starts as the default one shows
  // it, and its first drag saves every position into it.
  async fetchDoc() {
    try {
      const doc = await api(this.url(this.view));
      this.unsaved = false;
      return doc;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404 || this.view === DEFAULT_VIEW) throw error;
      this.unsaved = true;
      return api(this.url(DEFAULT_VIEW));
    }
  }

  url(view) {
    const params = [`view=${q(view)}`];
    if (this.shape.around) params.push(`around=${q(this.shape.around)}`, `hops=${this.shape.hops || 1}`);
    return `/api/v1/map?${params.join('&')}`;
  }

  // A full (re)build: first load, neighbour expansion, back to the whole map.
  async load(shape = {}) {
    document.body.dataset.mapState = 'loading';
    this.shape = shape;
    this.unfolded = new Set();
    this.generation = (this.generation || 0) + 1; // a refresh begun before is now stale
    const doc = await this.fetchDoc();
    performance.mark('map-fetched');
    this.build(doc);
  }

  build(doc) {
    this.doc = doc;
    this.pinned = !this.shape.around && !this.unsaved && doc.devices.every((d) => d.position);
    const known = new Map();
    for (const d of doc.devices) if (d.position) known.set(d.name, d.position);
    const positions = place(doc.devices, neighbourMap(doc.links), known);
    this.positions = positions;
    this.overview = !this.shape.around && doc.devices.length > OVERVIEW_DEVICES;
    const elements = this.elements(doc, positions);
    performance.mark('map-elements');
    if (this.cy) { this.cy.destroy(); this.cy = null; }
    const big = elements.length > BIG;
    const options = {
      container: this.container, elements, style: STYLE, layout: { name: 'preset' },
      minZoom: 0.02, maxZoom: 4, boxSelectionEnabled: false, selectionType: 'single',
      textureOnViewport: big, hideEdgesOnViewport: big, pixelRatio: big ? 1 : 'auto',
    };
    if (localStorage.getItem('oss.console.webgl') === '1') {
      // Experimental WebGL renderer (cytoscape >= 3.31): opt-in, the canvas one otherwise.
      try { this.cy = cytoscape({ ...options, renderer: { name: 'canvas', webgl: true } }); } catch { this.cy = null; }
    }
    if (!this.cy) this.cy = cytoscape(options);
    performance.mark('map-created');
    this.userMoved = false;
    this.fit();
    this.cy.on('viewport', () => { if (!this.fitting) this.userMoved = true; });
    this.wire();
    window.ossConsole.cy = this.cy;
    this.detailChanged();
    const ready = () => {
      if (document.body.dataset.mapState === 'ready') return;
      document.body.dataset.mapState = 'ready';
      if (!this.marked) { performance.mark('map-interactive'); this.marked = true; }
    };
    this.cy.one('render', () => requestAnimationFrame(ready));
    this.cy.ready(() => requestAnimationFrame(() => requestAnimationFrame(ready)));
  }

  folded(site) {
    return this.overview && !this.unfolded.has(site);
  }

  elements(doc, positions) {
    const out = [];
    const folded = foldedElements(doc, positions, (site) => this.folded(site));
    const counts = new Map();
    for (const d of doc.devices) if (d.site) counts.set(d.site, (counts.get(d.site) || 0) + 1);
    for (const [site, n] of [...counts.entries()].sort()) {
      if (this.folded(site)) continue;
      out.push({ group: 'nodes', classes: 'site', data: { id: `s:${site}`, name: site, label: `${site} · ${n}` } });
    }
    for (const n of folded.nodes) out.push({ ...n, grabbable: false });
    for (const d of doc.devices) {
      if (folded.hidden.has(d.name)) continue;
      const data = {
        id: `d:${d.name}`, name: d.name, label: deviceLabel(d), severity: d.severity || undefined,
        open: d.open_alarms || 0, role: d.role || '', site: d.site || '', state: d.state || 'active',
      };
      if (d.site) data.parent = `s:${d.site}`;
      const p = positions.get(d.name);
      out.push({ group: 'nodes', classes: 'device', data, position: { x: p.x, y: p.y } });
    }
    // Parallel links need bezier curves to be told apart; past BIG, straight lines are cheaper.
    const straight = doc.links.length > BIG ? 'straight' : '';
    for (const l of doc.links) {
      if (folded.hidden.has(l.a.device) || folded.hidden.has(l.b.device)) continue;
      const bad = l.state === 'down' || Boolean(l.severity);
      const util = this.utilOverride?.[l.id] ?? l.utilisation;
      const classes = [bad ? 'bad' : '', l.state === 'down' ? 'down' : '', this.utilOn ? 'util' : '', straight || 'labelled'].filter(Boolean).join(' ');
      out.push({
        group: 'edges', classes,
        data: {
          id: `l:${l.id}`, linkId: l.id, source: `d:${l.a.device}`, target: `d:${l.b.device}`,
          aIf: l.a.interface, bIf: l.b.interface, state: l.state, severity: l.severity || undefined,
          mark: linkMark(l), util: util ?? undefined,
          ucolour: util === null || util === undefined ? undefined : utilColour(util),
        },
      });
    }
    for (const e of folded.edges) out.push({ ...e, data: { ...e.data, aIf: '', bIf: '' } });
    return out;
  }

  // The overview's state for tests and the bench: body[data-map-detail] is 'sites' (all
  // folded), 'partial' or 'devices'; body[data-folded-sites] counts the folded sites.
  detailChanged() {
    const folded = this.cy ? this.cy.nodes('node.cluster').length : 0;
    const detail = !this.overview ? 'devices' : folded && !this.unfolded.size ? 'sites' : folded ? 'partial' : 'devices';
    document.body.dataset.mapDetail = detail;
    document.body.dataset.foldedSites = String(folded);
    const button = document.getElementById('expand-all');
    if (button) {
      button.hidden = !this.doc || this.shape.around || this.doc.devices.length <= OVERVIEW_DEVICES;
      button.textContent = this.overview ? 'Expand all' : 'Sites';
      button.title = this.overview ? 'Draw every device and link (slow on a big map)' : 'Fold the map into its sites';
    }
  }

  // Unfold sites into their devices (where the layout has them; nothing else moves).
  unfold(sites) {
    const more = [...sites].filter((s) => this.folded(s));
    if (!more.length || !this.doc) return false;
    for (const s of more) this.unfolded.add(s);
    this.apply(this.doc);
    return true;
  }

  // Unfold the sites of these devices (a search, an alarm, a service path).
  reveal(names) {
    if (!this.overview || !this.doc) return false;
    const wanted = new Set(names);
    return this.unfold(new Set(this.doc.devices.filter((d) => wanted.has(d.name)).map(siteOf)));
  }

  // The toolbar's button: every device ('Expand all') or back to the sites.
  toggleOverview() {
    if (!this.doc) return;
    performance.mark('map-expand-start');
    this.overview = !this.overview;
    this.unfolded = new Set();
    this.apply(this.doc);
    if (!this.userMoved) this.fit();
    const done = this.overview ? 'map-folded' : 'map-expanded';
    this.cy.one('render', () => requestAnimationFrame(() => { performance.mark(done); document.body.dataset.mapDrawn = done; }));
    document.body.dataset.mapDrawn = '';
    this.cy.forceRender?.();
  }

  wire() {
    const cy = this.cy;
    cy.on('tap', 'node.device', (e) => this.onSelect({ kind: 'device', name: e.target.data('name') }));
    cy.on('tap', 'edge[linkId]', (e) => this.onSelect({ kind: 'link', id: e.target.data('linkId') }));
    // A folded site (or a bundle's folded ends) unfolds on a click.
    cy.on('tap', 'node.cluster', (e) => this.unfold([e.target.data('site')]));
    cy.on('tap', 'edge.bundle', (e) => this.unfold(e.target.connectedNodes('node.cluster').map((n) => n.data('site'))));
    cy.on('dragfree', 'node', (e) => this.dragged(e.target));
    // Interface names show when zoomed in; hovering a device or a link shows its own.
    cy.on('mouseover', 'node.device', (e) => e.target.connectedEdges().addClass('hover'));
    cy.on('mouseout', 'node.device', (e) => e.target.connectedEdges().removeClass('hover'));
    cy.on('mouseover', 'edge', (e) => e.target.addClass('hover'));
    if (this.doc.links.length > BIG) { // straight links now, or once the overview unfolds
      let timer = null;
      cy.on('viewport', () => { clearTimeout(timer); timer = setTimeout(() => this.labelInView(), 150); });
    }
    cy.on('mouseout', 'edge', (e) => e.target.removeClass('hover'));
  }

  dragged(node) {
    const devices = node.isParent() ? node.descendants('node.device') : node.filter('node.device');
    if (!devices.length) return;
    if (!this.canSave()) {
      this.notify('Layout not saved: the viewer role cannot change the shared layout (operator needed). Reload to restore it.');
      document.body.dataset.layoutRefused = String(Number(document.body.dataset.layoutRefused || 0) + 1);
      return;
    }
    // The first drag pins the whole map as this user sees it (every device's position), so
    // everyone gets the same layout; later drags send only what moved.
    const round = (p) => ({ x: Math.round(p.x * 10) / 10, y: Math.round(p.y * 10) / 10 });
    const moved = this.pinned || this.shape.around ? devices : this.cy.nodes('node.device');
    // On the overview, the folded sites' devices are pinned too, where they would unfold.
    if (!this.pinned && !this.shape.around) for (const [name, p] of this.positions) this.pending.set(name, round(p));
    moved.forEach((n) => {
      const p = n.position();
      this.positions.set(n.data('name'), { x: p.x, y: p.y });
      this.pending.set(n.data('name'), round(p));
    });
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => this.save(), 250);
  }

  async save() {
    if (!this.pending.size) return;
    const positions = Object.fromEntries(this.pending);
    this.pending.clear();
    try {
      await api(`/api/v1/map/views/${q(this.view)}/positions`, { method: 'PUT', body: { positions } });
      if (!this.shape.around) { this.pinned = true; this.unsaved = false; }
      document.body.dataset.layoutSaves = String(Number(document.body.dataset.layoutSaves || 0) + 1);
    } catch (error) {
      this.notify(`Layout not saved: ${error.message}`, { error: true });
    }
  }

  // Re-read the map and apply the difference (live updates, reconnects). Coalesced: one
  // request in flight, one more queued at most.
  refresh() {
    if (this.refreshing) { this.again = true; return this.refreshing; }
    this.refreshing = (async () => {
      try {
        do {
          this.again = false;
          const generation = this.generation;
          const doc = await this.fetchDoc();
          if (generation === this.generation) this.apply(doc);
        } while (this.again);
      } catch (error) {
        this.notify(`Map refresh failed: ${error.message}`, { error: true });
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  apply(doc) {
    const cy = this.cy;
    if (!cy) return this.build(doc);
    this.doc = doc;
    const present = new Set(doc.devices.map((d) => d.name));
    const known = new Map([...this.positions].filter(([name]) => present.has(name)));
    cy.nodes('node.device').forEach((n) => { known.set(n.data('name'), { ...n.position() }); });
    const saved = new Map();
    for (const d of doc.devices) if (d.position) { known.set(d.name, d.position); saved.set(d.name, d.position); }
    const positions = place(doc.devices, neighbourMap(doc.links), known);
    this.positions = positions;
    const wanted = this.elements(doc, positions);
    const ids = new Set(wanted.map((w) => w.data.id));
    const added = []; // added at once: unfolding a big map adds thousands
    cy.batch(() => {
      cy.remove(cy.elements().filter((e) => !ids.has(e.id())));
      for (const w of wanted) {
        let e = cy.getElementById(w.data.id);
        if (e.nonempty() && w.group === 'edges' && (e.data('source') !== w.data.source || e.data('target') !== w.data.target)) {
          cy.remove(e);
          e = cy.collection();
        }
        if (e.empty()) { added.push(w); continue; }
        const { parent, ...data } = w.data;
        if (w.group === 'nodes' && w.classes === 'device' && (e.data('parent') || undefined) !== parent) {
          e = e.move({ parent: parent ?? null });
        }
        // data(k, undefined) reads: a field gone (a cleared severity) is removed instead.
        for (const [k, v] of Object.entries(data)) if (v !== undefined && e.data(k) !== v) e.data(k, v);
        for (const k of ['severity', 'util', 'ucolour']) if (data[k] === undefined && e.data(k) !== undefined) e.removeData(k);
        if (w.classes !== undefined) {
          const keep = ['hl', 'path', 'faded', 'hover', 'labelled'].filter((c) => e.hasClass(c));
          e.classes([w.classes, ...keep].join(' '));
        }
        const at = saved.get(data.name);
        if (at && w.classes === 'device' && !e.grabbed() && (Math.abs(e.position('x') - at.x) > 0.5 || Math.abs(e.position('y') - at.y) > 0.5)) {
          e.position({ x: at.x, y: at.y });
        }
        if (w.classes === 'cluster' && (Math.abs(e.position('x') - w.position.x) > 0.5 || Math.abs(e.position('y') - w.position.y) > 0.5)) {
          e.position(w.position);
        }
      }
      // Sites before their devices, nodes before the links between them.
      const rank = (w) => (w.group === 'edges' ? 2 : w.classes === 'site' ? 0 : 1);
      if (added.length) cy.add(added.sort((a, b) => rank(a) - rank(b)));
    });
    this.detailChanged();
  }

  setUtilisation(on) {
    this.utilOn = on;
    this.cy?.batch(() => this.cy.edges().toggleClass('util', on));
  }

  applyUtilisation(byLink) {
    this.utilOverride = byLink;
    this.cy?.batch(() => {
      this.cy.edges().forEach((e) => {
        const v = byLink[e.data('linkId')];
        if (v === undefined || v === null) { e.removeData('util'); e.removeData('ucolour'); return; }
        e.data({ util: v, ucolour: utilColour(v) });
      });
    });
  }

  // Fades what does not match. On the overview, the folded sites holding a match are unfolded
  // when asked (`unfold`: Enter) or when the matches are in a few sites; else they stay lit.
  search(text, { unfold = false } = {}) {
    const needle = text.trim().toLowerCase();
    if (!this.cy) return this.cy;
    let lit = [];
    if (needle && this.overview && this.doc) {
      const sites = new Set(this.doc.devices.filter((d) => d.name.toLowerCase().includes(needle)).map(siteOf));
      lit = [...sites].filter((site) => this.folded(site));
      if (lit.length && (unfold || lit.length <= SEARCH_UNFOLDS)) { this.unfold(lit); lit = []; }
    }
    const cy = this.cy;
    let found = cy.collection();
    cy.batch(() => {
      cy.elements().removeClass('faded');
      if (!needle) return;
      found = cy.nodes('node.device').filter((n) => n.data('name').toLowerCase().includes(needle));
      let keep = found.union(found.ancestors()).union(found.edgesWith(found));
      for (const site of lit) keep = keep.union(cy.getElementById(clusterId(site)));
      cy.elements().not(keep).addClass('faded');
    });
    return found;
  }

  // Highlight what an alarm, a service or a list names; returns the elements (maybe empty).
  highlight(target, { cls = 'hl', center = true } = {}) {
    const cy = this.cy;
    if (!cy) return null;
    // What it names may be inside folded sites: unfold them first.
    const names = target.kind === 'device' ? [target.name]
      : target.kind === 'interface' ? [target.device]
        : target.kind === 'path' ? [...(target.devices || [])] : [];
    const linked = new Set(target.kind === 'link' ? [target.id] : target.kind === 'path' ? target.links || [] : []);
    for (const l of this.doc?.links || []) if (linked.has(l.id)) names.push(l.a.device, l.b.device);
    this.reveal(names);
    let eles = cy.collection();
    const device = (name) => cy.getElementById(`d:${name}`);
    if (target.kind === 'device') eles = device(target.name);
    else if (target.kind === 'link') eles = cy.getElementById(`l:${target.id}`);
    else if (target.kind === 'interface') {
      const node = device(target.device);
      eles = node.union(node.connectedEdges().filter((e) =>
        (e.data('source') === node.id() && e.data('aIf') === target.interface) ||
        (e.data('target') === node.id() && e.data('bIf') === target.interface)));
    } else if (target.kind === 'path') {
      for (const name of target.devices || []) eles = eles.union(device(name));
      for (const id of target.links || []) eles = eles.union(cy.getElementById(`l:${id}`));
    }
    cy.batch(() => {
      cy.elements(`.${cls}`).removeClass(cls);
      eles.addClass(cls);
    });
    if (center && eles.nonempty() && !this.inView(eles)) {
      cy.stop();
      cy.animate({ center: { eles } }, { duration: 200 });
    }
    return eles;
  }

  // On a big map, interface names are drawn only for the links in view once zoomed in enough
  // to read them: labelling all 8,000 links up front costs more than a second of load.
  labelInView() {
    const cy = this.cy;
    const readable = cy.zoom() >= 1.2;
    const view = cy.extent();
    cy.batch(() => {
      cy.edges('.labelled').forEach((e) => { if (!readable) e.removeClass('labelled'); });
      if (!readable) return;
      cy.edges('.straight').forEach((e) => {
        const p = e.midpoint();
        const inside = p.x >= view.x1 && p.x <= view.x2 && p.y >= view.y1 && p.y <= view.y2;
        if (inside !== e.hasClass('labelled')) e.toggleClass('labelled', inside);
      });
    });
  }

  // Whether the elements are already on screen (then the view is left as the user set it).
  inView(eles) {
    const box = eles.boundingBox();
    const view = this.cy.extent();
    return box.x1 >= view.x1 && box.x2 <= view.x2 && box.y1 >= view.y1 && box.y2 <= view.y2;
  }

  clearHighlight(cls = 'hl') {
    this.cy?.elements(`.${cls}`).removeClass(cls);
  }

  select(target) {
    const eles = this.highlight(target);
    if (!eles || eles.empty()) return;
    this.cy.elements(':selected').unselect();
    eles.first().select();
  }

  fit() {
    if (!this.cy) return;
    this.fitting = true;
    this.cy.fit(undefined, 40);
    this.fitting = false;
    this.userMoved = false;
  }
}
