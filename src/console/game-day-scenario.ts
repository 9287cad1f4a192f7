/**
 * Game-day scenarios: YAML files in scenarios/ (one incident each), validated with zod. A scenario
 * says what to inject into the rehearsal world, which CloudTrail events go with it, the alert that
 * starts the clock, and the steps the team is expected to take (which runbook, on what); `${name}`
 * placeholders are filled from what the injection created.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { DurationSchema } from '../config.ts';

const TemplateSchema = z.string().min(1).max(2000);

const InjectSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('leaked-key'), user: z.string().regex(/^[\w+=,.@-]{1,64}$/) }).strict(),
  z
    .object({
      kind: z.literal('exposed-instance'),
      group: z.string().regex(/^[\w.-]{1,64}$/),
      ports: z.array(z.number().int().min(1).max(65535)).min(1),
    })
    .strict(),
  z
    .object({
      kind: z.literal('tampered-stack'),
      stack: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/),
      ports: z.array(z.number().int().min(1).max(65535)).min(1),
    })
    .strict(),
]);

const EventSchema = z
  .object({
    minutesAgo: z.number().min(0).max(10_080),
    name: z.string().regex(/^[A-Za-z]{2,64}$/),
    source: z.string().regex(/^[a-z0-9.-]+\.amazonaws\.com$/),
    region: z.string().default('us-east-1'),
    resourceType: z.string().optional(),
    resourceName: TemplateSchema.optional(),
    /** The IAM user the event is recorded for (default: the injected user, else `unknown`). */
    user: TemplateSchema.optional(),
    error: z.string().optional(),
  })
  .strict();

const StepSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    title: z.string().min(1).max(200),
    runbook: z.string().regex(/^[a-z][a-z-]{1,31}$/),
    /** Text the run's input must contain (after placeholders are filled). */
    match: TemplateSchema,
    /** The step that ends the game day when its run succeeds (verified). */
    containment: z.boolean().default(false),
  })
  .strict();

/** One scenario file. */
export const GameDayScenarioSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
    title: z.string().min(1).max(100),
    timeLimit: DurationSchema.default(1_800_000),
    alert: TemplateSchema,
    inject: InjectSchema,
    events: z.array(EventSchema).default([]),
    steps: z.array(StepSchema).min(1),
  })
  .strict()
  .refine((s) => s.steps.filter((step) => step.containment).length === 1, {
    message: 'exactly one step must be the containment step',
    path: ['steps'],
  });

export type GameDayScenario = z.infer<typeof GameDayScenarioSchema>;

/** The shipped scenarios' folder. */
export const SCENARIOS_DIR = new URL('../../scenarios/', import.meta.url).pathname;

/** Reads and validates every scenario in `dir`, by id; a broken file is an error naming it. */
export function loadScenarios(dir: string = SCENARIOS_DIR): Map<string, GameDayScenario> {
  const scenarios = new Map<string, GameDayScenario>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const parsed = GameDayScenarioSchema.safeParse(parse(readFileSync(`${dir}/${file}`, 'utf8')));
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
      throw new Error(`scenario ${file} is invalid:\n  ${problems.join('\n  ')}`);
    }
    if (`${parsed.data.id}.yaml` !== file)
      throw new Error(`scenario ${file} must have id ${file.slice(0, -5)}`);
    scenarios.set(parsed.data.id, parsed.data);
  }
  return scenarios;
}

/** Fills `${name}` placeholders; an unknown name is an error (a typo would never match). */
export function fillTemplate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z]+)\}/g, (_, name: string) => {
    const value = vars[name];
    if (value === undefined)
      throw new Error(`scenario placeholder \${${name}} is not one of: ${Object.keys(vars).join(', ')}`);
    return value;
  });
}
