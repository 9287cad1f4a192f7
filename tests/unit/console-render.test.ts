/**
 * The console's Block Kit → HTML renderer: what came from a message is escaped before any tag is
 * added; mentions show names, never notify; only http(s) links become links; buttons carry what a
 * click sends back and their confirm dialog.
 */
import { describe, expect, it } from 'vitest';
import type { ConsoleMessage } from '../../src/console/console-slack-api.ts';
import { renderBlocks, renderChannel, renderMrkdwn } from '../../src/console/render-block-kit.ts';

const names = { users: { U0LEAD1: 'lee' }, channels: { C0INCIDENT: 'incident' } };

function message(over: Partial<ConsoleMessage>): ConsoleMessage {
  return {
    channel: 'C0INCIDENT',
    ts: '1.000001',
    threadTs: undefined,
    text: '',
    blocks: undefined,
    visibleTo: undefined,
    files: [],
    edited: false,
    ...over,
  };
}

describe('renderMrkdwn', () => {
  it('escapes HTML from message text, including text Slack had escaped', () => {
    const html = renderMrkdwn(
      '<script>alert(1)</script> &lt;img src=x onerror=alert(1)&gt; "q" \'s\'',
      names,
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&quot;q&quot;');
  });

  it('shows mentions and broadcasts as text, and links only http(s) URLs', () => {
    expect(renderMrkdwn('<@U0LEAD1> <#C0INCIDENT> <!channel>', names)).toBe(
      '<span class="mention">@lee</span> <span class="mention">#incident</span> <span class="mention">@channel</span>',
    );
    const js = renderMrkdwn('<javascript:alert(1)|click me>', names);
    expect(js).not.toContain('<a');
    expect(js).toBe('click me');
    const link = renderMrkdwn('<https://example.com/a?b=1&amp;c="2"|docs>', names);
    expect(link).toBe(
      '<a href="https://example.com/a?b=1&amp;c=&quot;2&quot;" rel="noopener noreferrer" target="_blank">docs</a>',
    );
  });

  it('formats bold, italic, code and code blocks without unescaping their content', () => {
    expect(renderMrkdwn('*Status:* _done_ `&lt;b&gt;x&lt;/b&gt;`', names)).toBe(
      '<b>Status:</b> <i>done</i> <code>&lt;b&gt;x&lt;/b&gt;</code>',
    );
    // Unescaped angle brackets are Slack's control sequences, never HTML.
    expect(renderMrkdwn('`<b>x</b>`', names)).not.toContain('<b>');
    expect(renderMrkdwn('```\nline &lt;1&gt;\nline 2```', names)).toBe('<pre>line &lt;1&gt;\nline 2</pre>');
  });
});

describe('renderBlocks', () => {
  it('renders header, fields, context and buttons with their values and confirm dialogs, escaped', () => {
    const html = renderBlocks(
      [
        { type: 'header', text: { type: 'plain_text', text: 'disable-key <x>' } },
        { type: 'section', fields: [{ type: 'mrkdwn', text: '*Owner*\nalice' }] },
        { type: 'context', elements: [{ type: 'mrkdwn', text: 'run `r1`' }] },
        {
          type: 'actions',
          block_id: 'run',
          elements: [
            {
              type: 'button',
              action_id: 'quell_approve',
              value: 'r1"><script>',
              style: 'primary',
              text: { type: 'plain_text', text: 'Approve' },
              confirm: {
                title: { type: 'plain_text', text: 'Sure?' },
                text: { type: 'mrkdwn', text: 'Disable &lt;key&gt;' },
                confirm: { type: 'plain_text', text: 'Yes' },
                deny: { type: 'plain_text', text: 'No' },
              },
            },
          ],
        },
      ],
      names,
    );
    expect(html).toContain('<div class="b-header">disable-key &lt;x&gt;</div>');
    expect(html).toContain('<div><b>Owner</b><br>alice</div>');
    expect(html).toContain('data-action-id="quell_approve"');
    expect(html).toContain('data-block-id="run"');
    expect(html).toContain('data-value="r1&quot;&gt;&lt;script&gt;"');
    expect(html).not.toContain('<script>');
    expect(html).toContain(
      'data-confirm="{&quot;title&quot;:&quot;Sure?&quot;,&quot;text&quot;:&quot;Disable &lt;key&gt;&quot;,&quot;confirm&quot;:&quot;Yes&quot;,&quot;deny&quot;:&quot;No&quot;}"',
    );
  });
});

describe('renderChannel', () => {
  it('shows a user their own ephemeral messages only, and replies under their thread', () => {
    const messages = [
      message({ ts: '1.1', text: 'card' }),
      message({ ts: '1.2', threadTs: '1.1', text: 'progress' }),
      message({ ts: '1.3', text: 'only for riley', visibleTo: 'U0RESP' }),
      message({ ts: '1.4', channel: 'C0OTHER', text: 'elsewhere' }),
    ];
    const riley = renderChannel(messages, 'C0INCIDENT', 'U0RESP', names);
    const lee = renderChannel(messages, 'C0INCIDENT', 'U0LEAD1', names);
    expect(riley).toContain('only for riley');
    expect(lee).not.toContain('only for riley');
    expect(lee).not.toContain('elsewhere');
    expect(lee.indexOf('class="thread"')).toBeGreaterThan(lee.indexOf('card'));
    expect(lee).toContain('1 reply');
  });
});
