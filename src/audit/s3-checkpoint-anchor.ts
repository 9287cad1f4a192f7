/**
 * The AWS side of audit anchoring: the S3 bucket checkpoints are kept in (Object Lock, compliance mode),
 * the KMS key that signs them (or the HMAC key loaded from Secrets Manager), and the objects `quell audit
 * export` writes. Credentials are the bot's own, or a role assumed for this alone (`audit.checkpoints.roleArn`).
 */
import {
  DescribeKeyCommand,
  KMSClient,
  KMSInvalidSignatureException,
  SignCommand,
  type SigningAlgorithmSpec,
  VerifyCommand,
} from '@aws-sdk/client-kms';
import { GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { TemporaryCredentials } from '../aws/credentials.ts';
import type { AuditCheckpointsConfig } from '../config.ts';
import { SecretMissingError } from '../errors.ts';
import {
  type CheckpointDocument,
  type CheckpointSigner,
  type CheckpointStore,
  checkpointFolder,
  checkpointKey,
  createHmacSigner,
  type StoredCheckpoint,
} from './checkpoint.ts';
import { contentMd5, putLockedObject } from './put-locked-object.ts';

type CredentialProvider = () => Promise<TemporaryCredentials>;

/** The AWS pieces of anchoring, built from the configuration. */
export interface AuditAnchor {
  store: CheckpointStore;
  signer: CheckpointSigner;
  /** Releases the SDK clients. */
  destroy(): void;
}

/** Credentials for the anchor: a role assumed with the bot's own credentials, refreshed by the SDK. */
function assumedRoleCredentials(
  roleArn: string,
  region: string,
): { provider: CredentialProvider; sts: STSClient } {
  const sts = new STSClient({ region, maxAttempts: 5 });
  const provider: CredentialProvider = async () => {
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: roleArn,
        RoleSessionName: 'quell-audit-anchor',
        DurationSeconds: 900,
      }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken)
      throw new Error(`AssumeRole on ${roleArn} returned no credentials`);
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
    };
  };
  return { provider, sts };
}

/** The region of a KMS key or secret ARN, or undefined for a bare id or alias. */
function regionOfArn(arn: string): string | undefined {
  return arn.startsWith('arn:') ? arn.split(':')[3] || undefined : undefined;
}

/**
 * Builds the checkpoint store and signer. The HMAC key (when configured) is read once here, so a missing
 * or unreadable secret is reported at start, never at the first checkpoint.
 */
export async function createAuditAnchor(
  config: AuditCheckpointsConfig,
  defaultRegion: string,
): Promise<AuditAnchor> {
  const region = config.region ?? defaultRegion;
  const assumed = config.roleArn ? assumedRoleCredentials(config.roleArn, region) : undefined;
  const credentials = assumed ? { credentials: assumed.provider } : {};
  const s3 = new S3Client({ region, maxAttempts: 5, ...credentials });
  const destroyers: (() => void)[] = [() => s3.destroy(), () => assumed?.sts.destroy()];
  let signer: CheckpointSigner;
  if (config.kmsKeyId) {
    const kms = new KMSClient({
      region: regionOfArn(config.kmsKeyId) ?? region,
      maxAttempts: 5,
      ...credentials,
    });
    destroyers.push(() => kms.destroy());
    signer = createKmsSigner(kms, config.kmsKeyId);
  } else if (config.hmacSecretArn) {
    const key = await loadHmacKey(config.hmacSecretArn, { region, ...credentials });
    signer = createHmacSigner(key, config.hmacSecretArn);
  } else {
    throw new Error('unreachable: the configuration names a KMS key or an HMAC secret');
  }
  return {
    store: createS3CheckpointStore(s3, config),
    signer,
    destroy: () => {
      for (const destroy of destroyers) destroy();
    },
  };
}

/**
 * A signer over an asymmetric KMS key (SIGN_VERIFY). It signs with the key's first signing algorithm; it
 * verifies only with an algorithm the key supports (the algorithm named in a document is the attacker's to
 * choose, so anything else is a bad signature, not an error). Both are looked up once with DescribeKey.
 */
export function createKmsSigner(kms: KMSClient, keyId: string): CheckpointSigner {
  let algorithms: Promise<SigningAlgorithmSpec[]> | undefined;
  const keyAlgorithms = () => {
    algorithms ??= kms.send(new DescribeKeyCommand({ KeyId: keyId })).then((out) => {
      const list = out.KeyMetadata?.SigningAlgorithms ?? [];
      if (list.length === 0) throw new Error(`KMS key ${keyId} is not a signing key (KeyUsage SIGN_VERIFY)`);
      return list;
    });
    algorithms.catch(() => {
      algorithms = undefined;
    });
    return algorithms;
  };
  return {
    info: { kind: 'kms', keyRef: keyId },
    label: `KMS key ${keyId}`,
    async sign(payload) {
      const [SigningAlgorithm] = await keyAlgorithms();
      if (!SigningAlgorithm) throw new Error('unreachable: the key has a signing algorithm');
      const out = await kms.send(
        new SignCommand({ KeyId: keyId, Message: payload, MessageType: 'RAW', SigningAlgorithm }),
      );
      if (!out.Signature) throw new Error('KMS Sign returned no signature');
      return { signature: out.Signature, algorithm: SigningAlgorithm };
    },
    async verify(payload, signature, algorithm) {
      const supported = await keyAlgorithms();
      const SigningAlgorithm = supported.find((a) => a === algorithm);
      if (!SigningAlgorithm) return false;
      try {
        const out = await kms.send(
          new VerifyCommand({
            KeyId: keyId,
            Message: payload,
            MessageType: 'RAW',
            Signature: signature,
            SigningAlgorithm,
          }),
        );
        return out.SignatureValid === true;
      } catch (error) {
        // KMS answers an invalid signature with an error, not SignatureValid: false.
        if (error instanceof KMSInvalidSignatureException) return false;
        throw error;
      }
    },
  };
}

/** Reads the HMAC key: SecretBinary as bytes, or SecretString as UTF-8 text. Never logged. */
async function loadHmacKey(
  secretArn: string,
  options: { region: string; credentials?: CredentialProvider },
): Promise<Uint8Array> {
  const client = new SecretsManagerClient({
    maxAttempts: 5,
    ...options,
    region: regionOfArn(secretArn) ?? options.region,
  });
  try {
    const out = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
    const key =
      out.SecretBinary ?? (out.SecretString ? new TextEncoder().encode(out.SecretString) : undefined);
    if (!key || key.length < 32)
      throw new SecretMissingError(
        `The secret named by audit.checkpoints.hmacSecretArn must hold a key of at least 32 bytes (for example: openssl rand -base64 48).`,
      );
    return key;
  } catch (cause) {
    if (cause instanceof SecretMissingError) throw cause;
    throw new SecretMissingError(
      `Could not read audit.checkpoints.hmacSecretArn (${(cause as Error).name}). Check the ARN and that quell may call secretsmanager:GetSecretValue on it.`,
    );
  } finally {
    client.destroy();
  }
}

/** Checkpoints as objects in S3, each retained in compliance mode until `retentionDays` after it is written. */
export function createS3CheckpointStore(
  s3: S3Client,
  config: Pick<AuditCheckpointsConfig, 'bucket' | 'prefix' | 'chainId' | 'retentionDays'>,
  now: () => number = Date.now,
): CheckpointStore {
  const folder = checkpointFolder(config.prefix, config.chainId);
  return {
    location: `s3://${config.bucket}/${folder}`,
    async put(document: CheckpointDocument) {
      const key = checkpointKey(config.prefix, config.chainId, document.seq);
      const body = `${JSON.stringify(document, null, 2)}\n`;
      const { versionId } = await putLockedObject(s3, {
        bucket: config.bucket,
        key,
        body,
        contentType: 'application/json',
        retainUntil: new Date(now() + config.retentionDays * 86_400_000),
      });
      return { key, versionId };
    },
    async list() {
      const versions: { key: string; versionId: string | null }[] = [];
      let keyMarker: string | undefined;
      let versionIdMarker: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectVersionsCommand({
            Bucket: config.bucket,
            Prefix: folder,
            KeyMarker: keyMarker,
            VersionIdMarker: versionIdMarker,
          }),
        );
        for (const v of page.Versions ?? [])
          if (v.Key)
            versions.push({
              key: v.Key,
              versionId: v.VersionId && v.VersionId !== 'null' ? v.VersionId : null,
            });
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        versionIdMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
      } while (keyMarker);
      const out: StoredCheckpoint[] = [];
      // Eight reads at a time: a long chain has thousands of checkpoints.
      for (let i = 0; i < versions.length; i += 8) {
        const batch = versions.slice(i, i + 8);
        const bodies = await Promise.all(
          batch.map(async (v) => {
            const res = await s3.send(
              new GetObjectCommand({
                Bucket: config.bucket,
                Key: v.key,
                ...(v.versionId ? { VersionId: v.versionId } : {}),
              }),
            );
            return (await res.Body?.transformToString('utf8')) ?? '';
          }),
        );
        batch.forEach((v, j) => {
          out.push({ ...v, body: bodies[j] ?? '' });
        });
      }
      return out;
    },
  };
}

/** Writes export objects (JSON-lines chunks of the chain); `destroy` closes its connections. */
export interface ExportObjectWriter {
  put(key: string, body: string): Promise<void>;
  destroy(): void;
}

/** Export objects through an S3 client, with their checksum so S3 refuses a corrupted upload. */
export function createS3ExportWriter(region: string, bucket: string): ExportObjectWriter {
  const s3 = new S3Client({ region, maxAttempts: 5 });
  return {
    async put(key, body) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: 'application/x-ndjson',
          ContentMD5: contentMd5(body),
        }),
      );
    },
    destroy: () => s3.destroy(),
  };
}
