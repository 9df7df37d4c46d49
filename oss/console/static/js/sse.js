// Server-sent events read with fetch() and a stream reader, so the token stays in a header
// (EventSource cannot send one). Reconnects with jittered exponential backoff; `onOpen` runs
// every time the server says ": subscribed", which is when a view re-reads what it shows
// (catch-up: nothing missed between the read and the stream).
import { authHeaders } from './api.js';

const BASE_MS = 500;
const MAX_MS = 15000;

export function subscribe(path, { onEvent, onOpen, onState = () => {}, onUnauthorized = () => {} }) {
  let stopped = false;
  let controller = null;
  let attempt = 0;

  async function once() {
    controller = new AbortController();
    const response = await fetch(path, {
      headers: authHeaders({ Accept: 'text/event-stream' }),
      signal: controller.signal, cache: 'no-store', credentials: 'omit',
    });
    if (response.status === 401) { stopped = true; onUnauthorized(); return; }
    if (!response.ok || !response.body) throw new Error(`${path}: HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        dispatch(block);
      }
    }
  }

  function dispatch(block) {
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        if (line.slice(1).trim() === 'subscribed') {
          attempt = 0;
          onState('live');
          onOpen();
        }
      } else if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (!data.length) return;
    let parsed = null;
    try { parsed = JSON.parse(data.join('\n')); } catch { return; }
    onEvent(event, parsed);
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (error) {
        if (stopped) return;
      }
      if (stopped) return;
      onState('reconnecting');
      const pause = Math.min(MAX_MS, BASE_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  })();

  return () => { stopped = true; if (controller) controller.abort(); };
}
