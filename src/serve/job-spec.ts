/** A service job's spec: the tenant's engine from the config, the caller's fields, the job id and actor. */
import { jobSpec } from '../runner/spec.js';
import type { JobSpec } from '../runner/types.js';
import type { TenantConfig } from './config.js';
import { refuse } from './problem.js';

/** What a request gives besides its sessions; kept with the job so a restart can rebuild its spec. */
export interface JobFields {
  tenant: string;
  bot?: string | undefined;
  reason?: string | undefined;
  maxDurationSec?: number | undefined;
  dryRun?: boolean | undefined;
  plan?: Record<string, boolean> | undefined;
}

export function buildJobSpec(tenant: TenantConfig, fields: JobFields, id: string, actor: string): JobSpec {
  const bot = fields.bot ?? tenant.bot;
  if (bot === undefined) throw refuse('CR_ERR_OPT_MISSING', 'bot: this tenant has no default bot', 'bot');
  return jobSpec({
    transport: tenant.transport,
    url: tenant.url,
    tenant: tenant.tenantId,
    botId: bot,
    allowInsecure: tenant.allowInsecure,
    plan: fields.plan ?? {},
    ...(fields.maxDurationSec === undefined ? {} : { maxDurationSec: fields.maxDurationSec }),
    reason: fields.reason ?? null,
    dryRun: fields.dryRun ?? false,
    jobId: id,
    actor,
  });
}

/** The fields as given, without the sessions: what a job's manifest keeps. */
export function fieldsOf(value: JobFields & { sessions?: unknown }): JobFields {
  const { tenant, bot, reason, maxDurationSec, dryRun, plan } = value;
  return { tenant, bot, reason, maxDurationSec, dryRun, plan };
}
