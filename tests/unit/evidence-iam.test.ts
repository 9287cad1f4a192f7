/**
 * The bot principal's evidence statement (`quell iam-policy` with `evidence` configured): it may put
 * evidence and case files, with their Object Lock retention, under the configured prefix, and nothing
 * else in that bucket or any other.
 */
import { describe, expect, it } from 'vitest';
import { buildBotPolicy } from '../../src/aws/build-iam-policies.ts';
import { type EvaluatedRequest, verdictOf } from '../support/iam-evaluator.ts';

describe('the evidence bucket in the bot policy', () => {
  const evidence = { bucket: 'acme-quell-evidence', prefix: 'quell/evidence/' };
  const policy = buildBotPolicy([], [], undefined, undefined, evidence);
  const ok = (r: EvaluatedRequest) => verdictOf(policy, r) === 'allow';
  const object = (key: string, bucket = evidence.bucket) => `arn:aws:s3:::${bucket}/${key}`;

  it('puts evidence and its retention under the prefix', () => {
    const key = 'quell/evidence/111111111111/rabcdefghijkl/evidence-disable-key-rabcdefghijkl.json';
    expect(ok({ action: 's3:PutObject', resource: object(key), context: {} })).toBe(true);
    expect(ok({ action: 's3:PutObjectRetention', resource: object(key), context: {} })).toBe(true);
  });

  it('cannot read, delete, shorten retention or write elsewhere (attack: use the bot to erase evidence)', () => {
    const key = 'quell/evidence/111111111111/rabcdefghijkl/evidence-disable-key-rabcdefghijkl.json';
    const tried: EvaluatedRequest[] = [
      { action: 's3:DeleteObject', resource: object(key), context: {} },
      { action: 's3:DeleteObjectVersion', resource: object(key), context: {} },
      { action: 's3:GetObject', resource: object(key), context: {} },
      { action: 's3:BypassGovernanceRetention', resource: object(key), context: {} },
      { action: 's3:PutObject', resource: object('other/prefix/file.json'), context: {} },
      { action: 's3:PutObject', resource: object(key, 'someone-elses-bucket'), context: {} },
      {
        action: 's3:PutBucketObjectLockConfiguration',
        resource: `arn:aws:s3:::${evidence.bucket}`,
        context: {},
      },
    ];
    expect({ attempts: tried.length, accepted: tried.filter(ok).length }).toEqual({
      attempts: 7,
      accepted: 0,
    });
  });

  it('is absent without evidence configured', () => {
    expect(buildBotPolicy([], []).Statement.map((s) => s.Sid)).not.toContain('WriteEvidence');
  });
});
