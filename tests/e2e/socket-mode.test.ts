/**
 * Socket Mode (the default): a local WebSocket server plays Slack's side. apps.connections.open (on the
 * fake Web API) hands out its URL; the server says hello, then sends a slash command and a button click
 * as envelopes; quell acknowledges each envelope and the key is disabled in moto.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { createQuell, type Quell } from '../../src/app.ts';
import { ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FakeSlack, startFakeSlack } from '../support/fake-slack.ts';
import { BOT_TOKEN, waitForRunOf, waitForRunState } from '../support/test-quell.ts';

describe('socket mode', () => {
  let slack: FakeSlack;
  let wss: WebSocketServer;
  let socket: WebSocket | undefined;
  let quell: Quell;
  let iam: IAMClient;
  let dir: string;
  const acks = new Map<string, Record<string, unknown>>();
  const accountId = randomAccountId();

  beforeAll(async () => {
    iam = await adminIam(accountId);
    slack = await startFakeSlack();
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    slack.socketUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/link`;
    wss.on('connection', (ws) => {
      socket = ws;
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as {
          envelope_id?: string;
          payload?: Record<string, unknown>;
        };
        if (message.envelope_id) acks.set(message.envelope_id, message.payload ?? {});
      });
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: 1,
          connection_info: { app_id: 'A0QUELL' },
          debug_info: { host: 'local' },
        }),
      );
    });
    dir = mkdtempSync(join(tmpdir(), 'quell-socket-'));
    quell = await createQuell({
      config: ConfigSchema.parse({
        accounts: [accountConfig('prod', accountId)],
        approvals: { approvers: ['U0LEAD1'] },
        channels: { C0INCIDENT: { runbooks: ['*'], accounts: ['*'] } },
        storage: { url: `sqlite:${join(dir, 'q.db')}` },
      }),
      secrets: { botToken: BOT_TOKEN, appToken: 'xapp-1-A0QUELL-1-socketmodetesttoken' },
      log: createLogger({ level: 'silent' }),
      slackApiUrl: slack.apiUrl,
      port: 0,
      host: '127.0.0.1',
    });
    await quell.start();
  });
  afterAll(async () => {
    await quell?.stop();
    for (const client of wss?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => wss?.close(() => resolve()));
    await slack?.close();
    iam?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function send(envelope: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = String(envelope.envelope_id);
    socket?.send(JSON.stringify(envelope));
    for (let i = 0; i < 200 && !acks.has(id); i++) await new Promise((r) => setTimeout(r, 20));
    const ack = acks.get(id);
    if (!ack) throw new Error(`no ack for envelope ${id}`);
    return ack;
  }

  const command = (id: string, text: string, user: string) => ({
    envelope_id: id,
    type: 'slash_commands',
    accepts_response_payload: true,
    payload: {
      token: 'unused',
      team_id: 'T0TEAM',
      channel_id: 'C0INCIDENT',
      user_id: user,
      command: '/quell',
      text,
      api_app_id: 'A0QUELL',
      response_url: `${slack.url}/response/${user}`,
      trigger_id: '1.2.3',
    },
  });

  it('connects, answers commands in the envelope ack, and runs an approved disable-key', async () => {
    for (let i = 0; i < 200 && !socket; i++) await new Promise((r) => setTimeout(r, 20));
    expect(socket).toBeDefined();
    expect(slack.callsOf('apps.connections.open')).toHaveLength(1);

    const help = await send(command('env-help', 'help', 'U0RESP'));
    expect(String(help.text)).toContain('disable-key');

    const bad = await send(command('env-bad', 'disable-key AKIA123', 'U0RESP'));
    expect(String(bad.text)).toContain('AKIA or ASIA followed by 16 characters');

    const keyId = await createUserWithKey(iam, 'eve');
    const planning = await send(command('env-run', `disable-key ${keyId}`, 'U0RESP'));
    expect(String(planning.text)).toContain('Planning');
    const run = await waitForRunOf(quell, 'U0RESP', ['awaiting_approval']);

    await send({
      envelope_id: 'env-click',
      type: 'interactive',
      accepts_response_payload: false,
      payload: {
        type: 'block_actions',
        team: { id: 'T0TEAM' },
        user: { id: 'U0LEAD1' },
        api_app_id: 'A0QUELL',
        channel: { id: 'C0INCIDENT' },
        container: { type: 'message', channel_id: 'C0INCIDENT', message_ts: run.messageTs },
        message: { ts: run.messageTs },
        response_url: `${slack.url}/response/U0LEAD1`,
        trigger_id: '1.2.3',
        actions: [
          {
            action_id: 'quell_approve',
            block_id: `run:${run.id}`,
            value: run.id,
            type: 'button',
            action_ts: '1',
          },
        ],
      },
    });
    expect((await waitForRunState(quell, run.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(iam, 'eve', keyId)).toBe('Inactive');
  });
});
