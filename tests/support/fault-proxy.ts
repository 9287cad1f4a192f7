/**
 * A loopback proxy in front of moto that records every AWS request with its start and end time, can add
 * a fixed latency, can count round trips in waves (it holds every request until no new one has arrived
 * for a while, then forwards the held batch together: requests sent in parallel share a wave, a request
 * that needed an earlier answer lands in a later one), and can answer chosen requests itself — an
 * injected failure, or a canned reply — instead of forwarding them. Query-protocol bodies (EC2, STS) and
 * JSON-protocol targets (Secrets Manager) are parsed.
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
  /** The wave the proxy forwarded it in, while `waveSettleMs` was set (0 otherwise). */
  wave: number;
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
  /**
   * When above 0, requests are held until none has arrived for this many milliseconds, then forwarded
   * together as one wave (numbered in `wave`). A client that waits for an answer before its next request
   * cannot send that request while the wave is held, so each wave is one round trip; a late sibling of a
   * parallel batch could only make the count higher, never lower.
   */
  waveSettleMs: number;
  /** Return a reply to answer the request here; undefined forwards it to moto. */
  intercept:
    | ((req: Omit<ProxiedRequest, 'end' | 'status' | 'injected' | 'wave'>) => InjectedReply | undefined)
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
    waveSettleMs: 0,
    intercept: undefined,
    close: async () => undefined,
  };
  let wave = 0;
  let arrivals = 0;
  let held: { record: ProxiedRequest; go: () => void }[] = [];
  let settle: NodeJS.Timeout | undefined;
  const releaseWhenSettled = () => {
    clearTimeout(settle);
    const seen = arrivals;
    settle = setTimeout(() => {
      // A request whose bytes were already waiting is read in the poll phase, before setImmediate runs.
      setImmediate(() => {
        if (arrivals !== seen) return; // a later arrival re-armed the timer
        const batch = held;
        held = [];
        wave++;
        for (const h of batch) {
          h.record.wave = wave;
          h.go();
        }
      });
    }, proxy.waveSettleMs);
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
      const record: ProxiedRequest = {
        action,
        params,
        json,
        start,
        end: start,
        status: 0,
        injected: false,
        wave: 0,
      };
      proxy.requests.push(record);
      const reply = proxy.intercept?.({ action, params, json, start });
      const finish = (status: number) => {
        record.end = performance.now();
        record.status = status;
      };
      const go = () => {
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
      };
      arrivals++;
      if (proxy.waveSettleMs > 0) {
        held.push({ record, go });
        releaseWhenSettled();
      } else setTimeout(go, proxy.latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      clearTimeout(settle);
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return proxy;
}

/** The number of waves (round trips) `requests` were forwarded in, with `waveSettleMs` set. */
export function wavesOf(requests: readonly ProxiedRequest[]): number {
  return new Set(requests.map((r) => r.wave)).size;
}
