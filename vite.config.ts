import { defineConfig } from 'vite';
import { resolve } from 'node:path';

// Serves the demo page (demo/) and the browser kernel-test page (e2e/kernels.html).
export default defineConfig({
  root: '.',
  server: { host: '127.0.0.1', strictPort: false },
  build: {
    outDir: 'dist/demo',
    rollupOptions: { input: { demo: resolve(import.meta.dirname, 'demo/index.html') } },
  },
});
