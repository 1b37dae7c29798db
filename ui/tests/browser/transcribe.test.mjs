// Transcribing a recording in the app: the models folder in Settings, the Transcribe action
// beside a recording, progress with time left, cancel and resume, the review opening when it
// is done. Chromium against ui/dist with the IPC mocked at the boundary (mock-backend.js), as
// app.test.mjs. The real pipeline is tested in src-tauri (cargo) with the real model.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const DIST = join(here, '../../dist');
const MOCK = join(here, 'mock-backend.js');
const PASS = 'river lantern copper meadow';

let browser, server, base;

before(async () => {
  server = await serve(DIST);
  base = `http://127.0.0.1:${server.address().port}/`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
after(async () => {
  await browser?.close();
  server?.close();
});

async function freshPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.addInitScript({ path: MOCK });
  await page.goto(base);
  return { page, context, errors };
}
const mock = (page) => page.evaluate(() => window.__mock);

/** A vault (English), a witness with consent (transcription or not), an interview with a
 * stopped five-minute recording; the interview is open with its recordings shown. */
async function interviewWithRecording(page, { transcribe = true } = {}) {
  await page.getByLabel('English').check();
  await page.getByTestId('interviewer').fill('Kim Field');
  await page.getByTestId('passphrase').fill(PASS);
  await page.getByTestId('confirm').fill(PASS);
  await page.getByTestId('understood').check();
  await page.getByTestId('create').click();
  await page.getByTestId('nav-witnesses').click();
  await page.getByTestId('new-witness').click();
  await page.getByTestId('birth-year').fill('1975');
  await page.getByTestId('create-witness').click();
  await page.getByTestId('created-pseudonym').waitFor();
  await page.getByTestId('scope-record_audio').check();
  if (transcribe) await page.getByTestId('scope-transcribe').check();
  await page.getByTestId('record-consent').click();
  await page.getByTestId('consent-status').waitFor();
  await page.getByTestId('nav-interviews').click();
  await page.getByTestId('new-interview').click();
  await page.getByTestId('new-interview-witness').selectOption('W-2026-0001');
  await page.getByTestId('start-interview').click();
  await page.getByTestId('field-bg_note').waitFor();
  await page.evaluate(() => { const m = window.__mock; m.addRecording(m.interviews[0].id, 300_000); });
  await openRecordings(page);
}

async function openRecordings(page) {
  await page.getByTestId('nav-interviews').click();
  await page.getByTestId('open-interview').click();
  await page.getByTestId('recordings').locator('summary').click();
  await page.getByTestId('transcribe-control').waitFor();
}

describe('Transcription in the app (mocked backend)', () => {
  it('no model: explained in Settings (both languages) and beside the recording; a copied model is found and chosen', async () => {
    const { page, context, errors } = await freshPage();
    await interviewWithRecording(page);
    // Beside the recording: the button cannot run and says why.
    const start = page.getByTestId('transcribe-start');
    assert.equal(await start.isDisabled(), true);
    assert.match(await page.getByTestId('transcribe-why').innerText(), /needs a model file: copy one into the models folder/);
    assert.equal(await start.getAttribute('aria-describedby'), await page.getByTestId('transcribe-why').getAttribute('id'));

    // Settings: where the folder is and what to do, in English and in Korean.
    await page.getByTestId('nav-settings').click();
    assert.equal(await page.getByTestId('models-dir').innerText(), '/tmp/mock/models');
    assert.match(await page.getByTestId('no-models').innerText(), /no model file in the models folder yet.*copy a whisper\.cpp model file/s);
    await page.getByRole('button', { name: '한국어', exact: true }).click();
    assert.match(await page.getByTestId('no-models').innerText(), /모델 폴더에 아직 모델 파일이 없습니다/);
    await page.getByRole('button', { name: 'English', exact: true }).click();

    // The user copies two files in: one good, one cut short. "Look again" lists both.
    await page.evaluate(() => {
      const m = window.__mock;
      m.modelFiles.push({ file: 'ggml-base.bin', size_name: 'base', multilingual: true, bytes: 147_951_465 });
      m.modelFiles.push({ file: 'ggml-tiny.en.bin', size_name: 'tiny', multilingual: false, bytes: 77_704_715 });
      m.invalidModels.push({ file: 'ggml-small.bin', error: { code: 'model_truncated', detail: 'ggml-small.bin: 1000 of 487601967 bytes' } });
    });
    await page.getByTestId('models-refresh').focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('model-option').first().waitFor();
    assert.equal(await page.getByTestId('no-models').count(), 0);
    assert.match(await page.getByTestId('transcribe-settings').innerText(), /ggml-base\.bin\s*base · Korean and English · 148 MB/);
    assert.match(await page.getByTestId('invalid-model').innerText(), /ggml-small\.bin: The model file is incomplete/);
    assert.match(await page.getByTestId('choose-model').innerText(), /Choose a transcription model/);
    // Chosen from the keyboard; saved at once.
    await page.getByTestId('model-option').first().focus();
    await page.keyboard.press('Space');
    await page.waitForFunction(() => window.__mock.transcribeSettings.model === 'ggml-base.bin');
    await page.getByTestId('tr-lang-ko').check();
    await page.waitForFunction(() => window.__mock.transcribeSettings.language === 'ko');
    assert.equal((await mock(page)).transcribeSettings.model, 'ggml-base.bin');
    // An English-only model with Korean is warned about.
    await page.getByTestId('model-option').nth(1).check();
    await page.getByTestId('ko-needs-multilingual').waitFor();
    await page.getByTestId('model-option').first().check();
    await page.waitForFunction(() => window.__mock.transcribeSettings.model === 'ggml-base.bin');

    // Back at the recording, Transcribe can run.
    await openRecordings(page);
    assert.equal(await page.getByTestId('transcribe-start').isDisabled(), false);
    assert.equal(await page.getByTestId('transcribe-why').count(), 0);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('transcribe: progress and time left while the app stays usable, cancel keeps the parts, Resume finishes, the review opens', async () => {
    const { page, context, errors } = await freshPage();
    await page.evaluate(() => {
      const m = window.__mock;
      m.modelFiles.push({ file: 'ggml-base.bin', size_name: 'base', multilingual: true, bytes: 147_951_465 });
      m.transcribeSettings = { model: 'ggml-base.bin', language: 'auto' };
      m.transcribeStep = 2;
    });
    await interviewWithRecording(page);
    await page.getByTestId('transcribe-start').click();
    await page.getByTestId('transcribe-percent').waitFor();
    await page.waitForFunction(() => /Transcribing: ([1-9]\d*) %/.test(document.querySelector('[data-testid="transcribe-percent"]')?.textContent ?? ''));
    assert.match(await page.getByTestId('transcribe-left').innerText(), /about \d+ min left/);
    const bar = Number(await page.getByTestId('transcribe-bar').getAttribute('value'));
    assert.ok(bar > 0 && bar < 100, `bar at ${bar}`);

    // The app stays usable: another screen, with the progress in the header; back through it.
    await page.getByTestId('nav-witnesses').click();
    const indicator = page.getByTestId('transcribe-indicator');
    await indicator.waitFor();
    assert.match(await indicator.innerText(), /Transcribing \d+ %/);
    await indicator.click();
    await page.getByTestId('field-bg_note').waitFor();
    // Recording goes on alongside.
    await page.getByTestId('rec-start').click();
    await page.getByTestId('rec-state').getByText('Recording', { exact: true }).waitFor();
    await page.getByTestId('rec-stop').click();
    await page.getByTestId('rec-start').waitFor();
    await page.getByTestId('recordings').evaluate((d) => { d.open = true; });
    await page.getByTestId('transcribe-progress').first().waitFor();

    // Cancel from the keyboard: the finished parts stay, Resume is offered.
    await page.getByTestId('transcribe-cancel').focus();
    await page.keyboard.press('Enter');
    const notice = page.getByTestId('transcribe-notice');
    await notice.waitFor();
    assert.match(await notice.innerText(), /Transcription cancelled\. The finished parts are kept/);
    let m = await mock(page);
    assert.equal(m.tjob.phase, 'cancelled');
    assert.equal(m.transcripts[0].status, 'running');
    const item = page.getByTestId('recording-item').first();
    await item.getByText('Resume transcription').waitFor();
    assert.equal(await page.getByTestId('transcribe-error').count(), 0, 'a cancel is not an error');

    // Resume runs to the end; the review opens with the segments.
    await page.evaluate(() => { window.__mock.transcribeStep = 30; });
    await item.getByTestId('transcribe-start').click();
    await page.getByText('Transcription finished.', { exact: false }).waitFor({ timeout: 10_000 });
    const rows = page.getByTestId('segment');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 2);
    assert.equal(await page.getByTestId('segment-text').first().inputValue(), 'The guards took us to the mine.');
    m = await mock(page);
    assert.equal(m.transcribeStarts, 2);
    assert.equal(m.transcripts.length, 1, 'resumed, not started again');
    assert.equal(m.transcripts[0].status, 'done');
    // Finished: no Transcribe button any more; the review is the way on.
    assert.equal(await item.getByTestId('transcribe-start').count(), 0);
    assert.equal(await page.getByTestId('transcribe-indicator').count(), 0);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('a transcription that finishes while another screen is shown is offered in the header', async () => {
    const { page, context, errors } = await freshPage();
    await page.evaluate(() => {
      const m = window.__mock;
      m.modelFiles.push({ file: 'ggml-base.bin', size_name: 'base', multilingual: true, bytes: 147_951_465 });
      m.transcribeSettings = { model: 'ggml-base.bin', language: 'auto' };
      m.transcribeStep = 10;
    });
    await interviewWithRecording(page);
    await page.getByTestId('transcribe-start').click();
    await page.getByTestId('transcribe-progress').waitFor();
    await page.getByTestId('nav-export').click();
    const ready = page.getByTestId('transcribe-finished');
    await ready.waitFor({ timeout: 15_000 });
    assert.match(await ready.innerText(), /Transcript ready/);
    assert.equal(await page.getByTestId('transcribe-indicator').count(), 0);
    await ready.click();
    await page.getByTestId('field-bg_note').waitFor();
    assert.equal(await ready.count(), 0);
    await page.getByTestId('recordings').locator('summary').click();
    await page.getByTestId('open-transcript').click();
    await page.getByTestId('segment').first().waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('transcribe: refused without the witness consent, with the reason; locking stops a running one', async () => {
    const { page, context, errors } = await freshPage();
    await page.evaluate(() => {
      const m = window.__mock;
      m.modelFiles.push({ file: 'ggml-base.bin', size_name: 'base', multilingual: true, bytes: 147_951_465 });
      m.transcribeSettings = { model: 'ggml-base.bin', language: 'auto' };
      m.transcribeStep = 1;
    });
    await interviewWithRecording(page, { transcribe: false });
    await page.getByTestId('transcribe-start').click();
    assert.match(await page.getByTestId('transcribe-error').innerText(), /has not agreed to transcription/);
    assert.equal((await mock(page)).transcripts.length, 0);
    // Korean too.
    await page.getByRole('button', { name: '한국어', exact: true }).click();
    assert.match(await page.getByTestId('transcribe-error').innerText(), /동의하지 않았거나/);
    await page.getByRole('button', { name: 'English', exact: true }).click();

    // With consent: running, then the panic lock stops it and clears every screen.
    await page.getByTestId('nav-witnesses').click();
    await page.getByTestId('witness-item').first().click();
    await page.getByTestId('scope-transcribe').check();
    await page.getByTestId('record-consent').click();
    await page.waitForFunction(() => Object.values(window.__mock.consents)[0].scopes.transcribe === true);
    await openRecordings(page);
    await page.getByTestId('transcribe-start').click();
    await page.getByTestId('transcribe-progress').waitFor();
    await page.keyboard.press('Control+Shift+L');
    await page.getByTestId('unlock').waitFor();
    const m = await mock(page);
    assert.equal(m.unlocked, false);
    assert.equal(m.tjob.phase, 'cancelled');
    assert.equal(m.tjob.locked, true);
    // Unlocked: nothing runs by itself; Resume is offered.
    await page.getByTestId('unlock-passphrase').fill(PASS);
    await page.keyboard.press('Enter');
    await page.getByTestId('nav-interviews').waitFor();
    await openRecordings(page);
    await page.getByTestId('recording-item').first().getByText('Resume transcription').waitFor();
    assert.equal(await page.getByTestId('transcribe-indicator').count(), 0);
    assert.equal((await mock(page)).transcribeStarts, 1);
    assert.deepEqual(errors, []);
    await context.close();
  });
});
