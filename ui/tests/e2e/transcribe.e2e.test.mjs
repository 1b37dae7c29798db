// The real app transcribing a recording offline with the real tiny.en model: a vault made by
// the CLI holds an interview with espeak-ng speech imported as its recording; in the app the
// interviewer chooses the model in Settings (found in TESTIMONY_MODELS), transcribes, sees the
// review open with the spoken words; afterwards the CLI finds the finished transcript.
// Needs TESTIMONY_WHISPER_MODELS (`./run test` builds the models); skipped with a note
// without it, unless CI or TESTIMONY_REQUIRE_WHISPER=1 asks for it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, SHOTS, startApp } from './harness.mjs';

const PASS = 'e2e transcription passphrase words';
const MODELS = process.env.TESTIMONY_WHISPER_MODELS;
const required = (process.env.CI && !['', '0', 'false'].includes(process.env.CI)) || process.env.TESTIMONY_REQUIRE_WHISPER === '1';
const have = MODELS && existsSync(join(MODELS, 'ggml-tiny.en.bin'));
if (!have && required) throw new Error('the app transcription test is required here but TESTIMONY_WHISPER_MODELS has no ggml-tiny.en.bin');
if (!have) console.error('\n*** SKIPPED: TESTIMONY_WHISPER_MODELS is not set: the app did NOT transcribe with a real model. ***\n');

const TRANSLATION = '경비원들이 해 뜨기 전에 우리를 광산으로 데려갔다.';
const ENGLISH = 'The guards took us to the mine before sunrise. We worked for twelve hours without food.';
let tmp, app, d, vault, recording;
const tid = (id) => `[data-testid="${id}"]`;
const cli = (args) => execFileSync(CLI, args, { env: { ...process.env, TESTIMONY_VAULT: vault, TESTIMONY_PASSPHRASE: PASS }, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();

before(async () => {
  if (!have) return;
  tmp = mkdtempSync(join(tmpdir(), 'testimony-tr-e2e-'));
  vault = join(tmp, 'vault');
  const clip = join(tmp, 'clip.wav');
  const wav = join(tmp, 'speech.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '150', '-w', clip, ENGLISH]);
  execFileSync('sox', [clip, '-r', '16000', '-b', '16', wav, 'pad', '0.5', '2']);
  cli(['init', '--interviewer', 'E2E Interviewer']);
  const witness = cli(['witness', 'add']);
  cli(['consent', 'set', witness, '--scopes', 'record_audio,transcribe', '--taken-by', 'E2E Interviewer']);
  const interview = cli(['interview', 'new', '--witness', witness]);
  recording = JSON.parse(cli(['--json', 'record', interview, '--from-wav', wav])).id;
  app = await startApp({
    XDG_CONFIG_HOME: join(tmp, 'config'), XDG_DATA_HOME: join(tmp, 'data'), TESTIMONY_VAULT: vault, TESTIMONY_MODELS: MODELS, TESTIMONY_PASSPHRASE: '',
  });
  d = app.d;
});
after(async () => {
  await app?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('an interviewer transcribes a recording in the app, offline, and the review opens', { skip: !have, timeout: 600_000 }, async () => {
  await d.wait(tid('unlock'), { timeout: 30_000 });
  await d.click('form[data-testid=unlock] button[lang=en]').catch(() => {});
  await d.type(tid('unlock-passphrase'), PASS);
  await d.click(tid('unlock-button'));
  await d.wait(tid('nav-interviews'), { timeout: 60_000 });
  await d.click('header .lang-switch button[lang=en]');
  // Settings: the models folder is the one named by TESTIMONY_MODELS; choose tiny.en, English.
  await d.click(tid('nav-settings'));
  await d.wait(tid('models-dir'), { text: MODELS });
  await d.click(`${tid('model-option')}[value="ggml-tiny.en.bin"]`);
  await d.wait(tid('transcribe-settings'), { text: 'Saved' });
  await d.click(tid('tr-lang-en'));
  // The interview's recording: Transcribe, progress, then the review with the words.
  await d.click(tid('nav-interviews'));
  await d.click(tid('open-interview'), { timeout: 30_000 });
  await d.click(`${tid('recordings')} summary`);
  await d.click(`${tid('transcribe-start')}:not([disabled])`);
  await d.wait(tid('transcribe-notice'), { text: 'Transcription finished', timeout: 480_000 });
  await d.wait(tid('segment-text'), { timeout: 30_000 });
  const text = (await d.exec(`return [...document.querySelectorAll('[data-testid="segment-text"]')].map((e) => e.value).join(' ')`)).toLowerCase();
  for (const w of ['guards', 'mine', 'sunrise']) assert.ok(text.includes(w), `${w} in the transcript`);
  // The translator writes a Korean translation beside the first segment; it is saved when the
  // field is left (the status says so only after the vault's commit returned).
  await d.type(`${tid('segment-translation')}`, TRANSLATION);
  await d.exec('document.activeElement?.blur?.();');
  await d.wait(`${tid('segment-translation')}[data-status="saved"]`, { timeout: 30_000 });
  await shot('transcript-review-en');
  await d.click('header .lang-switch button[lang=ko]');
  await d.wait(tid('nav-interviews'), { text: '면담' });
  // The notices on screen follow the switch too.
  await d.wait(tid('transcribe-notice'), { text: '녹취가 끝났습니다' });
  await shot('transcript-review-ko');
  await app.stop();
  app = null;
  // The vault holds it, finished, as the CLI sees it.
  const list = JSON.parse(cli(['--json', 'transcript', 'list', recording]));
  assert.equal(list.length, 1);
  assert.equal(list[0].status, 'done');
  assert.equal(list[0].model, 'ggml-tiny.en.bin');
  assert.ok(cli(['--json', 'transcript', 'show', list[0].id]).includes(TRANSLATION), 'the translation typed in the app is in the vault');
});

async function shot(name) {
  await d.exec('window.scrollTo(0, 0); document.activeElement?.blur?.();');
  await new Promise((r) => setTimeout(r, 500));
  writeFileSync(join(SHOTS, `${name}.png`), await d.screenshot());
}
