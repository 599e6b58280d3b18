import { defineConfig } from 'vite';
import { resolve } from 'node:path';

const here = import.meta.dirname;

// `vite` (dev): the repository root is served, so the demo is at /demo/ (and / redirects there),
// the browser kernel-test page at /e2e/kernels.html, and the default fixture model, written by
// `npx tsx scripts/setup-default.ts`, at /.fixtures/default-model/ (static files, with HTTP Range
// support, which the demo's HTTP model source needs).
// `vite build`: builds the demo page alone into dist/demo/ (index.html + assets).
export default defineConfig(({ command }) =>
  command === 'build'
    ? {
        root: resolve(here, 'demo'),
        base: './',
        build: {
          outDir: resolve(here, 'dist/demo'),
          emptyOutDir: true,
          target: 'es2022',
          // One chunk with every WGSL source and the tokenizer library is ~530 kB; that is expected.
          chunkSizeWarningLimit: 1024,
          rollupOptions: { input: { demo: resolve(here, 'demo/index.html') } },
        },
      }
    : {
        root: '.',
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
      },
);
