/**
 * Field schemas that both the configuration and the runbooks' input use (account aliases, AWS regions).
 * A leaf module: config.ts merges the runbooks' config fragments into its schema, so the runbooks must
 * not need config.ts itself at load time.
 */
import { z } from 'zod';

export const AccountAliasSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be lower-case letters, digits and dashes, starting with a letter');
export const AwsRegionSchema = z
  .string()
  .regex(/^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d$/, 'must be an AWS region like eu-west-1');
