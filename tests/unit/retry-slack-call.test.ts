/**
 * Slack faults do not lose messages: the audit-channel sink and the run notifier try again (after the
 * WebClient's own retries) while Slack answers `ratelimited` or a 5xx, and give up at once on an answer
 * that another try cannot change. A local Web API answers the first attempts with faults and records
 * every attempt; the WebClient itself is set to no retries of its own, so each attempt is one round.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { WebClient } from '@slack/web-api';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { createAuditChannelSink } from '../../src/slack/audit-channel-sink.ts';
import { retrySlackCall } from '../../src/slack/retry-slack-call.ts';
import { createSlackNotifier } from '../../src/slack/slack-notifier.ts';
import type { AuditRecord, RunRecord } from '../../src/store/store.ts';

type Fault = 'ratelimited' | '5xx' | 'channel_not_found';

/** A Web API that answers attempts with `faults` in order, then ok; records every attempt's text. */
async function startFaultySlack(faults: Fault[]) {
  const attempts: { method: string; text: string; answered: Fault | 'ok' }[] = [];
  const queue = [...faults];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      const method = (req.url ?? '').replace('/api/', '');
      const params = new URLSearchParams(body);
      const fault = queue.shift();
      attempts.push({ method, text: params.get('text') ?? '', answered: fault ?? 'ok' });
      if (fault === 'ratelimited') {
        res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
      } else if (fault === '5xx') {
        res.writeHead(503);
        res.end('unavailable');
      } else if (fault === 'channel_not_found') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'channel_not_found' }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, ts: '1700000000.000100', channel: params.get('channel') }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
  const client = new WebClient('xoxb-test', { slackApiUrl: url, retryConfig: { retries: 0 } });
  return { attempts, client, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const noDelay = { delayMs: 0, sleep: async () => undefined };
let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

function capturingLog() {
  const lines: string[] = [];
  const log = createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  return { log, lines };
}

const record = (seq: number): AuditRecord => ({
  seq,
  at: 0,
  type: 'approval.decision',
  runId: 'r000000000001',
  actor: 'U0LEAD1',
  data: { decision: 'approve' },
  prevHash: 'a'.repeat(64),
  hash: 'b'.repeat(64),
});

describe('Slack faults', () => {
  it('the audit channel gets every line, in order, through ratelimited and 5xx answers', async () => {
    const slack = await startFaultySlack(['ratelimited', '5xx', '5xx', 'ratelimited']);
    close = slack.close;
    const { log, lines } = capturingLog();
    const mirror = createAuditChannelSink(slack.client as never, 'C0AUDIT', log, noDelay);
    for (const seq of [1, 2, 3]) mirror.sink(record(seq));
    await mirror.drain();
    const delivered = slack.attempts.filter((a) => a.answered === 'ok').map((a) => a.text.split(' ')[0]);
    expect(delivered).toEqual(['`#1`', '`#2`', '`#3`']);
    // Four faults (more than the WebClient's own retries would take), then the three lines: seven attempts.
    expect(slack.attempts).toHaveLength(7);
    expect(lines.filter((l) => l.includes('could not mirror'))).toHaveLength(0);
  });

  it('gives up after its rounds and reports the gap, without holding up the next line', async () => {
    const slack = await startFaultySlack(['5xx', '5xx', '5xx']);
    close = slack.close;
    const { log, lines } = capturingLog();
    const mirror = createAuditChannelSink(slack.client as never, 'C0AUDIT', log, { ...noDelay, rounds: 2 });
    mirror.sink(record(1));
    mirror.sink(record(2));
    await mirror.drain();
    expect(slack.attempts.map((a) => a.answered)).toEqual(['5xx', '5xx', '5xx', 'ok']);
    expect(lines.filter((l) => l.includes('could not mirror'))).toHaveLength(1);
  });

  it('does not retry an answer another try cannot change (channel_not_found)', async () => {
    const slack = await startFaultySlack(['channel_not_found']);
    close = slack.close;
    await expect(
      retrySlackCall(() => slack.client.chat.postMessage({ channel: 'C0GONE', text: 'x' }), noDelay),
    ).rejects.toMatchObject({ code: 'slack_webapi_platform_error' });
    expect(slack.attempts).toHaveLength(1);
  });

  it("a run's card and thread line arrive through faults", async () => {
    const slack = await startFaultySlack(['ratelimited', '5xx', '5xx', 'ratelimited']);
    close = slack.close;
    const { log } = capturingLog();
    const notifier = createSlackNotifier(slack.client as never, log, noDelay);
    const run = {
      id: 'r000000000001',
      runbook: 'disable-key',
      channel: 'C0INCIDENT',
      requester: 'U0RESP',
      source: 'slack',
      messageTs: '1700000000.000100',
    } as unknown as RunRecord;
    await notifier.reply(run, 'step one done');
    expect(slack.attempts.map((a) => a.answered)).toEqual(['ratelimited', '5xx', '5xx', 'ratelimited', 'ok']);
    expect(slack.attempts.at(-1)?.text).toBe('step one done');
  });
});
