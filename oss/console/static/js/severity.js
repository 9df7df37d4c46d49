// Alarm severities: order, colour and the text marker that goes with the colour everywhere.
import { el } from './dom.js';

export const ORDER = ['critical', 'major', 'minor', 'warning', 'indeterminate'];
export const RANK = { critical: 5, major: 4, minor: 3, warning: 2, indeterminate: 1, cleared: 0 };
export const MARK = { critical: '✖', major: '▲', minor: '◆', warning: '●', indeterminate: '?', cleared: '✓' };
export const SHORT = { critical: 'CRIT', major: 'MAJ', minor: 'MIN', warning: 'WARN', indeterminate: 'IND', cleared: 'CLR' };
// Okabe-Ito (colour-blind safe); matches css/console.css.
export const COLOUR = {
  critical: '#e8501e', major: '#f0a020', minor: '#f0e442', warning: '#56b4e9',
  indeterminate: '#a0a8b0', cleared: '#2fbf8f',
};
export const DOWN = '#ff3b30';

export function marker(severity) {
  return severity ? `${MARK[severity] || '?'} ${SHORT[severity] || severity.toUpperCase()}` : '';
}

export function chip(severity) {
  const sev = severity || 'ok';
  return el('span', { class: `sev sev-${sev}`, dataset: { severity: sev } },
    severity ? marker(severity) : '✓ OK');
}

export function worst(severities) {
  let best = null;
  for (const s of severities) if (s && (best === null || (RANK[s] || 0) > (RANK[best] || 0))) best = s;
  return best;
}
