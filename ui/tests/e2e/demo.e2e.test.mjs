// Demo mode, as `./run demo` starts it: a vault made by `testimony demo`, opened by the app
// through TESTIMONY_VAULT. The app never reads the passphrase from the environment: it is typed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, SHOTS, startApp } from './harness.mjs';

const PASS = 'demo passphrase - fictional data only';
let tmp, app, d, vault;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'testimony-demo-'));
  mkdirSync(SHOTS, { recursive: true });
  vault = join(tmp, 'demo-vault');
  execFileSync(CLI, ['demo'], { env: { ...process.env, TESTIMONY_VAULT: vault, TESTIMONY_PASSPHRASE: PASS }, stdio: 'pipe' });
  app = await startApp({ XDG_CONFIG_HOME: join(tmp, 'config'), XDG_DATA_HOME: join(tmp, 'data'), TESTIMONY_VAULT: vault, TESTIMONY_PASSPHRASE: '' });
  d = app.d;
});
after(async () => {
  await app?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const tid = (id) => `[data-testid="${id}"]`;
async function shot(name) {
  await d.exec('window.scrollTo(0, 0); document.activeElement?.blur?.();');
  await new Promise((r) => setTimeout(r, 500));
  writeFileSync(join(SHOTS, `${name}.png`), await d.screenshot());
}

test('the app opens the demo vault made by the CLI', { timeout: 180_000 }, async () => {
  await d.wait(tid('unlock'), { timeout: 30_000 });
  await d.type(tid('unlock-passphrase'), PASS);
  await d.click(tid('unlock-button'));
  await d.wait(tid('interview-table'), { timeout: 60_000 });
  const rows = async () => (await d.findAll(`${tid('interview-table')} tbody tr`)).length;
  // The list re-renders after each change (the search after a 250 ms pause); every step waits
  // until it shows what that change asked for, so no click lands on a row being replaced.
  const settles = async (ok, what) => {
    const end = Date.now() + 15_000;
    let n;
    while (!ok((n = await rows()))) {
      if (Date.now() > end) throw new Error(`the interview list did not show ${what} (rows: ${n})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return n;
  };
  assert.equal(await rows(), 24);
  await shot('demo-list-ko');
  // Hangul search through the vault's full-text index.
  await d.type(tid('search'), '교화소');
  await d.wait(`${tid('interview-table')} .snippet`, { text: '교화소' });
  const hits = await rows();
  assert.ok(hits > 0 && hits < 24, `search narrowed the list (${hits})`);
  // A blank search shows every interview again.
  await d.type(tid('search'), ' ');
  await d.wait(`${tid('interview-table')} .snippet`, { gone: true });
  await settles((n) => n === 24, 'all 24 interviews after the search was cleared');
  // Status filter.
  await d.click(`${tid('filter-status')} option[value=reviewed]`);
  const reviewed = await settles((n) => n < 24, 'fewer interviews when filtered to "reviewed"');
  assert.ok(reviewed > 0, 'the demo vault has reviewed interviews');
  // An interview opens with its answers; switch to English.
  await d.click(`${tid('filter-status')} option[value=""]`);
  await settles((n) => n === 24, 'all 24 interviews again');
  await d.click(tid('open-interview'));
  await d.wait(tid('field-ctx_setting'), { timeout: 30_000 });
  await d.click('header .lang-switch button[lang=en]');
  await d.wait(tid('nav-interviews'), { text: 'Interviews' });
  await shot('demo-interview-en');
});

// The processes under `pid` (children, grandchildren: WebKit may start its web process
// through a sandbox) whose name is `comm` (from /proc).
function children(pid, comm) {
  const parent = new Map();
  const name = new Map();
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      name.set(Number(p), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const under = (p) => {
    for (let q = parent.get(p); q; q = parent.get(q)) if (q === pid) return true;
    return false;
  };
  return [...name.keys()].filter((p) => name.get(p) === comm && under(p));
}
// Whether the CLI can open the vault now (it cannot while the app holds it open).
function cliOpens() {
  try {
    execFileSync(CLI, ['--vault', vault, 'search', '교화소'], { env: { ...process.env, TESTIMONY_PASSPHRASE: PASS }, stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

// Runs after the test above, with the vault unlocked and an interview on screen. WebDriver's
// session ends with the page, so what follows is seen from outside: the vault's lock and the
// processes.
test('a crashed page locks the vault and the app loads a new page', { timeout: 60_000 }, async () => {
  assert.ok(app.pid, 'the app process was found');
  const [page] = children(app.pid, 'WebKitWebProces');
  assert.ok(page, 'the web content process was found');
  assert.equal(cliOpens(), false, 'the unlocked app holds the vault');
  // Neither the app nor its page may leave a core dump (the page holds answers, the app the
  // key): both limits are 0, the web process's inherited from the app.
  for (const pid of [app.pid, page]) {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max core file size'));
    assert.match(line, /^Max core file size\s+0\s+0\s/, `core dumps off for ${pid}`);
  }
  // As the kernel's out-of-memory killer would (a SIGSEGV sent from outside is caught and
  // ignored by the web process's own handler).
  process.kill(page, 'SIGKILL');
  const end = Date.now() + 20_000;
  while (!cliOpens()) {
    if (Date.now() > end) assert.fail('the vault was not locked within 20 s of the page crash');
    await new Promise((r) => setTimeout(r, 250));
  }
  process.kill(app.pid, 0); // still running (throws if not)
  let fresh = [];
  while (!(fresh = children(app.pid, 'WebKitWebProces').filter((p) => p !== page)).length) {
    if (Date.now() > end) assert.fail('no new web content process: the page was not loaded again');
    await new Promise((r) => setTimeout(r, 250));
  }
});
