// The big map's overview (semantic zoom): past OVERVIEW_DEVICES devices the map opens with each
// site folded into one node (its device count and worst severity) and one edge per pair of
// sites with links between them (their count; red when any is down or alarmed). Unfolding a
// site puts its devices where the layout has them; the other sites stay where they are.
import { marker, worst } from './severity.js';

// Measured on the 2-core bench VM (bench/console_bench.py, bench/cytoscape_floor.py): cytoscape
// draws a dressed element in ~0.5 ms, a device brings ~5 elements (itself, ~4 links), so 300
// devices (~1,500 elements) draw in ~0.8 s and leave the 2 s goal room for the fetch and the
// page; the metro lab (12 devices) and small sites' maps stay fully expanded.
export const OVERVIEW_DEVICES = 300;

const MIN_SIZE = 120; // a folded site's smallest side (model units; a device is 30)

export const siteOf = (device) => device.site || '';
export const clusterId = (site) => `g:${site}`;

function clusterLabel(site, count, severity, open) {
  const head = `${site || '(no site)'}\n${count} device${count === 1 ? '' : 's'}`;
  if (!severity) return head;
  return `${head}\n${marker(severity)}${open ? ` · ${open} alarmed` : ''}`;
}

// The elements standing for the folded sites: `folded(site)` says whether a site is folded;
// `positions` has every device's position (a folded site sits at its devices' centre).
// Returns {nodes, edges, hidden}: hidden = the devices not drawn.
export function foldedElements(doc, positions, folded) {
  const sites = new Map();
  const hidden = new Set();
  for (const d of doc.devices) {
    const site = siteOf(d);
    if (!folded(site)) continue;
    hidden.add(d.name);
    if (!sites.has(site)) sites.set(site, { count: 0, alarmed: 0, severities: [], x1: Infinity, y1: Infinity, x2: -Infinity, y2: -Infinity });
    const s = sites.get(site);
    const p = positions.get(d.name);
    s.count += 1;
    s.x1 = Math.min(s.x1, p.x); s.x2 = Math.max(s.x2, p.x);
    s.y1 = Math.min(s.y1, p.y); s.y2 = Math.max(s.y2, p.y);
    if (d.severity) { s.alarmed += 1; s.severities.push(d.severity); }
  }
  // A folded site covers the area its devices take (so the overview reads at the same zoom
  // as the unfolded map), its text scaled with it.
  let font = 14;
  const nodes = [...sites.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([site, s]) => {
    const severity = worst(s.severities);
    const w = Math.max(MIN_SIZE, s.x2 - s.x1 + MIN_SIZE / 2);
    const h = Math.max(MIN_SIZE, s.y2 - s.y1 + MIN_SIZE / 2);
    const fs = Math.round(Math.max(14, Math.min(w, h) / 14));
    font = Math.max(font, fs);
    return {
      group: 'nodes', classes: 'cluster',
      data: {
        id: clusterId(site), site, count: s.count, alarmed: s.alarmed, severity: severity || undefined,
        label: clusterLabel(site, s.count, severity, s.alarmed), state: 'active', w, h, fs,
      },
      position: { x: (s.x1 + s.x2) / 2, y: (s.y1 + s.y2) / 2 },
    };
  });
  // One edge per pair of ends, an end being a folded site or a device of an unfolded one.
  const bySite = new Map(doc.devices.map((d) => [d.name, siteOf(d)]));
  const end = (name) => (hidden.has(name) ? clusterId(bySite.get(name)) : `d:${name}`);
  const pairs = new Map();
  for (const l of doc.links) {
    if (!hidden.has(l.a.device) && !hidden.has(l.b.device)) continue;
    const [a, b] = [end(l.a.device), end(l.b.device)].sort();
    if (a === b) continue; // inside a folded site
    const key = `${a}|${b}`;
    if (!pairs.has(key)) pairs.set(key, { a, b, count: 0, down: 0, severities: [], links: [] });
    const p = pairs.get(key);
    p.count += 1;
    p.links.push(l.id);
    if (l.state === 'down') p.down += 1;
    if (l.severity) p.severities.push(l.severity);
  }
  const edges = [...pairs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, p]) => {
    const severity = worst(p.severities);
    const bad = p.down > 0 || Boolean(severity);
    // Between two folded sites: the count and the worst; from an unfolded device to a folded
    // site (a spoke): only what is wrong, small, so an unfolded site stays readable.
    const spoke = !p.a.startsWith('g:') || !p.b.startsWith('g:');
    const text = spoke ? [] : [`${p.count} link${p.count === 1 ? '' : 's'}`];
    if (p.down) text.push(`✖ ${p.down} down`);
    else if (severity) text.push(marker(severity));
    return {
      group: 'edges', classes: ['bundle', bad ? 'bad' : '', spoke ? 'spoke' : ''].filter(Boolean).join(' '),
      data: {
        id: `b:${key}`, source: p.a, target: p.b, count: p.count, down: p.down,
        fs: spoke ? 10 : Math.round(font * 0.8),
        severity: severity || undefined, mark: text.join(' '), links: p.links.join(','),
      },
    };
  });
  return { nodes, edges, hidden };
}
