// Starts tauri-driver (which starts the app through WebKitWebDriver) with a given environment.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Driver } from './webdriver.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, '../../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(repo, 'target');
export const APP = process.env.TESTIMONY_APP_BIN ?? join(targetDir, 'debug/testimony-app');
export const CLI = process.env.TESTIMONY_CLI_BIN ?? join(targetDir, 'debug/testimony');
export const SHOTS = process.env.TESTIMONY_SCREENSHOTS ?? join(repo, 'docs/screenshots');
// Where tauri-driver's stderr (with WebKitWebDriver's) is kept, one file per session, so a
// failure in CI can be read afterwards. The app's own stderr does not come through this way.
const LOGS = process.env.TESTIMONY_E2E_LOGS ?? null;
let sessions = 0;

// Processes named like the binary (the kernel keeps the first 15 characters of a name).
const appPids = (bin) =>
  new Set(
    execFileSync('sh', ['-c', 'pgrep -x "$1" || true', 'sh', basename(bin).slice(0, 15)])
      .toString()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// A port nothing listens on now (the OS picks it), for tauri-driver and WebKitWebDriver.
const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

/** Starts `bin` (the app unless told otherwise, e.g. the benchmark's blank window) with `env`. */
export async function startApp(env, bin = APP) {
  const before = appPids(bin);
  const port = await freePort();
  const nativePort = await freePort();
  const proc = spawn('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let exited = null;
  proc.on('exit', (code, signal) => { exited = signal ?? code; });
  const logFile = LOGS && join(LOGS, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${++sessions}.log`);
  if (logFile) mkdirSync(LOGS, { recursive: true });
  proc.stderr.on('data', (c) => {
    stderr += c;
    if (logFile) appendFileSync(logFile, c);
  });
  const d = new Driver(`http://127.0.0.1:${port}`);
  // A lost session (the page crashed or hung) says what the processes printed last.
  d.diagnostics = () => `\n--- tauri-driver/WebKitWebDriver stderr (last 3000 chars) ---\n${stderr.slice(-3000)}`;
  // tauri-driver and WebKitWebDriver take a moment to listen, longer on a busy machine (CI
  // runs this right after building the app).
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await d.start(bin);
      break;
    } catch (e) {
      if (exited !== null || Date.now() > deadline) {
        proc.kill();
        const why = exited !== null ? `tauri-driver exited (${exited})` : 'no session within 60 s';
        throw new Error(`tauri-driver did not start a session (${why}): ${e.message}${d.diagnostics()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  // The app process this session started (WebKitWebDriver starts it).
  const ours = [...appPids(bin)].filter((p) => !before.has(p));
  return {
    d,
    /** The app's process id (undefined if it could not be told apart). */
    pid: ours.length === 1 ? ours[0] : undefined,
    async stop() {
      await d.quit();
      for (let i = 0; i < 50 && ours.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
      for (const pid of ours.filter(alive)) {
        console.error(`${basename(bin)} ${pid} was still running after the session ended; stopping it`);
        process.kill(pid);
      }
      proc.kill();
    },
  };
}
