/**
 * A loopback HTTP proxy that can stop time at a chosen point of a request: it forwards everything to its
 * target and counts what it forwarded per operation, except that it can hold the next matching request
 * before forwarding it (the call never reaches the target) or hold its response after forwarding it (the
 * call happened, the caller never hears). Crash tests kill a replica while it waits there.
 * Operations: the AWS query-protocol `Action` (IAM, STS), the JSON-protocol `X-Amz-Target`, or the Slack
 * Web API method from `/api/<method>`.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where a held request stopped. */
export type HoldStage = 'request' | 'response';

/** A request the proxy is holding. */
export interface HeldRequest {
  operation: string;
  body: string;
  /** Carries on as if nothing had been held (forwards the request, or delivers the response). */
  release(): void;
  /** Whether the caller has gone away (its process died) while held. */
  readonly callerGone: boolean;
}

/** Picks requests by their body (form-encoded for IAM, STS and the Slack Web API). */
export type BodyMatch = (body: URLSearchParams) => boolean;

export interface HoldProxy {
  url: string;
  /** Requests of `operation` forwarded to the target (only those whose body matches, when given). */
  forwarded(operation: string, where?: BodyMatch): number;
  /**
   * Resolves once the next request of `operation` (whose body matches, when given) is held at `stage`,
   * bounded by `timeoutMs`. Other requests pass.
   */
  hold(
    operation: string,
    stage: HoldStage,
    options?: { where?: BodyMatch; timeoutMs?: number },
  ): Promise<HeldRequest>;
  close(): Promise<void>;
}

function operationOf(req: IncomingMessage, body: string): string {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path.startsWith('/api/')) return path.slice('/api/'.length);
  const action = new URLSearchParams(body).get('Action');
  if (action) return action;
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop() ?? target;
  return path;
}

export async function startHoldProxy(target: string): Promise<HoldProxy> {
  const upstream = new URL(target);
  const sent: { operation: string; body: URLSearchParams }[] = [];
  const waiting: {
    operation: string;
    stage: HoldStage;
    where: BodyMatch | undefined;
    resolve: (held: HeldRequest) => void;
  }[] = [];

  const forward = (
    req: IncomingMessage,
    body: Buffer,
    operation: string,
    deliver: (status: number, headers: Record<string, unknown>, payload: Buffer) => void,
    fail: () => void,
  ) => {
    sent.push({ operation, body: new URLSearchParams(body.toString('utf8')) });
    const out = request(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => deliver(res.statusCode ?? 502, res.headers, Buffer.concat(chunks)));
      },
    );
    out.on('error', fail);
    out.end(body);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = operationOf(req, body.toString('utf8'));
      let callerGone = false;
      res.on('close', () => {
        if (!res.writableFinished) callerGone = true;
      });
      const send = (status: number, headers: Record<string, unknown>, payload: Buffer) => {
        if (callerGone) return;
        const { 'transfer-encoding': _te, connection: _c, 'content-length': _cl, ...rest } = headers;
        res.writeHead(status, { ...(rest as Record<string, string>), 'content-length': payload.length });
        res.end(payload);
      };
      const fail = () => {
        if (!callerGone) {
          res.writeHead(502);
          res.end();
        }
      };
      const params = new URLSearchParams(body.toString('utf8'));
      const index = waiting.findIndex((w) => w.operation === operation && (!w.where || w.where(params)));
      const hold = index >= 0 ? waiting.splice(index, 1)[0] : undefined;
      const held = (release: () => void): HeldRequest => ({
        operation,
        body: body.toString('utf8'),
        release,
        get callerGone() {
          return callerGone;
        },
      });
      if (hold?.stage === 'request') {
        // Never forwarded unless released, and never once the caller has died.
        hold.resolve(
          held(() => {
            if (!callerGone) forward(req, body, operation, send, fail);
          }),
        );
        return;
      }
      if (hold?.stage === 'response') {
        forward(
          req,
          body,
          operation,
          (status, headers, payload) => hold.resolve(held(() => send(status, headers, payload))),
          fail,
        );
        return;
      }
      forward(req, body, operation, send, fail);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    forwarded: (operation, where) =>
      sent.filter((r) => r.operation === operation && (!where || where(r.body))).length,
    hold(operation, stage, { where, timeoutMs = 30_000 } = {}) {
      return new Promise<HeldRequest>((resolve, reject) => {
        const entry = {
          operation,
          stage,
          where,
          resolve: (held: HeldRequest) => {
            clearTimeout(timer);
            resolve(held);
          },
        };
        const timer = setTimeout(() => {
          const i = waiting.indexOf(entry);
          if (i >= 0) waiting.splice(i, 1);
          reject(new Error(`hold proxy: no ${operation} request within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.push(entry);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
