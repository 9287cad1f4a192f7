/**
 * Writing one object that nobody may delete or overwrite before its retention date: S3 Object Lock in
 * compliance mode. Shared by the audit checkpoints and the evidence bucket.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';

/** The S3 SDK, loaded by the first write rather than when quell starts (docs/benchmarks.md, memory). */
const loadS3 = () => import('@aws-sdk/client-s3');

/** Content-MD5 of an object body, which S3 requires (or a flexible checksum) for Object Lock uploads. */
export function contentMd5(body: string): string {
  return createHash('md5').update(body).digest('base64');
}

/** One object to write under Object Lock. */
export interface LockedObject {
  bucket: string;
  key: string;
  body: string;
  contentType: string;
  /** The end of the compliance-mode retention. */
  retainUntil: Date;
}

/** Puts the object with ObjectLockMode COMPLIANCE; resolves to its version id (null when unversioned). */
export async function putLockedObject(
  s3: S3Client,
  object: LockedObject,
): Promise<{ versionId: string | null }> {
  const { PutObjectCommand } = await loadS3();
  // Object Lock uploads need Content-MD5 or a flexible checksum:
  // https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html
  const out = await s3.send(
    new PutObjectCommand({
      Bucket: object.bucket,
      Key: object.key,
      Body: object.body,
      ContentType: object.contentType,
      ContentMD5: contentMd5(object.body),
      ChecksumAlgorithm: 'SHA256',
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: object.retainUntil,
    }),
  );
  return { versionId: out.VersionId ?? null };
}
