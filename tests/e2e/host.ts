// The page as the e2e tests see it: the project's own Vite config serving the playground on a free
// port, and headless Chromium with WebGPU (SwiftShader on a machine without a GPU). One place for
// what page.test.ts, playground.test.ts and compose.test.ts all start.
import { createServer, type ViteDevServer } from 'vite';
import { chromium, type Browser } from 'playwright';
import { resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { chromiumArgs, chromiumPath } from '../../scripts/chromium.mjs';

export const root = resolve(__dirname, '../..');
/** where the e2e runs save the screenshots the README shows */
export const shots = resolve(root, 'docs/screenshots');

export interface PageHost {
  server: ViteDevServer;
  browser: Browser;
  /** the page's URL, ending in "/" */
  base: string;
  close(): Promise<void>;
}

export async function startPageHost(): Promise<PageHost> {
  const server = await createServer({
    root,
    configFile: resolve(root, 'vite.config.ts'),
    cacheDir: resolve(root, 'node_modules/.vite-e2e'),
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  let browser: Browser | undefined;
  try {
    await server.listen();
    const addr = server.httpServer!.address();
    if (!addr || typeof addr === 'string') throw new Error('no server address');
    browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
    mkdirSync(shots, { recursive: true });
    const b = browser;
    return { server, browser: b, base: `http://127.0.0.1:${addr.port}/`, close: async () => { await b.close(); await server.close(); } };
  } catch (e) {
    await browser?.close();
    await server.close();
    throw e;
  }
}
