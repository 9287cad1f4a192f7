/**
 * The evidence bucket (config `evidence`): containment evidence and case files, each an S3 object under
 * Object Lock in compliance mode, written with the bot's own credentials. A client is made per write and
 * destroyed after it: writes are rare (one per containment run or case export), and no connection is
 * left open to keep a CLI process alive.
 */
import type { EvidenceConfig } from '../config.ts';
import { putLockedObject } from './put-locked-object.ts';

/** The S3 SDK, loaded by the first evidence write rather than when quell starts (docs/benchmarks.md, memory). */
const loadS3 = () => import('@aws-sdk/client-s3');

/** Where one object was kept. */
export interface StoredEvidence {
  bucket: string;
  key: string;
  versionId: string | null;
  /** ISO 8601: the end of its compliance-mode retention. */
  retainUntil: string;
}

/** Writes evidence objects under the configured prefix. */
export interface EvidenceBucket {
  /** `s3://bucket/prefix`, for messages. */
  location: string;
  /** Writes `body` at `<prefix><name>`, retained for the configured days from `now`. */
  put(name: string, body: string, contentType: string): Promise<StoredEvidence>;
}

/** The configured evidence bucket (its region, or `defaultRegion`). */
export function createEvidenceBucket(
  settings: EvidenceConfig,
  defaultRegion: string,
  now: () => number = Date.now,
): EvidenceBucket {
  const region = settings.region ?? defaultRegion;
  return {
    location: `s3://${settings.bucket}/${settings.prefix}`,
    async put(name, body, contentType) {
      const key = `${settings.prefix}${name}`;
      const retainUntil = new Date(now() + settings.retentionDays * 86_400_000);
      const { S3Client } = await loadS3();
      const s3 = new S3Client({ region, maxAttempts: 5 });
      try {
        const { versionId } = await putLockedObject(s3, {
          bucket: settings.bucket,
          key,
          body,
          contentType,
          retainUntil,
        });
        return { bucket: settings.bucket, key, versionId, retainUntil: retainUntil.toISOString() };
      } finally {
        s3.destroy();
      }
    },
  };
}
