/**
 * A proxy in front of the fake Slack Web API that answers a share of chat.postMessage and chat.update
 * attempts itself: `ratelimited` (HTTP 429 with Retry-After) or a 5xx. Every attempt is recorded with its
 * body, so a message counts as lost when every attempt of it was refused and none reached the fake.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackAttempt {
  method: string;
  body: string;
  fault: 'ratelimited' | '5xx' | undefined;
}

export interface SlackFaultProxy {
  apiUrl: string;
  attempts: SlackAttempt[];
  close(): Promise<void>;
}

export async function startSlackFaultProxy(
  fakeUrl: string,
  rates: { ratelimited: number; serverError: number; retryAfterSeconds: number },
): Promise<SlackFaultProxy> {
  const upstream = new URL(fakeUrl);
  const attempts: SlackAttempt[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const method = (req.url ?? '').split('?')[0]?.replace(/^\/api\//, '') ?? '';
      const faulty = method === 'chat.postMessage' || method === 'chat.update';
      const roll = Math.random();
      const fault = !faulty
        ? undefined
        : roll < rates.ratelimited
          ? ('ratelimited' as const)
          : roll < rates.ratelimited + rates.serverError
            ? ('5xx' as const)
            : undefined;
      attempts.push({ method, body: body.toString('utf8'), fault });
      if (fault === 'ratelimited') {
        res.writeHead(429, {
          'content-type': 'application/json',
          'retry-after': String(rates.retryAfterSeconds),
        });
        res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
        return;
      }
      if (fault === '5xx') {
        res.writeHead(Math.random() < 0.5 ? 500 : 503, { 'content-type': 'text/plain' });
        res.end('upstream error');
        return;
      }
      const forward = request(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${url}/api/`,
    attempts,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
