/**
 * A CloudTrail that has no events. moto has no LookupEvents; its errors, retried by the SDK at
 * CloudTrail's pace, would cost every disable-key run (which reads the key's CloudTrail for its evidence
 * and the roles it assumed) seconds. The test run and `npm run proof` point AWS_ENDPOINT_URL_CLOUDTRAIL
 * here; tests about CloudTrail start their own fake (fake-cloudtrail.ts).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts it on a free loopback port; resolves to its URL and a stop function. */
export async function startEmptyCloudTrail(): Promise<{ url: string; close(): void }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end('{"Events":[]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}
