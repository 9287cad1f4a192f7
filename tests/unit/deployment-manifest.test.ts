/**
 * deploy/kubernetes.yaml stays what docs/deployment.md says it is: its quell.yaml validates, the replica
 * count and the rate-limit share agree, every container runs restricted, and both probes use /healthz.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config.ts';

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
    envFrom: unknown;
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

  it('takes secrets from a Secret only and probes GET /healthz on port 3000', () => {
    expect(container.envFrom).toEqual([{ secretRef: { name: 'quell-secrets' } }]);
    const env = container.env.map((e) => e.name);
    expect(env.filter((name) => /TOKEN|SECRET|PASSWORD/.test(name))).toEqual([]);
    for (const probe of [container.readinessProbe, container.livenessProbe])
      expect(probe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.ports).toEqual([{ name: 'http', containerPort: 3000 }]);
    expect(find('Service').spec).toMatchObject({ ports: [{ targetPort: 'http' }] });
  });
});
