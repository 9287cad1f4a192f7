/** Reading the audit log of a run whose replica died: which mutating calls may or may not have happened. */
import { describe, expect, it } from 'vitest';
import { summarizeMutatingCalls } from '../../src/runbooks/engine/recovery.ts';
import type { AuditRecord, Json } from '../../src/store/store.ts';

let seq = 0;
const entry = (type: string, data: Json): AuditRecord => ({
  seq: ++seq,
  at: seq,
  runId: 'rabcdefghijkl',
  type,
  actor: null,
  data,
  prevHash: '',
  hash: '',
});
const intent = (operation: string) => entry('aws.intent', { service: 'iam', operation, mutating: true });
const call = (operation: string, outcome: 'ok' | 'error', mutating = true) =>
  entry('aws.call', { service: 'iam', operation, outcome, mutating });

describe('summarizeMutatingCalls', () => {
  it('pairs each intent with the next outcome of the same operation', () => {
    const summary = summarizeMutatingCalls([
      call('GetAccessKeyLastUsed', 'ok', false),
      intent('UpdateAccessKey'),
      intent('PutUserPolicy'),
      call('PutUserPolicy', 'ok'),
      intent('AttachUserPolicy'),
      call('AttachUserPolicy', 'error'),
      intent('UpdateAccessKey'),
      call('UpdateAccessKey', 'ok'),
    ]);
    expect(summary).toEqual({
      unfinished: ['iam:UpdateAccessKey'],
      completed: ['iam:PutUserPolicy', 'iam:UpdateAccessKey'],
      refused: ['iam:AttachUserPolicy'],
    });
  });

  it('reports nothing for a run that never sent a mutating call', () => {
    expect(summarizeMutatingCalls([call('ListAccessKeys', 'ok', false)])).toEqual({
      unfinished: [],
      completed: [],
      refused: [],
    });
  });
});
