/**
 * deploy/kubernetes.yaml stays what docs/deployment.md says it is: its quell.yaml validates, the replica
 * count and the rate-limit share agree, every container runs restricted, both probes use /healthz, and
 * no secret is in Kubernetes: every one is named by a Secrets Manager ARN (docs/secrets.md).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig, requiredSecrets } from '../../src/config.ts';

type Manifest = {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
};

const manifests = parseAllDocuments(
  readFileSync(new URL('../../deploy/kubernetes.yaml', import.meta.url), 'utf8'),
).map((doc) => {
  expect(doc.errors).toEqual([]);
  return doc.toJS() as Manifest;
});
const find = (kind: string) => {
  const found = manifests.find((m) => m.kind === kind);
  if (!found) throw new Error(`no ${kind} in deploy/kubernetes.yaml`);
  return found;
};

describe('deploy/kubernetes.yaml', () => {
  const deployment = find('Deployment').spec as {
    replicas: number;
    template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
  };
  const pod = deployment.template.spec;
  const container = pod.containers[0] as {
    securityContext: unknown;
    envFrom?: unknown;
    env: { name: string; value: string }[];
    readinessProbe: { httpGet: unknown };
    livenessProbe: { httpGet: unknown };
    ports: unknown;
  };

  it('runs two replicas in HTTP mode on PostgreSQL, each pacing at its share of the AWS limits', () => {
    const config = parseConfig(String(find('ConfigMap').data?.['quell.yaml']), 'ConfigMap quell-config');
    expect(deployment.replicas).toBe(2);
    expect(config.replicas.count).toBe(deployment.replicas);
    expect(config.slack.mode).toBe('http');
    expect(config.storage.url).toMatch(/^postgres:\/\/[^:@]+@/);
  });

  it('keeps one replica through voluntary disruptions', () => {
    expect(find('PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1 });
    expect(deployment).toMatchObject({ strategy: { rollingUpdate: { maxUnavailable: 0 } } });
  });

  it('runs restricted: non-root, read-only root, no capabilities, no escalation, RuntimeDefault seccomp', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('takes every secret from Secrets Manager by ARN, none from the environment or a Kubernetes Secret', () => {
    const config = parseConfig(String(find('ConfigMap').data?.['quell.yaml']), 'ConfigMap quell-config');
    expect(container.envFrom).toBeUndefined();
    expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
    expect(JSON.stringify(pod)).not.toMatch(/secretKeyRef|secretRef/);
    const secretVariables = container.env.filter((e) => /TOKEN|SECRET|PASSWORD/.test(e.name));
    expect(secretVariables.map((e) => e.name).sort()).toEqual(
      [...requiredSecrets(config.slack.mode), 'PGPASSWORD'].map((name) => `${name}_SECRET_ARN`).sort(),
    );
    for (const { value } of secretVariables)
      expect(value).toMatch(/^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/);
  });

  it('probes GET /healthz on port 3000', () => {
    for (const probe of [container.readinessProbe, container.livenessProbe])
      expect(probe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.ports).toEqual([{ name: 'http', containerPort: 3000 }]);
    expect(find('Service').spec).toMatchObject({ ports: [{ targetPort: 'http' }] });
  });
});
