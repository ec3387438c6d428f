/**
 * A job's manifest, `<dir>/<id>.job.json`: what the service needs to list it after a restart, and to run
 * it again if it had not finished (its sessions are in `<id>.upload`; its ledger in the store skips what
 * is done). Written whole to a temporary file and renamed, so a crash leaves the old one or the new one.
 */
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TargetField } from '../transports/transport.js';
import type { JobFields } from './job-spec.js';

export interface JobManifest {
  version: 1;
  id: string;
  fields: JobFields;
  actor: string;
  createdAt: string;
  total: number;
  required: TargetField[];
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  startedAt: string | null;
  finishedAt: string | null;
  counts: { total: number; reset: number; verified: number; failed: number; skipped: number };
  errors: Record<string, number>;
  latencyMs: { p50: number; p95: number; p99: number };
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  /** The API key's id and Idempotency-Key the job was created with, and its request's fingerprint. */
  idempotency?: { slot: string; fingerprint: string } | undefined;
}

export const uploadPath = (dir: string, id: string): string => join(dir, `${id}.upload`);

export function writeManifest(dir: string, manifest: JobManifest): void {
  const path = join(dir, `${manifest.id}.job.json`);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(manifest)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** Every manifest in `dir`, oldest first; an unreadable one is skipped (and named to `onBad`). */
export function readManifests(dir: string, onBad: (file: string) => void): JobManifest[] {
  const manifests: JobManifest[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.job.json')) continue;
    try {
      const manifest = JSON.parse(readFileSync(join(dir, file), 'utf8')) as JobManifest;
      if (manifest.version === 1) manifests.push(manifest);
      else onBad(file);
    } catch {
      onBad(file);
    }
  }
  return manifests.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}
