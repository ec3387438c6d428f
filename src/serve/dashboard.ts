/**
 * The dashboard at `/`: a small HTML page and one script and stylesheet bundled at build time from
 * `src/web/` (`npm run build`), served from `dist/src/web/`: nothing from a CDN, works offline. The page
 * holds no key: the user pastes one, kept in sessionStorage (this tab only). The assets' URLs carry their
 * hash, so a browser may keep them for good.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { refuse } from './problem.js';

const ASSETS = { 'dashboard.js': 'text/javascript', 'dashboard.css': 'text/css' } as const;
type AssetName = keyof typeof ASSETS;

const ASSET_DIR = new URL('../web/', import.meta.url);

/** Only the page's own origin; styles inline too (the chart library sets element styles). */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  /** The same, gzipped once. */
  gzip: Buffer;
  hash: string;
}

interface Bundle {
  files: Map<AssetName, Asset>;
  html: string;
}

let bundle: Bundle | undefined;

function loadBundle(): Bundle {
  if (bundle !== undefined) return bundle;
  const files = new Map<AssetName, Asset>();
  for (const name of Object.keys(ASSETS) as AssetName[]) {
    let body: Buffer;
    try {
      body = readFileSync(new URL(name, ASSET_DIR));
    } catch {
      throw refuse('CR_ERR_API_NOT_FOUND', `the dashboard's ${name} is not built: run npm run build`);
    }
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
    files.set(name, { body, gzip: gzipSync(body), hash });
  }
  const url = (name: AssetName): string => `/assets/${name}?v=${files.get(name)!.hash}`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>cognigy-reset</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${url('dashboard.css')}">
<script type="module" src="${url('dashboard.js')}"></script>
</head>
<body>
<div id="app"><noscript>The dashboard needs JavaScript; the API is described at <a href="/docs">/docs</a>.</noscript></div>
</body>
</html>
`;
  bundle = { files, html };
  return bundle;
}

export function dashboardRoutes() {
  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    app.get('/', { schema: { hide: true } }, (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', CSP)
        .header('cache-control', 'no-cache')
        .send(loadBundle().html),
    );
    app.get('/assets/:name', { schema: { hide: true } }, (request, reply) => {
      const { name } = request.params as { name: string };
      const file = Object.hasOwn(ASSETS, name) ? loadBundle().files.get(name as AssetName) : undefined;
      if (file === undefined) throw refuse('CR_ERR_API_NOT_FOUND', `no asset ${name}`);
      const gzip = /\bgzip\b/.test(request.headers['accept-encoding'] ?? '');
      if (gzip) void reply.header('content-encoding', 'gzip');
      return reply
        .type(ASSETS[name as AssetName])
        .header('vary', 'accept-encoding')
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(gzip ? file.gzip : file.body);
    });
    done();
  };
}
