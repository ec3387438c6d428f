/** A service job's spec: the tenant's engine from the config, the caller's fields, the job id and actor. */
import { jobSpec } from '../runner/spec.js';
import type { JobSpec } from '../runner/types.js';
import type { TenantConfig } from './config.js';
import { refuse } from './problem.js';

/** A selector as a request gives it: where its data is read comes from the tenant's config. */
export interface SelectorFields {
  flow?: string | undefined;
  endpoint?: string | undefined;
  node?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  limit?: number | undefined;
}

/** What a request gives besides its sessions; kept with the job so a restart can rebuild its spec. */
export interface JobFields {
  tenant: string;
  bot?: string | undefined;
  reason?: string | undefined;
  maxDurationSec?: number | undefined;
  dryRun?: boolean | undefined;
  plan?: Record<string, boolean> | undefined;
  selector?: SelectorFields | undefined;
}

/** The spec of a job (`id`), or of a one-off reset (no id): still audited, under `actor`. */
export function buildJobSpec(
  tenant: TenantConfig,
  fields: JobFields,
  id: string | undefined,
  actor: string,
): JobSpec {
  const bot = fields.bot ?? tenant.bot;
  if (bot === undefined) throw refuse('CR_ERR_OPT_MISSING', 'bot: this tenant has no default bot', 'bot');
  if (fields.selector !== undefined && tenant.odataUrl === undefined)
    throw refuse(
      'CR_ERR_OPT_INVALID',
      `selector: tenant ${tenant.name} has no OData endpoint (odataUrl in the service config)`,
      'selector',
    );
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
    ...(id === undefined ? {} : { jobId: id }),
    actor,
    ...(tenant.engine === undefined ? {} : { engine: tenant.engine }),
    // Each outcome's event goes through the store's outbox: any replica delivers it, once it is committed.
    ...(tenant.analyticsUrl === undefined ? {} : { sinks: { webhook: { url: tenant.analyticsUrl } } }),
    ...(fields.selector === undefined
      ? {}
      : {
          selector: {
            ...fields.selector,
            odataUrl: tenant.odataUrl,
            ...(tenant.apiUrl === undefined ? {} : { apiUrl: tenant.apiUrl }),
          },
        }),
  });
}

/** The fields as given, without the sessions and the confirmation: what the store keeps of a request. */
export function fieldsOf(value: JobFields & { sessions?: unknown }): JobFields {
  const { tenant, bot, reason, maxDurationSec, dryRun, plan, selector } = value;
  return JSON.parse(
    JSON.stringify({ tenant, bot, reason, maxDurationSec, dryRun, plan, selector }),
  ) as JobFields;
}
