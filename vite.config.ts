import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// WGSL kernels live in shaders/*.wgsl and are imported as strings with `?raw`.
export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  server: { host: '127.0.0.1', port: 5173 },
  preview: { host: '127.0.0.1', port: 4173 },
  build: { target: 'es2022', sourcemap: true },
});
