/**
 * Audit checkpoints: signed statements "entry #seq of chain <id> has hash <hash>, as of <time>", kept
 * outside the database (an S3 bucket with Object Lock) so that a database writer who rewrites or truncates
 * the chain and re-hashes it cannot also rewrite what was anchored before. The model is CloudTrail's
 * log-file validation (digest files signed by a key the log writer does not hold):
 * https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-intro.html
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './chain.ts';

/** What a checkpoint vouches for. */
export interface CheckpointClaim {
  chainId: string;
  seq: number;
  hash: string;
  /** When the checkpoint was made (ms since the epoch). */
  at: number;
}

/** Who signed a checkpoint and how. The verifier never trusts `keyRef`: it checks with its configured key. */
export interface CheckpointSignerInfo {
  kind: 'kms' | 'hmac';
  keyRef: string;
  algorithm: string;
}

/** A checkpoint as stored: the claim, the signer and the signature (base64). */
export interface CheckpointDocument extends CheckpointClaim {
  v: 1;
  /** `at` as ISO 8601, for people reading the object. */
  time: string;
  signer: CheckpointSignerInfo;
  signature: string;
}

/** Signs and checks checkpoint payloads (a KMS key or an HMAC key). */
export interface CheckpointSigner {
  /** What goes in the document's `signer` field besides the algorithm (the verifier does not rely on it). */
  readonly info: Omit<CheckpointSignerInfo, 'algorithm'>;
  /** A short description for messages, never the key material. */
  readonly label: string;
  sign(payload: Uint8Array): Promise<{ signature: Uint8Array; algorithm: string }>;
  /** True when `signature` is this key's signature of `payload`; false when it is not. Throws when it cannot tell. */
  verify(payload: Uint8Array, signature: Uint8Array, algorithm: string): Promise<boolean>;
}

/** One stored object version under the checkpoint prefix. */
export interface StoredCheckpoint {
  key: string;
  versionId: string | null;
  body: string;
}

/** Where checkpoints are kept: written once, read back by `audit verify`. */
export interface CheckpointStore {
  /** A description like `s3://bucket/prefix/chain/` for messages. */
  readonly location: string;
  put(document: CheckpointDocument): Promise<{ key: string; versionId: string | null }>;
  /** Every stored version of every checkpoint object (an overwritten object shows every version). */
  list(): Promise<StoredCheckpoint[]>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The exact bytes that are signed: the claim as canonical JSON, with a format version. */
export function checkpointPayload(claim: CheckpointClaim): Uint8Array {
  return new TextEncoder().encode(
    canonicalJson({ v: 1, chainId: claim.chainId, seq: claim.seq, hash: claim.hash, at: claim.at }),
  );
}

/** The object key of the checkpoint of entry `seq`: zero-padded so keys list in chain order. */
export function checkpointKey(prefix: string, chainId: string, seq: number): string {
  return `${checkpointFolder(prefix, chainId)}${String(seq).padStart(20, '0')}.json`;
}

/** The folder one chain's checkpoints live in. */
export function checkpointFolder(prefix: string, chainId: string): string {
  return `${prefix}${chainId}/`;
}

/** Signs a claim into a document. */
export async function signCheckpoint(
  claim: CheckpointClaim,
  signer: CheckpointSigner,
): Promise<CheckpointDocument> {
  if (!SHA256_HEX.test(claim.hash)) throw new Error('a checkpoint hash is 64 hex characters');
  const { signature, algorithm } = await signer.sign(checkpointPayload(claim));
  return {
    v: 1,
    chainId: claim.chainId,
    seq: claim.seq,
    hash: claim.hash,
    at: claim.at,
    time: new Date(claim.at).toISOString(),
    signer: { ...signer.info, algorithm },
    signature: Buffer.from(signature).toString('base64'),
  };
}

const CheckpointDocumentSchema = z
  .object({
    v: z.literal(1),
    chainId: z.string().min(1).max(200),
    seq: z.number().int().min(1),
    hash: z.string().regex(SHA256_HEX),
    at: z.number().int().min(0),
    time: z.string().max(40),
    signer: z.object({
      kind: z.enum(['kms', 'hmac']),
      keyRef: z.string().max(2048),
      algorithm: z.string().regex(/^[A-Z0-9_]{1,40}$/),
    }),
    signature: z
      .string()
      .regex(/^[A-Za-z0-9+/]+={0,2}$/)
      .max(4096),
  })
  .strict();

/** Parses a stored object into a document, or says why it is not one. */
export function parseCheckpointDocument(
  body: string,
): { ok: true; document: CheckpointDocument } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'is not JSON' };
  }
  const parsed = CheckpointDocumentSchema.safeParse(json);
  if (!parsed.success) return { ok: false, reason: 'is not a quell checkpoint' };
  return { ok: true, document: parsed.data as CheckpointDocument };
}

/**
 * Checks a document's signature with the configured signer (never with the key the document names) and
 * that it belongs to `chainId`. A copy of another chain's checkpoint is refused by the chain id inside
 * the signed payload.
 */
export async function checkCheckpointSignature(
  document: CheckpointDocument,
  signer: CheckpointSigner,
  chainId: string,
): Promise<boolean> {
  if (document.chainId !== chainId) return false;
  return signer.verify(
    checkpointPayload(document),
    Buffer.from(document.signature, 'base64'),
    document.signer.algorithm,
  );
}

/** An HMAC-SHA256 signer over a key from Secrets Manager (for deployments without a KMS key for this). */
export function createHmacSigner(key: Uint8Array, keyRef: string): CheckpointSigner {
  if (key.length < 32) throw new Error('the HMAC checkpoint key must be at least 32 bytes');
  const mac = (payload: Uint8Array) => createHmac('sha256', key).update(payload).digest();
  return {
    info: { kind: 'hmac', keyRef },
    label: `HMAC key ${keyRef}`,
    async sign(payload) {
      return { signature: mac(payload), algorithm: 'HMAC_SHA_256' };
    },
    async verify(payload, signature, algorithm) {
      if (algorithm !== 'HMAC_SHA_256') return false;
      const expected = mac(payload);
      return signature.length === expected.length && timingSafeEqual(signature, expected);
    },
  };
}
