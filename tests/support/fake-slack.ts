/**
 * A local fake of the Slack Web API (and of response URLs) that records every call. quell's WebClient
 * points at it through `slackApiUrl`; tests assert on the exact calls made.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One recorded call. */
export interface SlackCall {
  method: string;
  body: Record<string, unknown>;
  at: number;
}

/** A file's bytes as posted to the upload URL that files.getUploadURLExternal handed out. */
export interface UploadedBytes {
  fileId: string;
  filename: string;
  /** The length announced to files.getUploadURLExternal. */
  length: number;
  bytes: Buffer;
}

/** A file shared by files.completeUploadExternal, with the bytes uploaded for it. */
export interface SharedFile {
  id: string;
  title: string;
  filename: string;
  channel: string;
  threadTs: string | undefined;
  content: string;
}

/** The fake's state and controls. */
export interface FakeSlack {
  url: string;
  apiUrl: string;
  calls: SlackCall[];
  /** Members of user groups returned by usergroups.users.list. */
  groups: Map<string, string[]>;
  /** Slack user ids by e-mail address, answered by users.lookupByEmail (others get users_not_found). */
  usersByEmail: Map<string, string>;
  /** Calls of one method. */
  callsOf(method: string): SlackCall[];
  /** The WebSocket URL apps.connections.open hands out (Socket Mode tests). */
  socketUrl?: string;
  /** Messages sent to response URLs. */
  responses: SlackCall[];
  /** Bytes posted to upload URLs (Slack's external upload flow, step 2), by file id. */
  uploads: Map<string, UploadedBytes>;
  /** Files completed with files.completeUploadExternal (step 3), in order. */
  files: SharedFile[];
  /**
   * Makes a Web API call fail: when set and it returns an error code for a call, the call is recorded
   * and answered `{ ok: false, error }` (as Slack answers a refused call).
   */
  fail?: ((method: string, body: Record<string, unknown>) => string | undefined) | undefined;
  /** Waits (bounded) until `predicate` holds over the calls. */
  waitFor(predicate: (calls: SlackCall[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const responses: SlackCall[] = [];
  const groups = new Map<string, string[]>();
  const usersByEmail = new Map<string, string>();
  const uploads = new Map<string, UploadedBytes>();
  const announced = new Map<string, { filename: string; length: number }>();
  const files: SharedFile[] = [];
  let fileCounter = 0;
  let tsCounter = 1_700_000_000;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const type = req.headers['content-type'] ?? '';
      if ((req.url ?? '').startsWith('/upload/')) {
        void receiveUpload((req.url ?? '').slice('/upload/'.length), Buffer.concat(chunks), type, res);
        return;
      }
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> = {};
      if (type.includes('application/json')) body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      else {
        for (const [k, v] of new URLSearchParams(raw)) {
          body[k] = /^[[{]/.test(v) ? safeJson(v) : v;
        }
      }
      const path = (req.url ?? '').split('?')[0] ?? '';
      res.setHeader('content-type', 'application/json');
      if (path.startsWith('/response/')) {
        responses.push({ method: path, body, at: Date.now() });
        res.end(JSON.stringify({ ok: true }));
        return;
      }
      const method = path.replace(/^\/api\//, '');
      // The token is how the client authenticates, not message content: keep only whether it came.
      const authorized = typeof body.token === 'string' || typeof req.headers.authorization === 'string';
      delete body.token;
      calls.push({ method, body: { ...body, authorized }, at: Date.now() });
      const error = fake.fail?.(method, body);
      res.end(JSON.stringify(error ? { ok: false, error } : answer(method, body)));
    });
  });

  // The WebClient posts each file's bytes to its upload URL as multipart/form-data.
  async function receiveUpload(
    fileId: string,
    body: Buffer,
    type: string,
    res: ServerResponse,
  ): Promise<void> {
    const meta = announced.get(fileId);
    let bytes = body;
    try {
      if (type.includes('multipart/form-data')) {
        const form = await new Response(new Uint8Array(body), {
          headers: { 'content-type': type },
        }).formData();
        const part = [...form.values()].find((v): v is File => typeof v !== 'string');
        if (part) bytes = Buffer.from(await part.arrayBuffer());
      }
    } catch {
      bytes = body;
    }
    if (meta) uploads.set(fileId, { fileId, filename: meta.filename, length: meta.length, bytes });
    res.writeHead(meta ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(meta ? `OK - ${bytes.length}` : 'unknown upload');
  }

  function answer(method: string, body: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'files.getUploadURLExternal': {
        const fileId = `F0FAKE${String(++fileCounter).padStart(4, '0')}`;
        announced.set(fileId, { filename: String(body.filename ?? ''), length: Number(body.length ?? 0) });
        return { ok: true, upload_url: `${fake.url}/upload/${fileId}`, file_id: fileId };
      }
      case 'files.completeUploadExternal': {
        const list = Array.isArray(body.files) ? (body.files as { id?: string; title?: string }[]) : [];
        for (const f of list) {
          const uploaded = uploads.get(String(f.id));
          files.push({
            id: String(f.id),
            title: String(f.title ?? ''),
            filename: uploaded?.filename ?? '',
            channel: String(body.channel_id ?? ''),
            threadTs: typeof body.thread_ts === 'string' ? body.thread_ts : undefined,
            content: uploaded?.bytes.toString('utf8') ?? '',
          });
        }
        return { ok: true, files: list.map((f) => ({ id: f.id, title: f.title })) };
      }
      case 'apps.connections.open':
        return fake.socketUrl ? { ok: true, url: fake.socketUrl } : { ok: false, error: 'invalid_auth' };
      case 'auth.test':
        return { ok: true, user_id: 'UQUELLBOT', bot_id: 'BQUELL', team_id: 'T0TEAM', user: 'quell' };
      case 'chat.postMessage':
        tsCounter++;
        return { ok: true, channel: body.channel, ts: `${tsCounter}.000100`, message: { text: body.text } };
      case 'chat.update':
        return { ok: true, channel: body.channel, ts: body.ts };
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `${tsCounter}.000200` };
      case 'users.lookupByEmail': {
        const id = usersByEmail.get(String(body.email ?? '').toLowerCase());
        return id
          ? { ok: true, user: { id, profile: { email: body.email } } }
          : { ok: false, error: 'users_not_found' };
      }
      case 'conversations.open':
        // The bot's DM channel with a user: D and the user id without its U/W.
        return { ok: true, channel: { id: `D${String(body.users ?? '').slice(1)}` } };
      case 'views.publish':
        return { ok: true, view: { id: 'V0HOME', type: 'home' } };
      case 'views.open':
        return { ok: true, view: { id: `V0MODAL${++tsCounter}`, type: 'modal' } };
      case 'usergroups.users.list':
        return { ok: true, users: groups.get(String(body.usergroup)) ?? [] };
      default:
        return { ok: true };
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fake: FakeSlack = {
    url,
    apiUrl: `${url}/api/`,
    calls,
    responses,
    groups,
    usersByEmail,
    uploads,
    files,
    callsOf: (method) => calls.filter((c) => c.method === method),
    async waitFor(predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(calls)) {
        if (Date.now() > deadline)
          throw new Error(
            `fake Slack: condition not met in ${timeoutMs} ms; calls: ${calls.map((c) => c.method).join(', ')}`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return fake;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
