/**
 * Request signing on the HTTP receiver: only correctly signed requests within 5 minutes of now (in the
 * past AND the future — Bolt itself checks only the past) reach a handler. Counts attempts and acceptances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { postSigned, SIGNING_SECRET, sign, slashCommand } from '../support/slack-requests.ts';
import { INCIDENT, startTestQuell, type TestQuell } from '../support/test-quell.ts';

describe('signature verification', () => {
  let t: TestQuell;
  beforeAll(async () => {
    t = await startTestQuell({ accounts: [accountConfig('prod', randomAccountId())] });
  });
  afterAll(async () => {
    await t?.close();
  });

  const body = () =>
    slashCommand({ text: 'disable-key AKIAIOSFODNN7EXAMPLE', user: 'U0ATTACKER', channel: INCIDENT });
  const nowSec = () => Math.floor(Date.now() / 1000);

  it('accepts a correctly signed request', async () => {
    const res = await postSigned(
      t.baseUrl,
      slashCommand({ text: 'help', user: 'U0RESP', channel: INCIDENT }),
    );
    expect(res.status).toBe(200);
    expect(String(res.json?.text)).toContain('What you can run here');
  });

  it('rejects forged, stale and future-dated requests: 0 of 11 accepted', async () => {
    const rejectedBefore = t.quell.counters.rejectedTimestamps;
    const attempts: Promise<{ status: number }>[] = [];
    // Wrong secret; tampered body; signature of another body.
    attempts.push(postSigned(t.baseUrl, body(), { secret: 'f'.repeat(32) }));
    attempts.push(
      fetch(`${t.baseUrl}/slack/events`, {
        method: 'POST',
        headers: sign(body()),
        body: body().replace('U0ATTACKER', 'U0LEAD1'),
      }),
    );
    attempts.push(
      fetch(`${t.baseUrl}/slack/events`, { method: 'POST', headers: sign('other'), body: body() }),
    );
    // Missing headers.
    const { 'x-slack-signature': _sig, ...noSignature } = sign(body());
    attempts.push(fetch(`${t.baseUrl}/slack/events`, { method: 'POST', headers: noSignature, body: body() }));
    const { 'x-slack-request-timestamp': _ts, ...noTimestamp } = sign(body());
    attempts.push(fetch(`${t.baseUrl}/slack/events`, { method: 'POST', headers: noTimestamp, body: body() }));
    // Correctly signed but outside the window: past (Bolt's check) and future (quell's check). A request
    // dated in the past only gets staler on its way; one dated in the future gets closer to now, so the
    // nearest future one is 310 s ahead of the next whole second: still out of the window after 10 s of
    // delay on a loaded machine (301 s from the current second was accepted once, 1 s later).
    for (const offset of [-301, -3600]) {
      attempts.push(postSigned(t.baseUrl, body(), { timestamp: nowSec() + offset }));
    }
    for (const offset of [310, 3600, 86_400 * 365]) {
      attempts.push(postSigned(t.baseUrl, body(), { timestamp: Math.ceil(Date.now() / 1000) + offset }));
    }
    // A timestamp that is not a number, signed as given.
    attempts.push(postSigned(t.baseUrl, body(), { headers: { 'x-slack-request-timestamp': '1e99' } }));
    const results = await Promise.all(attempts);
    expect(results).toHaveLength(11);
    expect(results.filter((r) => r.status === 200)).toHaveLength(0);
    await t.settle();
    expect(await t.quell.store.listRuns({ limit: 10 })).toHaveLength(0);
    expect((await t.quell.store.listAudit()).filter((e) => e.actor === 'U0ATTACKER')).toHaveLength(0);
    // quell's own timestamp check (before Bolt's signature check) refused exactly 7 of this test's requests:
    // the missing timestamp, the five out of the window (past and future) and the non-number.
    expect(t.quell.counters.rejectedTimestamps - rejectedBefore).toBe(7);
  });

  it('accepts small clock skew within the window', async () => {
    for (const offset of [-240, 240]) {
      const res = await postSigned(
        t.baseUrl,
        slashCommand({ text: 'help', user: 'U0RESP', channel: INCIDENT }),
        {
          timestamp: nowSec() + offset,
        },
      );
      expect(res.status).toBe(200);
    }
  });

  it('answers the health endpoint and nothing else', async () => {
    expect((await fetch(`${t.baseUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.baseUrl}/slack/other`, { method: 'POST', body: 'x' })).status).toBe(404);
  });

  it('uses the signing secret only to verify, never echoing it', () => {
    expect(t.logLines.join('\n')).not.toContain(SIGNING_SECRET);
  });
});
