// DOM helpers. Every piece of data becomes a text node or a property: nothing here parses
// HTML, so a device named <img src=x onerror=alert(1)> shows as those characters.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) node.dataset[k] = String(v);
    } else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'disabled' || key === 'hidden' || key === 'checked' || key === 'selected') node[key] = Boolean(value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export const $ = (id) => document.getElementById(id);

// A list of label/value pairs (values are text or nodes).
export function facts(pairs) {
  const dl = el('dl');
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    dl.append(el('dt', { text: label }), el('dd', {}, value instanceof Node ? value : String(value)));
  }
  return dl;
}

export function table(headers, rows) {
  return el('table', { class: 'grid' },
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { text: h })))),
    el('tbody', {}, rows));
}

// Enter/Space on a focusable row acts as a click: every list is usable from the keyboard.
export function clickable(node, action) {
  node.tabIndex = 0;
  node.addEventListener('click', action);
  node.addEventListener('keydown', (event) => {
    if (event.target !== node) return;
    if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); action(event); }
  });
  return node;
}

let toastTimer = null;
export function notify(message, { error = false, ms = 5000 } = {}) {
  const toast = $('toast');
  toast.textContent = message;
  toast.classList.toggle('error', error);
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, ms);
}

// Puts `nodes` (new or already children) as `parent`'s children in that order, dropping the
// others, with the fewest moves: the nodes already in order (the longest increasing run of
// their wanted places) stay, the rest are inserted. A long list where one row changed, came or
// went costs one DOM change, not a rebuild (style and layout of every row).
export function arrange(parent, nodes) {
  const place = new Map(nodes.map((node, i) => [node, i]));
  for (const child of [...parent.childNodes]) if (!place.has(child)) child.remove();
  const stay = increasingRun([...parent.childNodes].map((node) => place.get(node)));
  let next = null;
  for (let i = nodes.length - 1; i >= 0; i -= 1) {
    if (!stay.has(i)) parent.insertBefore(nodes[i], next);
    next = nodes[i];
  }
  return parent;
}

// The values of one longest strictly increasing subsequence of `seq` (patience sorting).
function increasingRun(seq) {
  const tails = [];
  const prev = new Array(seq.length);
  for (let i = 0; i < seq.length; i += 1) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seq[tails[mid]] < seq[i]) lo = mid + 1; else hi = mid;
    }
    prev[i] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = i;
  }
  const run = new Set();
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = prev[i]) run.add(seq[i]);
  return run;
}
