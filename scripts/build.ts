/**
 * Production bundle of the CLI: `npm run build` → dist/drugsync.mjs (+ .map). One ES module for Node 22 with
 * every command of services/cli/main.ts, so the ECS tasks (binlog-reader, backfill, verify, resync,
 * embedder) start without transpiling anything and without devDependencies.
 *
 * The production dependencies of package.json stay external (a require at run time, resolved from the
 * `node_modules` that the image's `npm ci --omit=dev --omit=optional` installs beside dist/): native and
 * optional modules are never inlined, and the image's dependency layer is the lock file's. The optional
 * dependencies (onnxruntime-node and the tokenizer of the local MiniLM embedder) stay external too, but the
 * image leaves them out: the bundle may import them only dynamically (`bundleImports` tells), and MiniLM
 * refuses to start without them (services/core/embedding/minilm.ts). Anything else under node_modules reaching
 * the bundle (a devDependency, or a package no manifest declares) fails the build, naming the importer: a task
 * must never depend on something the image's install leaves out.
 *
 * The local-development commands (`stack`, `seed`, `run`, `stream`) are in the bundle too: they are plain
 * static imports without side effects at load, the CLI stays one program, and they only work in a checkout
 * (they start the local servers, or spawn bin/drugsync.mjs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Metafile } from 'esbuild';
import { DrugsyncError, errorMessage } from '../services/core/errors.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE_NAME = 'drugsync.mjs';

export interface CliBundle {
  file: string;
  bytes: number;
  /** production dependencies left to node_modules (the image installs them) */
  externals: string[];
  /** optional dependencies left to node_modules (the image leaves them out) */
  optionalExternals: string[];
  metafile: Metafile;
  /** the worker threads' modules beside the bundle (`WORKER_ENTRIES`) */
  workers: string[];
}

/**
 * Worker threads the CLI starts from a module file of their own (`new Worker(new URL('./<name>.mjs',
 * import.meta.url))`): each is a second entry point, built beside the bundle under that name. Node built-ins
 * only, so they bundle to one small file each.
 */
export const WORKER_ENTRIES: Record<string, string> = {
  'compressor-worker': 'services/core/compressor-worker.ts',
};

async function buildWorkers(outDir: string): Promise<string[]> {
  const result = await build({
    entryPoints: Object.fromEntries(
      Object.entries(WORKER_ENTRIES).map(([name, src]) => [name, path.join(PROJECT_ROOT, src)]),
    ),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const inlined = bundledPackages(result.metafile);
  if (inlined.length > 0) throw new Error(`a worker imports from node_modules: ${inlined.join(', ')}`);
  return Object.keys(WORKER_ENTRIES).map((name) => path.join(outDir, `${name}.mjs`));
}

/** One package the bundle imports from node_modules, and how: `static` ones must be there at start. */
export interface BundleImport {
  package: string;
  kind: 'static' | 'dynamic';
}

function manifestDependencies(root: string, field: 'dependencies' | 'optionalDependencies'): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<
    string,
    Record<string, string> | undefined
  >;
  return Object.keys(pkg[field] ?? {}).sort();
}

export function productionDependencies(root = PROJECT_ROOT): string[] {
  return manifestDependencies(root, 'dependencies');
}

export function optionalDependencies(root = PROJECT_ROOT): string[] {
  return manifestDependencies(root, 'optionalDependencies');
}

/** The package of an import path: `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
function packageOf(importPath: string): string {
  const parts = importPath.split('/');
  return (importPath.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/**
 * The bundle's dependency list: every package it imports from node_modules (node: built-ins aside), `static`
 * when any import of it is (loaded at start), `dynamic` when it is only ever `import()`ed.
 */
export function bundleImports(metafile: Metafile): BundleImport[] {
  const kinds = new Map<string, BundleImport['kind']>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imp of output.imports) {
      if (!imp.external || imp.path.startsWith('node:')) continue;
      const pkg = packageOf(imp.path);
      const kind = imp.kind === 'dynamic-import' ? 'dynamic' : 'static';
      if (kinds.get(pkg) !== 'static') kinds.set(pkg, kind);
    }
  }
  return [...kinds]
    .map(([p, kind]) => ({ package: p, kind }))
    .sort((a, b) => a.package.localeCompare(b.package));
}

/** Inputs of the bundle that come from node_modules: there must be none (see the header). */
function bundledPackages(metafile: Metafile): string[] {
  return Object.keys(metafile.inputs).filter((f) => f.split(/[\\/]/).includes('node_modules'));
}

/**
 * The image's production install: the `RUN npm ci …` of the Dockerfile's `deps` stage, up to its first `&&`,
 * as npm arguments (`['ci', '--omit=dev', …]`). test/bundle.test.ts installs beside the bundle exactly this,
 * so the dependency list it checks is the image's.
 */
export function imageProductionInstall(root = PROJECT_ROOT): string[] {
  const dockerfile = path.join(root, 'Dockerfile');
  const text = fs.readFileSync(dockerfile, 'utf8').replace(/\\\n/g, ' ');
  const stage = text.split(/^FROM /m).find((s) => /^\S+\s+AS\s+deps\s*$/i.test(s.split('\n')[0] ?? ''));
  const run = stage?.match(/^RUN\s+npm\s+(ci\b[^&\n]*)/m)?.[1];
  if (!run) {
    throw new DrugsyncError('CONFIG_INVALID', 'the Dockerfile has no `RUN npm ci …` in a stage named deps', {
      context: { file: dockerfile },
      remedy: 'keep the production install in the deps stage (`FROM … AS deps`, `RUN npm ci --omit=dev …`)',
    });
  }
  return run.trim().split(/\s+/);
}

export async function buildCliBundle(outDir = path.join(PROJECT_ROOT, 'dist')): Promise<CliBundle> {
  const deps = productionDependencies();
  const optional = optionalDependencies();
  const file = path.join(outDir, BUNDLE_NAME);
  fs.mkdirSync(outDir, { recursive: true });
  let metafile: Metafile;
  let workers: string[];
  try {
    const result = await build({
      stdin: {
        contents: "import { main } from './services/cli/main.ts';\nawait main(process.argv);\n",
        resolveDir: PROJECT_ROOT,
        sourcefile: 'drugsync-entry.ts',
        loader: 'ts',
      },
      outfile: file,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      external: [...deps, ...optional].flatMap((d) => [d, `${d}/*`]),
      sourcemap: 'linked',
      sourcesContent: false,
      metafile: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
    metafile = result.metafile;
    workers = await buildWorkers(outDir);
  } catch (e) {
    throw new DrugsyncError('CONFIG_INVALID', `esbuild could not bundle the CLI: ${errorMessage(e)}`, {
      context: { entry: 'services/cli/main.ts', out: file },
      remedy: 'fix the import named above',
    });
  }
  const inlined = bundledPackages(metafile);
  if (inlined.length > 0) {
    throw new DrugsyncError(
      'CONFIG_INVALID',
      `the CLI bundle would inline ${inlined.length} file(s) from node_modules that are not production dependencies: ${inlined.slice(0, 5).join(', ')}`,
      {
        context: { out: file, files: inlined.slice(0, 20) },
        remedy:
          'declare the package under "dependencies" in package.json (then run npm install), or stop importing it from code the CLI loads',
      },
    );
  }
  return {
    file,
    bytes: fs.statSync(file).size,
    externals: deps,
    optionalExternals: optional,
    metafile,
    workers,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
  const b = await buildCliBundle(outDir);
  process.stdout.write(
    `${path.relative(process.cwd(), b.file)}: ${(b.bytes / 1024).toFixed(0)} KiB, production dependencies external: ${b.externals.join(', ')}; optional, loaded on demand and not in the image: ${b.optionalExternals.join(', ')}\n`,
  );
}
