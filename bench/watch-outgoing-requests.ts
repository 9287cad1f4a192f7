/**
 * Sees the HTTP requests this process makes, to tell which AWS and Slack calls stand between two moments
 * and which of them overlap, without touching quell's code: node:http and undici (fetch) publish on
 * diagnostics channels when a request is sent and when its response has arrived.
 */
import * as diagnostics from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';

/** One HTTP request this process made (to moto or to the fake Slack), seen through diagnostics_channel. */
export interface OutgoingRequest {
  target: 'moto' | 'slack' | 'other';
  label: string;
  start: number;
  end: number | undefined;
  reusedSocket: boolean;
}

/** The part of undici's request object its diagnostics messages carry. */
interface UndiciRequest {
  origin: string;
  path: string;
}

/**
 * Records outgoing HTTP requests while recording. The AWS SDK uses node:http, which publishes when a
 * request is sent and when its response has arrived; IAM and STS use the query protocol, so the
 * operation is read from the `Action=` of the body as it is written. Slack's WebClient uses fetch
 * (undici), which publishes the same moments on its own channels.
 */
export function watchOutgoingRequests(ports: { moto: number; slack: number }) {
  const requests = new Map<object, OutgoingRequest>();
  const state = { recording: false };
  const targetOf = (host: string): OutgoingRequest['target'] => {
    if (host.endsWith(`:${ports.moto}`)) return 'moto';
    if (host.endsWith(`:${ports.slack}`)) return 'slack';
    return 'other';
  };
  const subscriptions: [string, (message: unknown) => void][] = [
    [
      'http.client.request.created',
      (message) => {
        if (!state.recording) return;
        const request = (message as { request: ClientRequest }).request;
        const entry: OutgoingRequest = {
          target: targetOf(String(request.getHeader('host') ?? '')),
          label: request.path,
          start: Number.NaN,
          end: undefined,
          reusedSocket: false,
        };
        requests.set(request, entry);
        if (entry.target !== 'moto') return;
        const end = request.end.bind(request) as (...args: unknown[]) => ClientRequest;
        (request as unknown as { end: (...args: unknown[]) => ClientRequest }).end = (...args: unknown[]) => {
          const body = args[0];
          const text =
            typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8', 0, 200) : '';
          const action = /(?:^|&)Action=(\w+)/.exec(text)?.[1];
          if (action) entry.label = action;
          return end(...args);
        };
      },
    ],
    [
      'http.client.request.start',
      (message) => {
        const entry = requests.get((message as { request: ClientRequest }).request);
        if (entry) entry.start = performance.now();
      },
    ],
    [
      'http.client.response.finish',
      (message) => {
        const { request } = message as { request: ClientRequest; response: IncomingMessage };
        const entry = requests.get(request);
        if (!entry) return;
        entry.end = performance.now();
        entry.reusedSocket = request.reusedSocket;
      },
    ],
    [
      'undici:request:create',
      (message) => {
        if (!state.recording) return;
        const request = (message as { request: UndiciRequest }).request;
        requests.set(request, {
          target: targetOf(request.origin),
          label: request.path.replace(/^\/api\//, ''),
          start: performance.now(),
          end: undefined,
          reusedSocket: true,
        });
      },
    ],
    [
      'undici:client:sendHeaders',
      (message) => {
        const entry = requests.get((message as { request: UndiciRequest }).request);
        if (entry) entry.start = performance.now();
      },
    ],
    [
      'undici:request:trailers',
      (message) => {
        const entry = requests.get((message as { request: UndiciRequest }).request);
        if (entry) entry.end = performance.now();
      },
    ],
  ];
  for (const [name, listener] of subscriptions) diagnostics.subscribe(name, listener);
  return {
    start() {
      requests.clear();
      state.recording = true;
    },
    stop(): OutgoingRequest[] {
      state.recording = false;
      for (const [name, listener] of subscriptions) diagnostics.unsubscribe(name, listener);
      return [...requests.values()].sort((a, b) => a.start - b.start);
    },
  };
}

/** Groups requests into sequential round trips: requests whose time in flight overlaps share one. */
export function roundTrips(requests: OutgoingRequest[]): OutgoingRequest[][] {
  const trips: { end: number; requests: OutgoingRequest[] }[] = [];
  for (const request of [...requests].sort((a, b) => a.start - b.start)) {
    const last = trips.at(-1);
    const end = request.end ?? Number.POSITIVE_INFINITY;
    if (last && request.start < last.end) {
      last.requests.push(request);
      last.end = Math.max(last.end, end);
    } else trips.push({ end, requests: [request] });
  }
  return trips.map((t) => t.requests);
}
