/**
 * The PostgreSQL store against the SQLite state file: bulk verified resets per second of
 * `cognigy-reset reset` (audit log on, the default; once more with a job ledger too) against the
 * emulator, with `--store postgres://...` and with a state file, alternating in the same run. Goal: the
 * PostgreSQL store keeps at least 0.8 of the SQLite store's throughput.
 *
 * Each side keeps one store for the whole run (a database created for it, dropped at the end; a state
 * file), so both logs grow alike. Beside the rates it reports CPU per reset: the CLI's (every thread)
 * and the PostgreSQL server's (its processes, read from /proc), which share the machine's cores with the
 * emulator; and the server's commits per run (`pg_stat_database`), one per writer batch.
 *
 *   npm run build && node dist/bench/store-postgres.js [--ids 100000] [--runs 5]
 *   (CR_BENCH_PG_URL names the server's maintenance database; default postgres://postgres@127.0.0.1:5432/test)
 */
import { join } from 'node:path';
import pg from 'pg';
import { cliRun } from './lib/cli-run.js';
import { median } from './lib/child.js';
import { pairedRatio, roundOrder, startPairedBench } from './lib/paired-bench.js';
import { databaseWrites, serverCpu } from './lib/pg-server.js';

const SERVER = process.env['CR_BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const bench = await startPairedBench('store-postgres', (runs) => 4 * runs + 2);
const { count, runs, dir, wsUrl, take, common } = bench;

const admin = new pg.Client(SERVER);
await admin.connect();
const database = `cr_bench_${process.pid}`;
await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
await admin.query(`CREATE DATABASE ${database}`);
const pgUrl = new URL(SERVER);
pgUrl.pathname = `/${database}`;
const STORES = { postgres: ['--store', pgUrl.toString()], sqlite: ['--store', join(dir, 'state.sqlite')] };

const commits = async (): Promise<number> => (await databaseWrites(admin, database)).commits;

interface Sample {
  rate: number;
  cliUsPerReset: number;
  serverUsPerReset: number | undefined;
  commits: number;
}

async function side(name: string, store: 'postgres' | 'sqlite', job: string | undefined): Promise<Sample> {
  const cpuBefore = serverCpu();
  const commitsBefore = await commits();
  const args = [...common, ...STORES[store], ...(job === undefined ? [] : ['--job', job])];
  const result = await cliRun({ dir, name, ids: take(), wsUrl, args, cpu: true });
  if (result.verified !== count) throw new Error(`${name}: verified ${result.verified}`);
  const cpuAfter = serverCpu();
  return {
    rate: result.throughput,
    cliUsPerReset: ((result.cpuMs ?? 0) * 1000) / count,
    serverUsPerReset:
      cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / count,
    commits: (await commits()) - commitsBefore,
  };
}

type Pair = Record<'postgres' | 'sqlite', Sample[]>;

function report(label: string, pair: Pair): Record<string, unknown> {
  const ratio = pairedRatio(
    pair.postgres.map((s) => s.rate),
    pair.sqlite.map((s) => s.rate),
  );
  const us = (samples: Sample[], pick: (s: Sample) => number | undefined): number | undefined => {
    const values = samples.map(pick).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : Number(median(values).toFixed(1));
  };
  const figures = {
    postgresPerSec: ratio.on,
    sqlitePerSec: ratio.off,
    ratio: ratio.ratio,
    ratioRange: ratio.ratioRange,
    cliUsPerReset: {
      postgres: us(pair.postgres, (s) => s.cliUsPerReset),
      sqlite: us(pair.sqlite, (s) => s.cliUsPerReset),
    },
    postgresServerUsPerReset: us(pair.postgres, (s) => s.serverUsPerReset),
    postgresCommitsPerRun: median(pair.postgres.map((s) => s.commits)),
  };
  process.stdout.write(
    `${label}: verified resets/s, medians of ${runs}: PostgreSQL ${figures.postgresPerSec}, SQLite ${figures.sqlitePerSec}; ` +
      `ratio ${figures.ratio.toFixed(3)} (rounds ${figures.ratioRange.join('-')}; goal >= 0.8). ` +
      `CPU per reset: CLI ${figures.cliUsPerReset.postgres} µs with PostgreSQL, ${figures.cliUsPerReset.sqlite} µs with SQLite; ` +
      `PostgreSQL server ${figures.postgresServerUsPerReset ?? '?'} µs; ${figures.postgresCommitsPerRun} commits a run\n`,
  );
  return figures;
}

try {
  await side('warm-postgres', 'postgres', undefined);
  await side('warm-sqlite', 'sqlite', undefined);
  const plain: Pair = { postgres: [], sqlite: [] };
  const job: Pair = { postgres: [], sqlite: [] };
  for (let round = 0; round < runs; round++) {
    for (const which of roundOrder(round)) {
      const store = which === 'on' ? 'postgres' : 'sqlite';
      plain[store].push(await side(`plain-${store}-${round}`, store, undefined));
      job[store].push(await side(`job-${store}-${round}`, store, `job-${store}-${round}`));
    }
  }
  const plainResult = report('audit log (the default)', plain);
  const jobResult = report('audit log and a job ledger', job);
  process.stdout.write(
    `${JSON.stringify({ bench: 'store-postgres', ids: count, runs, plain: plainResult, job: jobResult })}\n`,
  );
} finally {
  await bench.stop();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await admin.end();
}
