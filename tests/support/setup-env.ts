// Points every AWS SDK client in the test worker at the run's moto_server.
import { inject } from 'vitest';

process.env.AWS_ENDPOINT_URL = inject('motoUrl');
// …except CloudTrail, which moto lacks: a CloudTrail with no events (tests/support/global-setup.ts).
process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = inject('cloudTrailUrl');
