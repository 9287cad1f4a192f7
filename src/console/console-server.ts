/**
 * The console's web server, on 127.0.0.1 only. The printed URL carries a random one-time login token,
 * exchanged on first visit for an HttpOnly SameSite=Strict session cookie; every other request needs
 * that cookie (401 without it). A Host header other than 127.0.0.1:<port> or localhost:<port> is
 * refused (403), so a web page on another origin cannot reach the console by DNS rebinding, and a POST
 * must be JSON from the console's own origin.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.ts';
import { type PageInfo, renderConsolePage } from './console-page.ts';
import type { ConsoleSlackApi } from './console-slack-api.ts';
import { type RenderNames, renderChannel, renderView } from './render-block-kit.ts';
import {
  appHomeOpenedBody,
  blockActionsBody,
  type SlackTarget,
  sendSigned,
  slashCommandBody,
  type ViewStateValues,
  viewSubmissionBody,
} from './send-signed-request.ts';

const COOKIE = 'quell_console';
const MAX_BODY = 64 * 1024;

/** What the console server needs. */
export interface ConsoleServerOptions {
  slack: ConsoleSlackApi;
  target: SlackTarget;
  page: PageInfo;
  log: Logger;
  /** Port on 127.0.0.1; 0 picks a free one. */
  port?: number;
  /** Game days (rehearsal world only): `/quell gameday …` goes to them, not to quell. */
  gameDays?: {
    handle(channel: string, args: string): Promise<string>;
    noteCommand(channel: string): void;
  };
}

/** A running console server. */
export interface ConsoleServer {
  port: number;
  /** The URL to open once: it carries the one-time login token. */
  loginUrl: string;
  close(): Promise<void>;
}

/** Starts the console's web server on 127.0.0.1. */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const { slack, target, page, log } = options;
  let loginToken: string | undefined = randomBytes(24).toString('base64url');
  const sessions = new Set<string>();
  const users = new Set(page.users.map((u) => u.id));
  const channels = new Set(page.channels.map((c) => c.id));
  const names: RenderNames = {
    users: Object.fromEntries(page.users.map((u) => [u.id, u.name])),
    channels: Object.fromEntries(page.channels.map((c) => [c.id, c.name])),
  };
  const html = renderConsolePage(page);
  let port = 0;

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.warn({ err }, 'console request failed');
      if (!res.headersSent) send(res, 500, { error: 'the console could not handle this request' });
    });
  });

  function allowedHost(req: IncomingMessage): boolean {
    const host = String(req.headers.host ?? '').toLowerCase();
    return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  }

  function session(req: IncomingMessage): boolean {
    const cookie = String(req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${COOKIE}=`));
    return cookie !== undefined && sessions.has(cookie.slice(COOKIE.length + 1));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('cache-control', 'no-store');
    if (!allowedHost(req)) {
      send(res, 403, { error: `the console answers only on 127.0.0.1:${port} or localhost:${port}` });
      return;
    }
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (req.method === 'GET' && url.pathname === '/' && url.searchParams.has('token')) {
      const offered = url.searchParams.get('token') ?? '';
      if (!loginToken || !sameSecret(offered, loginToken)) {
        send(res, 401, {
          error: 'this login link was already used or is wrong: restart the console for a new one',
        });
        return;
      }
      loginToken = undefined; // one time only
      const id = randomBytes(24).toString('base64url');
      sessions.add(id);
      res.writeHead(303, {
        'set-cookie': `${COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/`,
        location: '/',
      });
      res.end();
      return;
    }
    if (!session(req)) {
      send(res, 401, { error: 'open the URL the console printed (it carries a one-time login token)' });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        // Only the page's own inline script and style; nothing is fetched from anywhere else.
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
      });
      res.end(html);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/state') {
      const user = url.searchParams.get('user') ?? '';
      const channel = url.searchParams.get('channel') ?? '';
      if (!users.has(user)) return send(res, 400, { error: 'unknown user' });
      const home = slack.homes.get(user);
      const feed =
        channel === 'home'
          ? home
            ? renderView(home.view, names)
            : '<p class="muted">Opening the Home tab…</p>'
          : renderChannel(slack.messages, channel, user, names);
      const modal = slack.modals.get(user);
      send(res, 200, {
        version: slack.version(),
        html: feed,
        modal: modal ? renderView({ ...modal.view, type: 'modal' }, names) : null,
      });
      return;
    }
    if (req.method !== 'POST') return send(res, 404, { error: 'not found' });
    // A cross-site form cannot send JSON, and a foreign page has another Origin.
    const origin = req.headers.origin;
    if (
      origin !== undefined &&
      origin !== `http://127.0.0.1:${port}` &&
      origin !== `http://localhost:${port}`
    )
      return send(res, 403, { error: 'foreign origin' });
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json'))
      return send(res, 415, { error: 'send JSON' });
    const body = await readJson(req);
    const user = String(body.user ?? '');
    if (!users.has(user)) return send(res, 400, { error: 'unknown user' });
    switch (url.pathname) {
      case '/api/command':
        return send(res, 200, await runCommand(user, String(body.channel ?? ''), String(body.text ?? '')));
      case '/api/click':
        return send(res, 200, await click(user, body));
      case '/api/home': {
        const sent = await sendSigned(target, appHomeOpenedBody(user), 'application/json');
        return send(res, 200, { status: sent.status });
      }
      case '/api/submit':
        return send(res, 200, await submit(user, body.values as ViewStateValues));
      case '/api/close-modal':
        slack.closeModal(user);
        return send(res, 200, {});
      default:
        return send(res, 404, { error: 'not found' });
    }
  }

  // A slash command as Slack sends it: the ack's ephemeral answer is shown to the user who typed.
  async function runCommand(user: string, channel: string, typed: string): Promise<Record<string, unknown>> {
    if (!channels.has(channel)) return { error: 'choose a channel first' };
    const match = /^\s*(\/[a-z0-9_-]+)\s*(.*)$/is.exec(typed);
    const command = match?.[1] ?? page.command;
    if (command !== page.command) return { error: `this console knows only ${page.command}` };
    const text = (match ? (match[2] ?? '') : typed).trim();
    const responseUrl = slack.responseUrlFor(user, channel);
    const gameDays = options.gameDays;
    if (gameDays && /^gameday(\s|$)/i.test(text)) {
      const reply = await gameDays.handle(channel, text.slice('gameday'.length));
      await fetch(responseUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ response_type: 'ephemeral', text: reply }),
      });
      return { status: 200 };
    }
    gameDays?.noteCommand(channel);
    const sent = await sendSigned(
      target,
      slashCommandBody({ command, text, user, channel, responseUrl, triggerId: slack.triggerFor(user) }),
    );
    if (sent.json && (sent.json.text || sent.json.blocks)) {
      await fetch(responseUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...sent.json, response_type: sent.json.response_type ?? 'ephemeral' }),
      });
    }
    return { status: sent.status };
  }

  async function click(user: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const common = {
      user,
      actionId: String(body.actionId ?? ''),
      blockId: String(body.blockId ?? ''),
      value: String(body.value ?? ''),
      text: String(body.text ?? ''),
      triggerId: slack.triggerFor(user),
    };
    if (body.surface === 'home') {
      const home = slack.homes.get(user);
      const sent = await sendSigned(
        target,
        blockActionsBody({ ...common, homeViewId: home?.id ?? 'V0HOME' }),
      );
      return { status: sent.status };
    }
    const channel = String(body.channel ?? '');
    const ts = String(body.ts ?? '');
    const message = slack.messages.find((m) => m.channel === channel && m.ts === ts);
    if (!message || (message.visibleTo && message.visibleTo !== user)) return { error: 'no such message' };
    const sent = await sendSigned(
      target,
      blockActionsBody({
        ...common,
        message: {
          channel,
          ts,
          threadTs: message.threadTs,
          responseUrl: slack.responseUrlFor(user, channel),
        },
      }),
    );
    return { status: sent.status };
  }

  async function submit(user: string, values: ViewStateValues | undefined): Promise<Record<string, unknown>> {
    const modal = slack.modals.get(user);
    if (!modal) return { error: 'no modal is open' };
    const sent = await sendSigned(
      target,
      viewSubmissionBody({
        user,
        viewId: modal.id,
        callbackId: String(modal.view.callback_id ?? ''),
        privateMetadata: String(modal.view.private_metadata ?? ''),
        values: values && typeof values === 'object' ? values : {},
        triggerId: slack.triggerFor(user),
      }),
    );
    if (sent.json?.response_action === 'errors') return { errors: sent.json.errors ?? {} };
    slack.closeModal(user);
    return { status: sent.status };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    port,
    loginUrl: `http://127.0.0.1:${port}/?token=${loginToken}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
