// The API client: the bearer token from sessionStorage in the Authorization header, never in a
// URL; errors as the API's problem documents (their detail names what was wrong).

const KEY = 'oss.console.token';

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  save(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, detail, doc) {
    super(detail);
    this.status = status;
    this.doc = doc;
  }
}

let unauthorized = () => {};
export function onUnauthorized(handler) { unauthorized = handler; }

export function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${session.token}`, ...extra };
}

export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, signal, cache: 'no-store', credentials: 'omit',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) unauthorized();
  if (!response.ok) {
    let doc = null;
    try { doc = await response.json(); } catch { /* not JSON: keep the status text */ }
    const detail = (doc && (doc.detail || doc.message || doc.reason)) || response.statusText;
    throw new ApiError(response.status, `${response.status}: ${detail}`, doc);
  }
  if (response.status === 204) return null;
  return response.json();
}

export const q = encodeURIComponent;
