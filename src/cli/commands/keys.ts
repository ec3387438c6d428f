/** `cognigy-reset keys create|list|revoke`: the service's API keys, stored hashed through the store. */
import { Command } from 'commander';
import { createKey, keyView, SCOPES } from '../../serve/keys.js';
import { openServiceStore } from '../../serve/open-store.js';
import { CognigyResetError } from '../../errors.js';
import type { Store } from '../../store/port.js';
import { collect, textUpTo } from '../parse.js';
import { resolveStore, STATE_HELP, STORE_HELP, type StoreFlags } from '../store-flags.js';

async function withStore(flags: StoreFlags, run: (store: Store) => Promise<void>): Promise<void> {
  const store = await openServiceStore(resolveStore(flags, process.env).location);
  try {
    await run(store);
  } finally {
    await store.close();
  }
}

const line = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

export function keysCommand(): Command {
  const keys = new Command('keys').description("the service's API keys (cognigy-reset serve)");
  keys
    .command('create')
    .description('create a key: prints {"id","key",...} once; only its hash is stored')
    .requiredOption('--scope <scopes>', `scopes, comma-separated: ${SCOPES.join(', ')}`)
    .option(
      '--tenant <id>',
      'bind the key to this tenant (repeatable; none: every tenant)',
      collect(textUpTo(256)),
    )
    .option('--label <text>', 'a note kept with the key', textUpTo(200))
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
    .action(async (flags: StoreFlags & { scope: string; tenant?: string[]; label?: string }) => {
      const scopes = flags.scope
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      await withStore(flags, async (store) => {
        const { key, record } = await createKey(store, {
          scopes,
          tenants: flags.tenant ?? [],
          label: flags.label,
        });
        line({ id: record.id, key, ...keyView(record) });
      });
    });
  keys
    .command('list')
    .description('one JSON line a key (never the key itself)')
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
    .action(async (flags: StoreFlags) => {
      await withStore(flags, async (store) => {
        for (const record of await store.listApiKeys()) line(keyView(record));
      });
    });
  keys
    .command('revoke')
    .description('revoke a key by its id: the service refuses it from its next request')
    .argument('<id>', 'the key id (key_...)')
    .option('--store <url>', STORE_HELP)
    .option('--state <path>', STATE_HELP)
    .action(async (id: string, flags: StoreFlags) => {
      await withStore(flags, async (store) => {
        const revoked = await store.revokeApiKey(id);
        if (!revoked && !(await store.listApiKeys()).some((k) => k.id === id))
          throw new CognigyResetError('CR_ERR_OPT_INVALID', `no key ${JSON.stringify(id)}`, { field: 'id' });
        line({ id, revoked: true });
      });
    });
  return keys;
}
