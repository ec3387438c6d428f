/**
 * The layering rule of docs/architecture.md ("The layers"), checked by `npm run lint`: no import cycle,
 * and no import from a layer to one above it. Layers, from the bottom up; a module may import its own
 * layer and the ones below it.
 */
const LAYERS = [
  { name: 'base', path: '^src/(util/|errors\\.ts$)' },
  { name: 'protocol', path: '^src/protocol/' },
  { name: 'model', path: '^src/model/' },
  { name: 'audit-select', path: '^src/(audit/|select/)' },
  { name: 'transports', path: '^src/transports/' },
  { name: 'reset', path: '^src/reset/' },
  { name: 'sinks-store', path: '^src/(sinks/|store/|targets/)' },
  { name: 'runner', path: '^src/runner/' },
  { name: 'edges', path: '^src/(cli|demo|emulator|serve)/|^src/index\\.ts$' },
];

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `no-upward-from-${layer.name}`,
  comment: `${layer.name} imports only its own layer and the ones below it`,
  severity: 'error',
  from: { path: layer.path },
  to: {
    path: LAYERS.slice(i + 1)
      .map((above) => `(${above.path})`)
      .join('|'),
  },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'an import cycle ties its modules into one: break it by moving the shared part down',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    ...upward,
    {
      name: 'demo-not-cli',
      comment: 'the demo uses the library as a user would, never the command line',
      severity: 'error',
      from: { path: '^src/demo/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-the-sqlite-backend-imports-better-sqlite3',
      comment: 'nothing above the store port imports a database driver: SQLite is src/store/sqlite/',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/store/sqlite/' },
      to: { path: 'node_modules/(@types/)?better-sqlite3/' },
    },
    {
      name: 'only-the-postgres-backend-imports-pg',
      comment: 'nothing above the store port imports a database driver: PostgreSQL is src/store/postgres/',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/store/postgres/' },
      to: { path: 'node_modules/(@types/)?(pg|pg-cursor|pg-pool|pg-protocol)/' },
    },
    {
      name: 'emulator-shares-the-protocol-only',
      comment: "the emulator shares the protocol's definition with the client, never the client's code",
      severity: 'error',
      from: { path: '^src/emulator/' },
      to: { path: '^src/(?!emulator/|protocol/|util/|errors\\.ts$)' },
    },
    {
      name: 'web-is-the-browser-side',
      comment: 'the dashboard (src/web) runs in a browser: it speaks to the service over HTTP only',
      severity: 'error',
      from: { path: '^src/web/' },
      to: { path: '^src/(?!web/)' },
    },
    {
      name: 'nothing-imports-web',
      comment: 'the dashboard is bundled by esbuild and served as files, never imported',
      severity: 'error',
      from: { path: '^src/(?!web/)' },
      to: { path: '^src/web/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too: a type in the wrong layer is where the next cycle starts.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
