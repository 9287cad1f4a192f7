/**
 * A loopback proxy in front of moto that records every AWS request with its start and end time, can add
 * a fixed latency (so that round trips are measurable: parallel requests overlap, sequential ones do
 * not), and can answer chosen requests itself — an injected failure, or a canned reply — instead of
 * forwarding them. Query-protocol bodies (EC2, STS) and JSON-protocol targets (Secrets Manager) are parsed.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the proxy saw it. */
export interface ProxiedRequest {
  /** `ReplaceNetworkAclAssociation` (query protocol) or `secretsmanager.RotateSecret` (JSON protocol). */
  action: string;
  params: Record<string, string>;
  json: Record<string, unknown> | undefined;
  start: number;
  end: number;
  status: number;
  injected: boolean;
}

/** A reply the proxy gives instead of forwarding. */
export interface InjectedReply {
  status: number;
  body: string;
  contentType?: string;
}

export interface FaultProxy {
  url: string;
  requests: ProxiedRequest[];
  /** Milliseconds added before each request is forwarded. */
  latencyMs: number;
  /** Return a reply to answer the request here; undefined forwards it to moto. */
  intercept:
    | ((req: Omit<ProxiedRequest, 'end' | 'status' | 'injected'>) => InjectedReply | undefined)
    | undefined;
  close(): Promise<void>;
}

/** An EC2 (query protocol) error body, as EC2 sends it. */
export function ec2Error(code: string, message: string, status = 400): InjectedReply {
  return {
    status,
    contentType: 'text/xml',
    body: `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>injected-0000</RequestID></Response>`,
  };
}

/** An IAM/STS (query protocol) error body, as IAM and STS send it. */
export function queryError(code: string, message: string, status = 400): InjectedReply {
  return {
    status,
    contentType: 'text/xml',
    body: `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>injected-0000</RequestId></ErrorResponse>`,
  };
}

/** Answers the next `times` requests of `action` with `reply`; everything else goes on as before. */
export function failNext(proxy: FaultProxy, action: string, times: number, reply: InjectedReply): void {
  let remaining = times;
  const previous = proxy.intercept;
  proxy.intercept = (req) => {
    if (req.action === action && remaining > 0) {
      remaining--;
      return reply;
    }
    return previous?.(req);
  };
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const proxy: FaultProxy = {
    url: '',
    requests: [],
    latencyMs: 0,
    intercept: undefined,
    close: async () => undefined,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const start = performance.now();
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      const targetHeader = String(req.headers['x-amz-target'] ?? '');
      const params = targetHeader ? {} : Object.fromEntries(new URLSearchParams(text));
      let json: Record<string, unknown> | undefined;
      if (targetHeader) {
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
      }
      const action = targetHeader || (params.Action ?? '');
      const record: ProxiedRequest = { action, params, json, start, end: start, status: 0, injected: false };
      proxy.requests.push(record);
      const reply = proxy.intercept?.({ action, params, json, start });
      const finish = (status: number) => {
        record.end = performance.now();
        record.status = status;
      };
      setTimeout(() => {
        if (reply) {
          record.injected = true;
          res.writeHead(reply.status, { 'content-type': reply.contentType ?? 'application/x-amz-json-1.1' });
          res.end(reply.body);
          finish(reply.status);
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
            up.on('end', () => finish(up.statusCode ?? 502));
          },
        );
        forward.on('error', () => {
          res.writeHead(502);
          res.end();
          finish(502);
        });
        forward.end(body);
      }, proxy.latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return proxy;
}

/**
 * The number of sequential round trips among `requests`: the longest chain in which each request starts
 * only after the previous one has ended. Requests sent in parallel overlap and count once.
 */
export function roundTrips(requests: readonly ProxiedRequest[]): number {
  const sorted = [...requests].sort((a, b) => a.start - b.start);
  const depth: number[] = [];
  for (const [i, r] of sorted.entries()) {
    let best = 0;
    for (let j = 0; j < i; j++) {
      const before = sorted[j];
      if (before && before.end <= r.start) best = Math.max(best, depth[j] ?? 0);
    }
    depth.push(best + 1);
  }
  return Math.max(0, ...depth);
}
