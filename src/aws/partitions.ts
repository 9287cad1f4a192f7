/**
 * AWS partitions (commercial, GovCloud, China): global services such as IAM answer at one region of
 * each partition, which quell reads off the partition of an ARN it already has.
 */

/** The region of IAM's global endpoint in the partition of `roleArn`. */
export function iamRegionFor(roleArn: string): string {
  const partition = roleArn.split(':')[1];
  return partition === 'aws-us-gov' ? 'us-gov-west-1' : partition === 'aws-cn' ? 'cn-north-1' : 'us-east-1';
}
