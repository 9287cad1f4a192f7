/**
 * A loopback HTTP proxy in front of moto that records every AWS request (query-protocol bodies parsed)
 * before forwarding it, so tests can assert on the exact parameters quell sent (AssumeRole's session
 * name, source identity and tags) and count calls. It can also answer chosen requests with an AWS error
 * (throttling, access denied) instead of forwarding them — moto cannot inject those.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedAwsRequest {
  action: string;
  params: Record<string, string>;
  accessKeyId: string | undefined;
  at: number;
}

/** An AWS error the proxy answers instead of forwarding (query-protocol XML, as IAM and STS answer). */
interface InjectedFault {
  action: string;
  remaining: number;
  status: number;
  code: string;
  message: string;
}

export interface RecordingProxy {
  url: string;
  requests: RecordedAwsRequest[];
  /** Answers the next `times` requests of `action` with an error instead of forwarding them. */
  fail(action: string, times: number, error: { status: number; code: string; message: string }): void;
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: RecordedAwsRequest[] = [];
  const faults: InjectedFault[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const params = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
      const auth = String(req.headers.authorization ?? '');
      const action = params.Action ?? String(req.headers['x-amz-target'] ?? '');
      requests.push({
        action,
        params,
        accessKeyId: /Credential=([A-Z0-9]+)\//.exec(auth)?.[1],
        at: Date.now(),
      });
      const fault = faults.find((f) => f.action === action && f.remaining > 0);
      if (fault) {
        fault.remaining--;
        res.writeHead(fault.status, { 'content-type': 'text/xml' });
        res.end(
          `<ErrorResponse><Error><Type>Sender</Type><Code>${fault.code}</Code><Message>${fault.message}</Message></Error><RequestId>injected-${requests.length}</RequestId></ErrorResponse>`,
        );
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
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    fail(action, times, error) {
      faults.push({ action, remaining: times, ...error });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
