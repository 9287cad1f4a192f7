/**
 * The console's Slack: a small Slack Web API (and response-URL endpoint) on 127.0.0.1 that quell's own
 * WebClient talks to through SLACK_API_URL. It keeps what Slack would show each person — channel
 * messages with their threads, ephemeral replies, shared files, the Home tab and open modals — so the
 * console page can render them. Only the transport is swapped: quell builds and sends exactly what it
 * sends to Slack.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A file shared into a channel or thread (Slack's external upload flow). */
export interface ConsoleFile {
  id: string;
  title: string;
  filename: string;
  content: string;
}

/** One message as a person in the console sees it. */
export interface ConsoleMessage {
  channel: string;
  ts: string;
  threadTs: string | undefined;
  text: string;
  blocks: unknown[] | undefined;
  /** Set on ephemeral messages: the only user who sees them. */
  visibleTo: string | undefined;
  files: ConsoleFile[];
  /** Whether chat.update changed it after it was posted. */
  edited: boolean;
  /** Who posted it, when not quell (the console's game days). */
  author?: string;
}

/** A view (Home tab or modal) published for one user. */
export interface ConsoleView {
  id: string;
  user: string;
  view: Record<string, unknown>;
}

/** The console's Slack Web API and what it has recorded. */
export interface ConsoleSlackApi {
  /** Base URL (http://127.0.0.1:port). */
  url: string;
  /** What quell's WebClient uses as SLACK_API_URL. */
  apiUrl: string;
  messages: ConsoleMessage[];
  homes: Map<string, ConsoleView>;
  modals: Map<string, ConsoleView>;
  /** A trigger id for a click by `user` (views.open answers the modal to that user). */
  triggerFor(user: string): string;
  /** The response URL for a request made by `user` in `channel`. */
  responseUrlFor(user: string, channel: string): string;
  /** Posts a message of the console's own (a game day's alert or scorecard); returns its ts. */
  post(message: {
    channel: string;
    text: string;
    blocks?: unknown[];
    threadTs?: string;
    author: string;
  }): string;
  /** Closes the modal open for `user`. */
  closeModal(user: string): void;
  /** Bumps on every change; the page polls it. */
  version(): number;
  close(): Promise<void>;
}

/** Starts the console's Slack Web API on 127.0.0.1 (a free port). */
export async function startConsoleSlackApi(): Promise<ConsoleSlackApi> {
  const messages: ConsoleMessage[] = [];
  const homes = new Map<string, ConsoleView>();
  const modals = new Map<string, ConsoleView>();
  const triggers = new Map<string, string>();
  const announced = new Map<string, { filename: string; content: string }>();
  let counter = 0;
  let changes = 0;
  let tsSeconds = Math.floor(Date.now() / 1000);
  const nextTs = () => `${++tsSeconds}.${String(++counter).padStart(6, '0')}`;
  const changed = () => {
    changes++;
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req.url ?? '', String(req.headers['content-type'] ?? ''), Buffer.concat(chunks), res);
    });
  });

  async function handle(url: string, type: string, raw: Buffer, res: ServerResponse): Promise<void> {
    const path = url.split('?')[0] ?? '';
    if (path.startsWith('/upload/')) {
      const fileId = path.slice('/upload/'.length);
      const meta = announced.get(fileId);
      if (meta) meta.content = (await uploadedBytes(raw, type)).toString('utf8');
      res.writeHead(meta ? 200 : 404, { 'content-type': 'text/plain' });
      res.end(meta ? `OK - ${raw.length}` : 'unknown upload');
      return;
    }
    const body = parseBody(raw.toString('utf8'), type);
    res.setHeader('content-type', 'application/json');
    if (path.startsWith('/response/')) {
      const [user = '', channel = ''] = path.slice('/response/'.length).split('/');
      receiveResponse(user, channel, body);
      res.end(JSON.stringify({ ok: true }));
      return;
    }
    res.end(JSON.stringify(answer(path.replace(/^\/api\//, ''), body)));
  }

  // What a response_url post shows: an ephemeral message to the person who clicked or typed.
  function receiveResponse(user: string, channel: string, body: Record<string, unknown>): void {
    if (body.delete_original === true) return;
    messages.push({
      channel,
      ts: nextTs(),
      threadTs: undefined,
      text: String(body.text ?? ''),
      blocks: Array.isArray(body.blocks) ? body.blocks : undefined,
      visibleTo: body.response_type === 'in_channel' ? undefined : user,
      files: [],
      edited: false,
    });
    changed();
  }

  function answer(method: string, body: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { ok: true, user_id: 'UQUELLBOT', bot_id: 'BQUELL', team_id: 'T0CONSOLE', user: 'quell' };
      case 'chat.postMessage': {
        const ts = nextTs();
        const threadTs = typeof body.thread_ts === 'string' ? body.thread_ts : undefined;
        messages.push({
          channel: String(body.channel ?? ''),
          ts,
          threadTs,
          text: String(body.text ?? ''),
          blocks: Array.isArray(body.blocks) ? body.blocks : undefined,
          visibleTo: undefined,
          files: [],
          edited: false,
        });
        changed();
        return { ok: true, channel: body.channel, ts, message: { text: body.text } };
      }
      case 'chat.update': {
        const found = messages.find((m) => m.channel === body.channel && m.ts === body.ts);
        if (!found) return { ok: false, error: 'message_not_found' };
        found.text = String(body.text ?? found.text);
        if (Array.isArray(body.blocks)) found.blocks = body.blocks;
        found.edited = true;
        changed();
        return { ok: true, channel: body.channel, ts: body.ts };
      }
      case 'chat.postEphemeral': {
        const ts = nextTs();
        messages.push({
          channel: String(body.channel ?? ''),
          ts,
          threadTs: typeof body.thread_ts === 'string' ? body.thread_ts : undefined,
          text: String(body.text ?? ''),
          blocks: Array.isArray(body.blocks) ? body.blocks : undefined,
          visibleTo: String(body.user ?? ''),
          files: [],
          edited: false,
        });
        changed();
        return { ok: true, message_ts: ts };
      }
      case 'files.getUploadURLExternal': {
        const fileId = `F0CONSOLE${++counter}`;
        announced.set(fileId, { filename: String(body.filename ?? ''), content: '' });
        return { ok: true, upload_url: `${api.url}/upload/${fileId}`, file_id: fileId };
      }
      case 'files.completeUploadExternal': {
        const list = Array.isArray(body.files) ? (body.files as { id?: string; title?: string }[]) : [];
        const files = list.map((f) => {
          const meta = announced.get(String(f.id));
          return {
            id: String(f.id),
            title: String(f.title ?? meta?.filename ?? ''),
            filename: meta?.filename ?? '',
            content: meta?.content ?? '',
          };
        });
        messages.push({
          channel: String(body.channel_id ?? ''),
          ts: nextTs(),
          threadTs: typeof body.thread_ts === 'string' ? body.thread_ts : undefined,
          text: typeof body.initial_comment === 'string' ? body.initial_comment : '',
          blocks: undefined,
          visibleTo: undefined,
          files,
          edited: false,
        });
        changed();
        return { ok: true, files: list.map((f) => ({ id: f.id, title: f.title })) };
      }
      case 'conversations.open':
        return { ok: true, channel: { id: `D${String(body.users ?? '').slice(1)}` } };
      case 'views.publish': {
        const user = String(body.user_id ?? '');
        homes.set(user, { id: `V0HOME${user}`, user, view: objectOf(body.view) });
        changed();
        return { ok: true, view: { id: `V0HOME${user}`, type: 'home' } };
      }
      case 'views.open': {
        const user = triggers.get(String(body.trigger_id ?? ''));
        if (!user) return { ok: false, error: 'invalid_trigger_id' };
        const id = `V0MODAL${++counter}`;
        modals.set(user, { id, user, view: objectOf(body.view) });
        changed();
        return { ok: true, view: { id, type: 'modal' } };
      }
      case 'usergroups.users.list':
        // The console has no user groups: approvers are listed by user id in its config.
        return { ok: true, users: [] };
      case 'users.lookupByEmail':
        return { ok: false, error: 'users_not_found' };
      default:
        return { ok: true };
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const api: ConsoleSlackApi = {
    url,
    apiUrl: `${url}/api/`,
    messages,
    homes,
    modals,
    triggerFor(user) {
      const trigger = `${++counter}.${randomBytes(6).toString('hex')}`;
      triggers.set(trigger, user);
      return trigger;
    },
    responseUrlFor: (user, channel) =>
      `${url}/response/${encodeURIComponent(user)}/${encodeURIComponent(channel)}`,
    post(message) {
      const ts = nextTs();
      messages.push({
        channel: message.channel,
        ts,
        threadTs: message.threadTs,
        text: message.text,
        blocks: message.blocks,
        visibleTo: undefined,
        files: [],
        edited: false,
        author: message.author,
      });
      changed();
      return ts;
    },
    closeModal(user) {
      if (modals.delete(user)) changed();
    },
    version: () => changes,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return api;
}

function parseBody(raw: string, type: string): Record<string, unknown> {
  if (type.includes('application/json')) {
    const parsed = safeJson(raw);
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  }
  const body: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) body[k] = /^[[{]/.test(v) ? safeJson(v) : v;
  // The token authenticates the client; it is not content and is not kept.
  delete body.token;
  return body;
}

// The WebClient posts a file's bytes to its upload URL as multipart/form-data.
async function uploadedBytes(raw: Buffer, type: string): Promise<Buffer> {
  if (!type.includes('multipart/form-data')) return raw;
  try {
    const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': type } }).formData();
    const part = [...form.values()].find((v): v is File => typeof v !== 'string');
    return part ? Buffer.from(await part.arrayBuffer()) : raw;
  } catch {
    return raw;
  }
}

function objectOf(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return objectOf(safeJson(value));
  return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
