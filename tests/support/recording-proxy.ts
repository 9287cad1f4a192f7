/**
 * A loopback HTTP proxy in front of moto that records every AWS request (query-protocol bodies parsed)
 * before forwarding it, so tests can assert on the exact parameters quell sent (AssumeRole's session
 * name, source identity and tags) and count calls.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedAwsRequest {
  action: string;
  params: Record<string, string>;
  accessKeyId: string | undefined;
  at: number;
}

export async function startRecordingProxy(
  target: string,
): Promise<{ url: string; requests: RecordedAwsRequest[]; close(): Promise<void> }> {
  const requests: RecordedAwsRequest[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const params = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
      const auth = String(req.headers.authorization ?? '');
      requests.push({
        action: params.Action ?? String(req.headers['x-amz-target'] ?? ''),
        params,
        accessKeyId: /Credential=([A-Z0-9]+)\//.exec(auth)?.[1],
        at: Date.now(),
      });
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
