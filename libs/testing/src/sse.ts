/**
 * The one Node-side SSE client (tests and the shorts benchmark; the page uses the browser's EventSource):
 * fetch for the connection, eventsource-parser for the wire format (the WHATWG event-stream grammar:
 * multi-line data, comments, CR/LF variants, a BOM), JSON for each event's data.
 */
import { createParser } from 'eventsource-parser';

export interface SseEvent {
  id?: string;
  event?: string;
  data: any;
  /** Date.now() when this process parsed the event (delivery-latency measurements). */
  receivedAt: number;
}

export interface SseStream {
  status: number;
  /** Resolves when the server ends the stream, the signal aborts it, or the connection breaks. */
  done: Promise<void>;
}

/** Opens `url` as an event stream; `onEvent` sees every event in order. Non-200 answers end at once. */
export async function openSse(url: string, opts: { headers?: Record<string, string>; signal?: AbortSignal; onEvent: (e: SseEvent) => void }): Promise<SseStream> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...opts.headers }, signal: opts.signal });
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel().catch(() => undefined);
    return { status: res.status, done: Promise.resolve() };
  }
  const parser = createParser({
    onEvent: (m) => opts.onEvent({ id: m.id, event: m.event, data: JSON.parse(m.data), receivedAt: Date.now() }),
  });
  const done = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body!) parser.feed(decoder.decode(chunk, { stream: true }));
    } catch {
      /* aborted or the connection broke: the stream is over either way */
    }
  })();
  return { status: res.status, done };
}

/** Reads an SSE response until `stop(events)` is true, the server ends it, or the timeout. */
export async function readSse(url: string, headers: Record<string, string>, stop: (events: SseEvent[]) => boolean, timeoutMs = 120000): Promise<{ status: number; events: SseEvent[] }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const events: SseEvent[] = [];
  try {
    const stream = await openSse(url, {
      headers,
      signal: ac.signal,
      onEvent: (e) => {
        events.push(e);
        if (stop(events)) ac.abort();
      },
    });
    await stream.done;
    return { status: stream.status, events };
  } finally {
    clearTimeout(timer);
  }
}
