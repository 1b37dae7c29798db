// Benchmark (not a test): cold start of the real app to the unlock screen, and its memory
// when idle on that screen (the app process plus its WebKit processes, PSS from
// /proc/PID/smaps_rollup). Needs a built app, tauri-driver and a display:
//   xvfb-run -a node tests/e2e/bench.mjs [runs]          (results in docs/performance.md)
// The start time is measured from the WebDriver session request, so it includes starting
// WebKitWebDriver (tens of milliseconds): an upper bound for a start by hand.
// Baseline, side by side: each run also starts the framework's floor, `blank_window` (Cargo
// example of src-tauri: the same Tauri build and WebKit settings, a one-line page, no Rust
// side), from the `examples/` folder beside the app binary (TESTIMONY_FLOOR_BIN=… elsewhere;
// build it with `cargo build -p testimony-app --example blank_window`, --release for a
// release app). The app's figures are then also given as ratios to the floor's.
// TESTIMONY_WEBVIEW_TUNING (src-tauri/src/webview.rs) passes through to both, to compare
// WebKit settings in one build: `none`, `all`, or a list such as `cache,accel`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { APP, CLI, startApp } from './harness.mjs';

const runs = Number(process.argv[2] ?? 5);
const FLOOR = process.env.TESTIMONY_FLOOR_BIN ?? join(dirname(APP), 'examples/blank_window');
if (!existsSync(FLOOR)) {
  console.error(`no baseline at ${FLOOR}: build it with \`cargo build -p testimony-app --example blank_window\` (add --release for a release app)`);
  process.exit(2);
}
const tmp = mkdtempSync(join(tmpdir(), 'testimony-bench-'));
const vault = join(tmp, 'vault');
execFileSync(CLI, ['demo'], { env: { ...process.env, TESTIMONY_VAULT: vault, TESTIMONY_PASSPHRASE: 'demo passphrase - fictional data only' }, stdio: 'pipe' });

function descendants(pid) {
  const out = [pid];
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const ppid = Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === pid) out.push(...descendants(Number(d)));
    } catch { /* gone */ }
  }
  return out;
}
const pssKiB = (pid) => Number(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m)[1]);
const comm = (pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();

// One start of `bin`: time until `selector` is shown, then PSS per process after 5 s idle.
async function measure(bin, selector, env) {
  const t0 = performance.now();
  const app = await startApp(env, bin);
  await app.d.wait(selector, { timeout: 30_000 });
  const start = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5000));
  if (app.pid === undefined) throw new Error(`could not tell which ${bin} process this is`);
  const byProcess = {}; // the binary's own process as `main`, WebKit's by their names
  for (const p of descendants(app.pid)) {
    const name = p === app.pid ? 'main' : comm(p);
    byProcess[name] = (byProcess[name] ?? 0) + pssKiB(p) / 1024;
  }
  await app.stop();
  return { start, total: Object.values(byProcess).reduce((a, b) => a + b, 0), byProcess };
}

const env = { TESTIMONY_VAULT: vault, XDG_CONFIG_HOME: join(tmp, 'config'), XDG_DATA_HOME: join(tmp, 'data') };
const results = { app: [], floor: [] };
for (let i = 0; i < runs; i++) {
  results.app.push(await measure(APP, '[data-testid="unlock-passphrase"]', env));
  results.floor.push(await measure(FLOOR, 'p', env));
}
rmSync(tmp, { recursive: true, force: true });
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const list = (a, digits = 0) => a.map((x) => x.toFixed(digits)).join(', ');
for (const [name, rs] of Object.entries(results)) {
  const label = name === 'app' ? 'app (unlock screen)' : 'floor (blank_window)';
  console.log(`${label}: cold start median ${med(rs.map((r) => r.start)).toFixed(0)} ms (runs: ${list(rs.map((r) => r.start))})`);
  console.log(`${label}: idle memory (PSS, process + WebKit processes) median ${med(rs.map((r) => r.total)).toFixed(0)} MiB (runs: ${list(rs.map((r) => r.total))})`);
  const names = [...new Set(rs.flatMap((r) => Object.keys(r.byProcess)))];
  console.log(`  by process (median MiB): ${names.map((n) => `${n} ${med(rs.map((r) => r.byProcess[n] ?? 0)).toFixed(0)}`).join(', ')}`);
}
const ratio = (f) => med(results.app.map(f)) / med(results.floor.map(f));
console.log(`app / floor: memory ${ratio((r) => r.total).toFixed(2)}x (+${(med(results.app.map((r) => r.total)) - med(results.floor.map((r) => r.total))).toFixed(0)} MiB), start ${ratio((r) => r.start).toFixed(2)}x`);
