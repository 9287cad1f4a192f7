/**
 * The HTTP front door: `POST /slack/events` goes to Bolt's HTTPReceiver (which verifies the signature and
 * rejects timestamps more than 5 minutes old) after quell rejects timestamps more than 5 minutes in the
 * future, which Bolt does not check; `GET /healthz` reports whether the store answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';

/** Slack's replay window, applied in both directions. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Counters of what the front door refused (read by tests and the benchmark). */
export interface HttpCounters {
  rejectedTimestamps: number;
}

/** Creates the server; `slackListener` is HTTPReceiver.requestListener (absent in socket mode). */
export function createHttpServer(options: {
  slackListener?: (req: IncomingMessage, res: ServerResponse) => void;
  health: () => Promise<void>;
  log: Logger;
  now?: () => number;
}): { server: Server; counters: HttpCounters } {
  const counters: HttpCounters = { rejectedTimestamps: 0 };
  const now = options.now ?? Date.now;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      options.health().then(
        () => send(res, 200, { ok: true }),
        () => send(res, 503, { ok: false, error: 'storage unavailable' }),
      );
      return;
    }
    if (req.method === 'POST' && path === '/slack/events' && options.slackListener) {
      const header = req.headers['x-slack-request-timestamp'];
      const seconds = typeof header === 'string' && /^\d{1,12}$/.test(header) ? Number(header) : Number.NaN;
      if (!Number.isFinite(seconds) || Math.abs(seconds * 1000 - now()) > MAX_CLOCK_SKEW_MS) {
        counters.rejectedTimestamps++;
        options.log.warn({ path }, 'rejected a Slack request with a missing or out-of-window timestamp');
        send(res, 401, { ok: false, error: 'invalid timestamp' });
        req.resume();
        return;
      }
      options.slackListener(req, res);
      return;
    }
    send(res, 404, { ok: false });
    req.resume();
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  return { server, counters };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
