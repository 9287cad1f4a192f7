/**
 * Game-day scenarios and scorecards: the shipped scenario files are valid and each has one containment
 * step; a placeholder that the injection does not provide is an error, not a step that can never match;
 * the scorecard names missed steps and unreached times.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildScorecardBlocks, formatElapsed } from '../../src/console/game-day.ts';
import { fillTemplate, loadScenarios } from '../../src/console/game-day-scenario.ts';

describe('game-day scenarios', () => {
  it('ships leaked-key, exposed-instance and tampered-stack, each with one containment step', () => {
    const scenarios = loadScenarios();
    expect([...scenarios.keys()]).toEqual(['exposed-instance', 'leaked-key', 'tampered-stack']);
    for (const s of scenarios.values()) {
      expect(s.steps.filter((step) => step.containment)).toHaveLength(1);
      expect(s.timeLimit).toBe(30 * 60_000);
    }
    expect(scenarios.get('tampered-stack')?.steps.map((s) => s.runbook)).toEqual([
      'drift',
      'trail',
      'isolate-instance',
    ]);
  });

  it('refuses a file with no containment step, naming the file and the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'quell-scenarios-'));
    try {
      writeFileSync(
        join(dir, 'broken.yaml'),
        'id: broken\ntitle: Broken\nalert: x\ninject: { kind: leaked-key, user: u }\nsteps:\n  - { id: a, title: A, runbook: trail, match: x }\n',
      );
      expect(() => loadScenarios(dir)).toThrow(
        /scenario broken\.yaml is invalid:\n {2}steps: exactly one step/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fills placeholders and rejects unknown ones', () => {
    // biome-ignore-start lint/suspicious/noTemplateCurlyInString: scenario placeholders, not JavaScript templates
    expect(fillTemplate('key ${keyId} of ${user}', { keyId: 'AKIA1', user: 'bot' })).toBe('key AKIA1 of bot');
    expect(() => fillTemplate('${instanceId}', { keyId: 'AKIA1' })).toThrow(/instanceId.*keyId/);
    // biome-ignore-end lint/suspicious/noTemplateCurlyInString: scenario placeholders, not JavaScript templates
  });
});

describe('the scorecard', () => {
  it('shows the three times, each step, and which steps were missed', () => {
    const blocks = JSON.stringify(
      buildScorecardBlocks({
        scenario: 'leaked-key',
        title: 'Leaked access key',
        toFirstCommandMs: 42_000,
        toApprovalMs: 185_400,
        toContainedMs: undefined,
        steps: [
          { id: 'evidence', title: 'Evidence captured', done: false, containment: false },
          { id: 'contain', title: 'Key disabled', done: true, containment: true },
        ],
        ended: 'time limit',
      }),
    );
    expect(blocks).toContain('*Time to first command*\\n0 min 42 s');
    expect(blocks).toContain('*Time to approval*\\n3 min 05 s');
    expect(blocks).toContain('*Time to contained (verified)*\\nnot reached');
    expect(blocks).toContain(':x: Evidence captured — *missed*');
    expect(blocks).toContain(':white_check_mark: Key disabled');
    expect(blocks).toContain('Steps missed: evidence.');
    expect(formatElapsed(undefined)).toBe('not reached');
  });
});
