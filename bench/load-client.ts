/**
 * The load generator, run in a worker thread so that the client's own work (requests, signing) does not
 * share the event loop it is measuring. Requests go through one keep-alive node:http Agent per target
 * with no socket limit. Before each burst it opens one connection per request (concurrent GETs to a path
 * both servers answer with 404, so no handler runs); then it signs every body at the same moment and
 * sends them all at once, timing each request from the call to the last byte of the response (the ack).
 */
import { Agent, request as httpRequest } from 'node:http';
import { parentPort } from 'node:worker_threads';
import { sign } from '../tests/support/slack-requests.ts';

/** A burst to send. */
export interface BurstRequest {
  id: number;
  baseUrl: string;
  bodies: string[];
}

/** What a burst measured. */
export interface BurstResult {
  id: number;
  /** Milliseconds from send to the end of the response, in the order of `bodies`. */
  latencies: number[];
  statuses: number[];
  /** The first response body (to check what the ack said). */
  sample: string;
  /** Requests of the measured burst that had to open a new connection (should be 0). */
  newConnections: number;
  /** When the burst started and ended (performance.timeOrigin-based, comparable across threads). */
  startedAt: number;
  endedAt: number;
}

const agents = new Map<string, Agent>();

function agentFor(baseUrl: string): Agent {
  let agent = agents.get(baseUrl);
  if (!agent) {
    agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 10_000 });
    agents.set(baseUrl, agent);
  }
  return agent;
}

function send(
  url: URL,
  agent: Agent,
  options: { method: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; text: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method, headers: options.headers, agent, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            reused: req.reusedSocket,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 30 s`)));
    req.end(options.body);
  });
}

async function burst(request: BurstRequest): Promise<BurstResult> {
  const agent = agentFor(request.baseUrl);
  const primeUrl = new URL('/bench-prime', request.baseUrl);
  await Promise.all(request.bodies.map(() => send(primeUrl, agent, { method: 'GET' })));
  const url = new URL('/slack/events', request.baseUrl);
  const signed = request.bodies.map((body) => ({
    body,
    headers: { ...sign(body), 'content-length': String(Buffer.byteLength(body)) },
  }));
  const latencies: number[] = new Array(signed.length).fill(0);
  const statuses: number[] = new Array(signed.length).fill(0);
  let sample = '';
  let newConnections = 0;
  const startedAt = performance.timeOrigin + performance.now();
  await Promise.all(
    signed.map(async ({ body, headers }, i) => {
      const t0 = performance.now();
      const res = await send(url, agent, { method: 'POST', headers, body });
      latencies[i] = performance.now() - t0;
      statuses[i] = res.status;
      if (!res.reused) newConnections++;
      if (i === 0) sample = res.text;
    }),
  );
  return {
    id: request.id,
    latencies,
    statuses,
    sample,
    newConnections,
    startedAt,
    endedAt: performance.timeOrigin + performance.now(),
  };
}

parentPort?.on('message', (request: BurstRequest) => {
  burst(request).then(
    (result) => parentPort?.postMessage(result),
    (error: unknown) => parentPort?.postMessage({ id: request.id, error: String(error) }),
  );
});
