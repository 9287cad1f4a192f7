/** Run ids: what every run, button and audit entry is keyed by. */
import { randomBytes } from 'node:crypto';

const RUN_ID = /^r[a-z2-7]{12}$/;

/** A new run id: `r` and 12 base32 characters (60 random bits). */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  const bytes = randomBytes(12);
  let id = 'r';
  for (let i = 0; i < 12; i++) id += alphabet[(bytes[i] ?? 0) % 32];
  return id;
}

/** Whether text has the shape of a run id (anything else is rejected before a lookup). */
export function isRunId(text: string): boolean {
  return RUN_ID.test(text);
}
