import { defineConfig } from "vite";

// No plugin: Vite compiles TSX itself, and record-sync loads its own wasm (no wasm plugin, no init call).
export default defineConfig({
  // JSX with React's automatic runtime (what @vitejs/plugin-react would set up, minus Fast Refresh).
  oxc: { jsx: { runtime: "automatic" } },
  resolve: {
    // record-sync is a `file:` dependency, i.e. a symlink to ../../pkg: its React bindings must use this app's
    // React, not a copy found above pkg/.
    dedupe: ["react", "react-dom"],
  },
  server: {
    host: "127.0.0.1",
    strictPort: true,
    // The `file:` link points outside this folder: let the dev server read the package (its .wasm) there. An app
    // that installs record-sync from npm or a tarball has it under node_modules and needs nothing of the sort.
    fs: { allow: [".", "../../pkg"] },
  },
  preview: { host: "127.0.0.1", strictPort: true },
  build: { target: "es2022", outDir: process.env.DEMO_OUT_DIR || "dist", emptyOutDir: true },
});
