/**
 * Block Kit → HTML for the console page: header, section (text, fields, button accessory), context,
 * actions (buttons with their confirm dialogs), divider, input (plain-text input, static select),
 * images as their alt text. Everything that came from a message is escaped before any tag is added:
 * the mrkdwn rules are applied to already-escaped text and insert fixed tags only
 * (https://api.slack.com/reference/surfaces/formatting). Links are kept only for http(s) URLs.
 */
import type { ConsoleFile, ConsoleMessage } from './console-slack-api.ts';

/** Display names for user and channel ids (`<@U…>` renders as `@name`). */
export interface RenderNames {
  users: Record<string, string>;
  channels: Record<string, string>;
}

type Json = Record<string, unknown>;

// The emoji codes quell's messages use, as Slack shows them; any other code stays as typed.
const EMOJI: Record<string, string> = {
  warning: '⚠️',
  zzz: '💤',
  white_check_mark: '✅',
  x: '❌',
  no_entry: '⛔',
  white_circle: '⚪',
  wave: '👋',
  two: '2️⃣',
  rotating_light: '🚨',
  red_circle: '🔴',
  raised_hand: '✋',
  lock: '🔒',
  large_yellow_circle: '🟡',
  large_orange_circle: '🟠',
  large_blue_circle: '🔵',
  hourglass_flowing_sand: '⏳',
  hourglass: '⌛',
  gear: '⚙️',
  cloud: '☁️',
  arrows_counterclockwise: '🔄',
  alarm_clock: '⏰',
};

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

// Slack escapes &, < and > in message text; decode them once before escaping for HTML.
function decodeSlackEntities(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** Slack's mrkdwn as HTML: mentions, channel links, links, code, bold, italic, strike, line breaks. */
export function renderMrkdwn(text: string, names: RenderNames): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the NUL placeholders below must be ours only
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  const tokens: string[] = [];
  const hold = (html: string) => `\u0000${tokens.push(html) - 1}\u0000`;
  let out = clean.replace(/<([^<>\n]{1,500})>/g, (_, inner: string) => hold(renderSpecial(inner, names)));
  out = escapeHtml(decodeSlackEntities(out));
  out = out.replace(/```([\s\S]+?)```/g, (_, code: string) => hold(`<pre>${code.replace(/^\n/, '')}</pre>`));
  out = out.replace(/`([^`\n]+)`/g, (_, code: string) => hold(`<code>${code}</code>`));
  out = out.replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,:;!?])/g, '$1<b>$2</b>');
  out = out.replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,:;!?])/g, '$1<i>$2</i>');
  out = out.replace(/(^|[\s(])~([^~\n]+)~(?=$|[\s).,:;!?])/g, '$1<s>$2</s>');
  out = out.replace(/\n/g, '<br>');
  out = out.replace(/:([a-z0-9_+-]{1,40}):/g, (code: string, name: string) => EMOJI[name] ?? code);
  // Placeholders may nest (a mention inside a code span): resolve until none is left.
  for (let i = 0; i < 3 && out.includes('\u0000'); i++) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the NUL-delimited placeholders made above
    out = out.replace(/\u0000(\d+)\u0000/g, (_, n: string) => tokens[Number(n)] ?? '');
  }
  return out;
}

function renderSpecial(inner: string, names: RenderNames): string {
  const [target = '', label] = inner.split('|', 2);
  if (target.startsWith('@')) {
    const id = target.slice(1);
    return `<span class="mention">@${escapeHtml(names.users[id] ?? label ?? id)}</span>`;
  }
  if (target.startsWith('#')) {
    const id = target.slice(1);
    return `<span class="mention">#${escapeHtml(names.channels[id] ?? label ?? id)}</span>`;
  }
  if (target.startsWith('!')) {
    // <!here>, <!channel>, <!date^…|fallback>: shown as text, never as a notification.
    return `<span class="mention">${escapeHtml(label ?? `@${target.slice(1).split('^')[0]}`)}</span>`;
  }
  const text = escapeHtml(decodeSlackEntities(label ?? target));
  if (/^https?:\/\//i.test(target)) {
    return `<a href="${escapeHtml(decodeSlackEntities(target))}" rel="noopener noreferrer" target="_blank">${text}</a>`;
  }
  return text;
}

/** A text object (plain_text or mrkdwn). */
function renderText(value: unknown, names: RenderNames): string {
  if (!value || typeof value !== 'object') return '';
  const t = value as Json;
  const text = typeof t.text === 'string' ? t.text : '';
  return t.type === 'mrkdwn' ? renderMrkdwn(text, names) : escapeHtml(text).replace(/\n/g, '<br>');
}

/** A button with what a click must send back (action id, block id, value) and its confirm dialog. */
function renderButton(el: Json, blockId: string, names: RenderNames): string {
  const style = el.style === 'primary' || el.style === 'danger' ? ` ${el.style}` : '';
  const confirm = el.confirm as Json | undefined;
  const confirmAttr = confirm
    ? ` data-confirm="${escapeHtml(
        JSON.stringify({
          title: plainOf(confirm.title),
          text: plainOf(confirm.text),
          confirm: plainOf(confirm.confirm) || 'Confirm',
          deny: plainOf(confirm.deny) || 'Cancel',
        }),
      )}"`
    : '';
  if (typeof el.url === 'string' && /^https?:\/\//i.test(el.url)) {
    return `<a class="button${style}" href="${escapeHtml(el.url)}" rel="noopener noreferrer" target="_blank">${renderText(el.text, names)}</a>`;
  }
  return `<button type="button" class="button${style}" data-action-id="${escapeHtml(String(el.action_id ?? ''))}" data-block-id="${escapeHtml(blockId)}" data-value="${escapeHtml(String(el.value ?? ''))}" data-text="${escapeHtml(plainOf(el.text))}"${confirmAttr}>${renderText(el.text, names)}</button>`;
}

// A text object's words without markup (for confirm dialogs, which the page shows as plain text).
function plainOf(value: unknown): string {
  if (!value || typeof value !== 'object') return '';
  const text = (value as Json).text;
  return typeof text === 'string' ? decodeSlackEntities(text) : '';
}

function renderElement(el: Json, blockId: string, names: RenderNames): string {
  switch (el.type) {
    case 'button':
      return renderButton(el, blockId, names);
    case 'image':
      return `<span class="image">[${escapeHtml(String(el.alt_text ?? 'image'))}]</span>`;
    case 'mrkdwn':
    case 'plain_text':
      return `<span>${renderText(el, names)}</span>`;
    default:
      return `<span class="unsupported">[${escapeHtml(String(el.type ?? 'element'))}]</span>`;
  }
}

function renderInput(block: Json, names: RenderNames): string {
  const blockId = String(block.block_id ?? '');
  const el = (block.element ?? {}) as Json;
  const actionId = String(el.action_id ?? '');
  const attrs = `data-block-id="${escapeHtml(blockId)}" data-action-id="${escapeHtml(actionId)}" data-type="${escapeHtml(String(el.type ?? ''))}"`;
  let control: string;
  if (el.type === 'static_select') {
    const options = (Array.isArray(el.options) ? el.options : []) as Json[];
    control = `<select class="field" ${attrs}><option value="">${renderText(el.placeholder, names) || 'Choose…'}</option>${options
      .map(
        (o) => `<option value="${escapeHtml(String(o.value ?? ''))}">${renderText(o.text, names)}</option>`,
      )
      .join('')}</select>`;
  } else if (el.multiline === true) {
    control = `<textarea class="field" ${attrs} rows="3"></textarea>`;
  } else {
    control = `<input class="field" ${attrs} type="text">`;
  }
  return `<label class="input"><span class="label">${renderText(block.label, names)}</span>${control}<span class="error" data-error-for="${escapeHtml(blockId)}"></span></label>`;
}

/** One block as HTML. */
export function renderBlock(block: Json, names: RenderNames): string {
  const blockId = String(block.block_id ?? '');
  switch (block.type) {
    case 'header':
      return `<div class="b-header">${renderText(block.text, names)}</div>`;
    case 'section': {
      const fields = Array.isArray(block.fields)
        ? `<div class="b-fields">${(block.fields as Json[]).map((f) => `<div>${renderText(f, names)}</div>`).join('')}</div>`
        : '';
      const accessory =
        block.accessory && typeof block.accessory === 'object'
          ? `<div class="b-accessory">${renderElement(block.accessory as Json, blockId, names)}</div>`
          : '';
      return `<div class="b-section"><div class="b-text">${renderText(block.text, names)}${fields}</div>${accessory}</div>`;
    }
    case 'context':
      return `<div class="b-context">${((block.elements ?? []) as Json[]).map((e) => renderElement(e, blockId, names)).join(' ')}</div>`;
    case 'actions':
      return `<div class="b-actions">${((block.elements ?? []) as Json[]).map((e) => renderElement(e, blockId, names)).join('')}</div>`;
    case 'divider':
      return '<hr class="b-divider">';
    case 'input':
      return renderInput(block, names);
    case 'image':
      return `<div class="image">[${escapeHtml(String(block.alt_text ?? 'image'))}]</div>`;
    default:
      return `<div class="unsupported">[${escapeHtml(String(block.type ?? 'block'))} block]</div>`;
  }
}

/** A list of blocks as HTML. */
export function renderBlocks(blocks: unknown[], names: RenderNames): string {
  return blocks
    .filter((b): b is Json => !!b && typeof b === 'object')
    .map((b) => renderBlock(b, names))
    .join('');
}

function renderFile(file: ConsoleFile): string {
  const lines = file.content.split('\n');
  const shown = lines.slice(0, 40).join('\n');
  const more = lines.length > 40 ? `\n… ${lines.length - 40} more lines` : '';
  return `<details class="file"><summary>📎 ${escapeHtml(file.title || file.filename)} <span class="muted">${escapeHtml(file.filename)} · ${file.content.length} bytes</span></summary><pre>${escapeHtml(shown + more)}</pre></details>`;
}

/** One message (blocks, else its text), with its files; `data-ts` lets a click name the message. */
export function renderMessage(message: ConsoleMessage, names: RenderNames): string {
  const body =
    message.blocks && message.blocks.length > 0
      ? renderBlocks(message.blocks, names)
      : `<div class="b-text">${renderMrkdwn(message.text, names)}</div>`;
  const who = message.visibleTo
    ? '<div class="ephemeral">Only visible to you</div>'
    : `<div class="author">${escapeHtml(message.author ?? 'quell')} <span class="app">APP</span></div>`;
  return `<div class="message${message.visibleTo ? ' is-ephemeral' : ''}" data-channel="${escapeHtml(message.channel)}" data-ts="${escapeHtml(message.ts)}" data-thread-ts="${escapeHtml(message.threadTs ?? '')}">${who}${body}${message.files.map(renderFile).join('')}${message.edited ? '<span class="muted">(edited)</span>' : ''}</div>`;
}

/** A channel as one user sees it: top-level messages in order, each with its thread below it. */
export function renderChannel(
  messages: readonly ConsoleMessage[],
  channel: string,
  user: string,
  names: RenderNames,
): string {
  const visible = messages.filter(
    (m) => m.channel === channel && (m.visibleTo === undefined || m.visibleTo === user),
  );
  const top = visible.filter((m) => !m.threadTs || m.threadTs === m.ts);
  if (top.length === 0) return '<p class="muted empty">No messages yet. Type a command below.</p>';
  return top
    .map((m) => {
      const replies = visible.filter((r) => r.threadTs === m.ts && r.ts !== m.ts);
      const thread =
        replies.length > 0
          ? `<div class="thread"><div class="muted">${replies.length} ${replies.length === 1 ? 'reply' : 'replies'}</div>${replies.map((r) => renderMessage(r, names)).join('')}</div>`
          : '';
      return `<div class="entry">${renderMessage(m, names)}${thread}</div>`;
    })
    .join('');
}

/** A view (Home tab or modal): its title, blocks and, for a modal, submit and close. */
export function renderView(view: Record<string, unknown>, names: RenderNames): string {
  const blocks = Array.isArray(view.blocks) ? renderBlocks(view.blocks, names) : '';
  if (view.type !== 'modal') return `<div class="home">${blocks}</div>`;
  const submit = view.submit
    ? `<button type="submit" class="button primary">${renderText(view.submit, names)}</button>`
    : '';
  const close = `<button type="button" class="button" data-modal-close="1">${renderText(view.close, names) || 'Cancel'}</button>`;
  return `<form class="modal" data-callback-id="${escapeHtml(String(view.callback_id ?? ''))}"><div class="modal-title">${renderText(view.title, names)}</div>${blocks}<div class="modal-buttons">${close}${submit}</div></form>`;
}
