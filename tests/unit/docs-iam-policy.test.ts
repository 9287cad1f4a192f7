/**
 * docs/iam.md shows the policies `quell iam-policy` generates from the runbooks' declared IAM actions.
 * The blocks between its `generated:` markers are regenerated here; any difference means a runbook's
 * actions changed without `npm run docs:iam`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DOC_PRINCIPAL,
  generateIamBlocks,
  IAM_DOC,
  renderIamDoc,
  runIamPolicy,
} from '../../scripts/docs-iam.ts';
import { buildPermissionsPolicy, rolePolicyOptionsOf } from '../../src/aws/build-iam-policies.ts';
import { loadConfigFile } from '../../src/config.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../quell.example.yaml', import.meta.url));
const committed = readFileSync(new URL(`../../${IAM_DOC}`, import.meta.url), 'utf8');

describe('docs/iam.md', () => {
  it('holds exactly what `quell iam-policy` prints now', async () => {
    const regenerated = renderIamDoc(committed, await generateIamBlocks());
    const stale = regenerated !== committed;
    expect(
      stale
        ? `${IAM_DOC} is out of date with quell iam-policy: run \`npm run docs:iam\` and commit ${IAM_DOC}`
        : '',
    ).toBe('');
  });

  it('shows the command output itself: every runbook of the registry, for both roles and the principal', async () => {
    const output = JSON.parse(await runIamPolicy()) as {
      readRole: { permissions: unknown; trust: { Statement: { Principal: { AWS: string } }[] } };
      respondRole: { permissions: unknown };
    };
    // The example configuration's regions narrow both roles (aws:RequestedRegion).
    const { regions } = rolePolicyOptionsOf(loadConfigFile(EXAMPLE_CONFIG));
    expect(regions).toBeDefined();
    expect(output.readRole.permissions).toEqual(buildPermissionsPolicy(RUNBOOKS, 'read', { regions }));
    expect(output.respondRole.permissions).toEqual(buildPermissionsPolicy(RUNBOOKS, 'respond', { regions }));
    expect(output.readRole.trust.Statement[0]?.Principal.AWS).toBe(DOC_PRINCIPAL);
    for (const runbook of RUNBOOKS)
      expect(committed).toContain(`[\`${runbook.id}\`](runbooks/${runbook.id}.md)`);
  });

  it('refuses a page whose markers are missing, naming the block to add', () => {
    expect(() => renderIamDoc('# AWS roles\n', { 'iam-policy-json': '{}' })).toThrow(
      /no markers for the generated block "iam-policy-json"/,
    );
  });

  it('replaces only what is between the markers', () => {
    const page =
      'before\n<!-- generated:x start (npm run docs:iam) -->\nold\n<!-- generated:x end -->\nafter\n';
    expect(renderIamDoc(page, { x: 'new $& $1' })).toBe(
      'before\n<!-- generated:x start (npm run docs:iam) -->\nnew $& $1\n<!-- generated:x end -->\nafter\n',
    );
  });
});
