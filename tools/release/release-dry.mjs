#!/usr/bin/env node
// `npm run release:dry`: version the packages with changesets in a scratch copy of the repo and
// `npm pack` each public package, without publishing and without touching this checkout.
// If no changeset is pending, a temporary one bumps every public package by a patch so that the
// versioning path (internal caret ranges, private packages left alone) is exercised too.
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const root = resolve(new URL('../..', import.meta.url).pathname);
const sh = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const workspaces = rootPkg.workspaces.map((w) => ({
  dir: w,
  pkg: JSON.parse(readFileSync(join(root, w, 'package.json'), 'utf8')),
}));
const publicWs = workspaces.filter((w) => !w.pkg.private);

for (const w of publicWs) {
  if (!existsSync(join(root, w.dir, 'dist', 'src', 'index.js'))) {
    console.log('[release:dry] building first (dist missing)');
    sh('npx', ['nx', 'run-many', '-t', 'build', '--output-style=static'], root);
    break;
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'sipc-release-'));
try {
  const skip = new Set(['node_modules', '.git', '.nx', '.wine-node']);
  cpSync(root, scratch, {
    recursive: true,
    filter: (src) =>
      !relative(root, src)
        .split('/')
        .some((p) => skip.has(p)),
  });
  symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'), 'dir');

  const pending = readdirSync(join(scratch, '.changeset')).filter(
    (f) => f.endsWith('.md') && f !== 'README.md',
  );
  if (pending.length === 0) {
    const front = publicWs.map((w) => `"${w.pkg.name}": patch`).join('\n');
    writeFileSync(
      join(scratch, '.changeset', 'release-dry.md'),
      `---\n${front}\n---\n\nrelease:dry rehearsal\n`,
    );
    console.log('[release:dry] no pending changesets: using a temporary patch bump for every public package');
  } else {
    console.log(`[release:dry] pending changesets: ${pending.join(', ')}`);
  }
  sh(join(root, 'node_modules', '.bin', 'changeset'), ['version'], scratch);

  const out = join(scratch, 'out');
  mkdirSync(out);
  const packed = JSON.parse(
    sh(
      'npm',
      ['pack', '--json', '--pack-destination', out, ...publicWs.flatMap((w) => ['-w', w.dir])],
      scratch,
    ).replace(/^[^[]*/, ''),
  );
  console.log(`\n${'package'.padEnd(34)} before  after   tarball (files, size)`);
  for (const w of publicWs) {
    const after = JSON.parse(readFileSync(join(scratch, w.dir, 'package.json'), 'utf8'));
    const p = packed.find((x) => x.name === w.pkg.name);
    for (const [dep, range] of Object.entries(after.dependencies ?? {})) {
      if (dep.startsWith('@secure-ipc/') && !/^\^\d/.test(range))
        throw new Error(`${w.pkg.name}: ${dep} has range ${range}, not a caret range`);
    }
    if (!p.files.some((f) => f.path.startsWith('dist/src/')))
      throw new Error(`${w.pkg.name}: tarball has no dist/src`);
    if (p.files.some((f) => f.path.startsWith('dist/test/')))
      throw new Error(`${w.pkg.name}: tarball ships tests`);
    console.log(
      `${w.pkg.name.padEnd(34)} ${w.pkg.version.padEnd(7)} ${after.version.padEnd(7)} ${p.filename} (${p.entryCount}, ${p.size} B)`,
    );
  }
  for (const w of workspaces.filter((x) => x.pkg.private)) {
    const after = JSON.parse(readFileSync(join(scratch, w.dir, 'package.json'), 'utf8'));
    if (after.version !== w.pkg.version) throw new Error(`private package ${w.pkg.name} was versioned`);
  }
  console.log('\n[release:dry] ok: nothing was published; scratch copy removed');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
