// Benchmark (not a test): cold start of the real app to the unlock screen, and its memory
// when idle on that screen (the app process plus its WebKit processes, PSS from
// /proc/PID/smaps_rollup). Needs a built app, tauri-driver and a display:
//   xvfb-run -a node tests/e2e/bench.mjs [runs]          (results in docs/performance.md)
// The start time is measured from the WebDriver session request, so it includes starting
// WebKitWebDriver (tens of milliseconds): an upper bound for a start by hand.
// TESTIMONY_WEBVIEW_TUNING (src-tauri/src/webview.rs) passes through to the app, to compare
// WebKit settings in one build: `none`, `all`, or a list such as `cache,accel`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, startApp } from './harness.mjs';

const runs = Number(process.argv[2] ?? 5);
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

const starts = [];
const mems = [];
const byProcess = {}; // process name -> PSS (MiB) per run
for (let i = 0; i < runs; i++) {
  const t0 = performance.now();
  const app = await startApp({ TESTIMONY_VAULT: vault, XDG_CONFIG_HOME: join(tmp, 'config'), XDG_DATA_HOME: join(tmp, 'data') });
  await app.d.wait('[data-testid="unlock-passphrase"]', { timeout: 30_000 });
  starts.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 5000));
  const pid = Number(execFileSync('sh', ['-c', 'pgrep -n -x testimony-app']).toString().trim());
  const procs = descendants(pid);
  mems.push(procs.reduce((a, p) => a + pssKiB(p), 0) / 1024);
  const run = {};
  for (const p of procs) run[comm(p)] = (run[comm(p)] ?? 0) + pssKiB(p) / 1024;
  for (const [name, mib] of Object.entries(run)) (byProcess[name] ??= []).push(mib);
  await app.stop();
}
rmSync(tmp, { recursive: true, force: true });
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`cold start to the unlock screen: median ${med(starts).toFixed(0)} ms (runs: ${starts.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`idle memory on the unlock screen (PSS, app + WebKit processes): median ${med(mems).toFixed(0)} MiB (runs: ${mems.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`  by process (median MiB): ${Object.entries(byProcess).map(([n, v]) => `${n} ${med(v).toFixed(0)}`).join(', ')}`);
