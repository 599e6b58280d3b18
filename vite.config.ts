import { defineConfig, type Plugin } from 'vite';
import { cpSync } from 'node:fs';
import { resolve } from 'node:path';

const here = import.meta.dirname;

/** The page's default model: served from the repository in dev, copied next to the page by `vite build`. */
const DEFAULT_MODEL = 'models/needle-reader';

/** `vite build`: copies the bundled model (config, tokenizer, weights; not its training logs) into dist/demo/models/. */
function copyDefaultModel(outDir: string): Plugin {
  return {
    name: 'copy-default-model',
    apply: 'build',
    closeBundle() {
      cpSync(resolve(here, DEFAULT_MODEL), resolve(outDir, DEFAULT_MODEL), { recursive: true, filter: (src) => !src.includes('/training') });
    },
  };
}

// `vite` (dev): the repository root is served, so the demo is at /demo/ (and / redirects there),
// the browser kernel-test page at /e2e/kernels.html, and the bundled model at /models/needle-reader/
// (static files, with HTTP Range support, which the demo's HTTP model source needs). The model runs
// in a module worker (demo/worker.ts).
// `vite build`: builds the demo page alone into dist/demo/ (index.html, assets, the worker, the bundled documents and model).
export default defineConfig(({ command }) => {
  const outDir = resolve(here, 'dist/demo');
  return command === 'build'
    ? {
        root: resolve(here, 'demo'),
        base: './',
        worker: { format: 'es' },
        plugins: [copyDefaultModel(outDir)],
        build: {
          outDir,
          emptyOutDir: true,
          target: 'es2022',
          // The worker's one chunk with every WGSL source and the tokenizer library is ~530 kB; that is expected.
          chunkSizeWarningLimit: 1024,
          rollupOptions: { input: { demo: resolve(here, 'demo/index.html') } },
        },
      }
    : {
        root: '.',
        worker: { format: 'es' },
        // Under vitest (the e2e tests) no HMR: an edit anywhere in the watched tree would otherwise
        // reload the page mid-test.
        server: { host: '127.0.0.1', strictPort: false, hmr: process.env.VITEST ? false : undefined },
        plugins: [
          {
            name: 'demo-at-root',
            configureServer(server) {
              server.middlewares.use((req, res, next) => {
                const [path, query] = (req.url ?? '').split('?', 2);
                if (path === '/' || path === '/index.html') {
                  res.statusCode = 302;
                  res.setHeader('Location', `/demo/${query ? `?${query}` : ''}`);
                  res.end();
                  return;
                }
                next();
              });
            },
          },
        ],
      };
});
