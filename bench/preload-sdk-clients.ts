/**
 * The memory benchmark's baseline (`node --import ./bench/preload-sdk-clients.ts src/main.ts`): imports
 * every AWS SDK client package quell uses before the bot starts, which is what starting it cost while the
 * runbooks, the sessions and the secret loader imported their clients statically.
 */
await Promise.all([
  import('@aws-sdk/client-cloudformation'),
  import('@aws-sdk/client-cloudtrail'),
  import('@aws-sdk/client-ec2'),
  import('@aws-sdk/client-iam'),
  import('@aws-sdk/client-kms'),
  import('@aws-sdk/client-s3'),
  import('@aws-sdk/client-secrets-manager'),
  import('@aws-sdk/client-sts'),
]);
