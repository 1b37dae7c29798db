// UI flows in Debian's Chromium against the built UI (ui/dist), with the Tauri IPC replaced
// by mock-backend.js at the boundary. Run: npm run build && node --test tests/browser/
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

async function createVault(page) {
  await page.getByLabel('English').check();
  await page.getByTestId('interviewer').fill('Kim Field');
  await page.getByTestId('passphrase').fill(PASS);
  await page.getByTestId('confirm').fill(PASS);
  await page.getByTestId('understood').check();
  await page.getByTestId('create').click();
  await page.getByTestId('nav-interviews').waitFor();
}

async function witnessWithConsent(page, { audio = true } = {}) {
  await page.getByTestId('nav-witnesses').click();
  await page.getByTestId('new-witness').click();
  await page.getByTestId('birth-year').fill('1975');
  await page.getByTestId('create-witness').click();
  await page.getByTestId('created-pseudonym').waitFor();
  if (audio) await page.getByTestId('scope-record_audio').check();
  await page.getByTestId('scope-share_archive').check();
  await page.getByTestId('record-consent').click();
  await page.getByTestId('consent-status').waitFor();
}

async function newInterview(page) {
  await page.getByTestId('nav-interviews').click();
  await page.getByTestId('new-interview').click();
  await page.getByTestId('new-interview-witness').selectOption('W-2026-0001');
  await page.getByTestId('start-interview').click();
  await page.getByTestId('field-bg_note').waitFor();
}

describe('Testimony UI (mocked backend)', () => {
  it('first run: strength meter, irrecoverable warning, create vault', async () => {
    const { page, context, errors } = await freshPage();
    await page.getByTestId('first-run').waitFor();
    // Korean by default.
    assert.match(await page.locator('h1').innerText(), /보관함 만들기/);
    await page.getByLabel('English').check();
    assert.match(await page.locator('h1').innerText(), /Create your vault/);
    assert.match(await page.getByRole('note').innerText(), /cannot be recovered/);
    await page.getByTestId('passphrase').fill('short');
    assert.equal(await page.getByTestId('strength').innerText(), 'Too weak');
    await page.getByTestId('passphrase').fill(PASS);
    assert.notEqual(await page.getByTestId('strength').innerText(), 'Too weak');
    await page.getByTestId('interviewer').fill('Kim Field');
    await page.getByTestId('confirm').fill(PASS + 'x');
    await page.getByText('The two passphrases differ.').waitFor();
    await page.getByTestId('confirm').fill(PASS);
    assert.equal(await page.getByTestId('create').isDisabled(), true, 'needs the warning acknowledged');
    await page.getByTestId('understood').check();
    await page.getByTestId('create').click();
    await page.getByTestId('nav-interviews').waitFor();
    const m = await mock(page);
    assert.equal(m.exists, true);
    assert.equal(m.interviewer, 'Kim Field');
    assert.deepEqual(m.settings, { language: 'en', idle_minutes: 5 });
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('first run: the core refusing a weak passphrase is shown without the passphrase', async () => {
    const { page, context } = await freshPage();
    await page.getByLabel('English').check();
    await page.getByTestId('interviewer').fill('Kim');
    await page.getByTestId('passphrase').fill('abcdefg');
    await page.getByTestId('confirm').fill('abcdefg');
    await page.getByTestId('understood').check();
    await page.getByTestId('create').click();
    const msg = await page.getByTestId('error').innerText();
    assert.match(msg, /too weak\. \(Use at least 10 characters/);
    assert.doesNotMatch(msg, /abcdefg/);
    // The core's reason is a code: it is said in Korean too, with its parameter.
    await page.getByLabel('한국어').check();
    assert.match(await page.getByTestId('error').innerText(), /암호문이 너무 약합니다\. \(10자 이상 쓰십시오/);
    await context.close();
  });

  it('witness with pseudonym, identity panel apart, consent with scope rules, withdrawal', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await page.getByTestId('nav-witnesses').click();
    await page.getByTestId('new-witness').click();
    await page.getByTestId('birth-year').fill('1975');
    await page.getByTestId('create-witness').click();
    assert.match(await page.getByTestId('created-pseudonym').innerText(), /W-2026-0001/);
    // The read-aloud script in both languages.
    assert.match(await page.getByTestId('script-ko').innerText(), /참여는 선생님의 선택/);
    assert.match(await page.getByTestId('script-en').innerText(), /Taking part is your choice/);
    // Transcription without recording is refused (a core rule), and said so.
    await page.getByTestId('scope-transcribe').check();
    await page.getByTestId('record-consent').click();
    assert.match(await page.getByTestId('consent-error').innerText(), /Consent to transcription needs consent to audio recording/);
    await page.getByTestId('scope-record_audio').check();
    await page.getByTestId('scope-share_archive').check();
    await page.getByTestId('record-consent').click();
    assert.match(await page.getByTestId('consent-status').innerText(), /Consent taken by Kim Field/);
    let m = await mock(page);
    assert.deepEqual(Object.values(m.consents)[0].scopes, { record_audio: true, transcribe: true, share_archive: true, quote_anonymously: false, publish_identified: false });
    // Identity is not fetched until asked for.
    assert.equal(m.calls.includes('get_identity'), false);
    await page.getByTestId('show-identity').click();
    await page.getByTestId('real-name').fill('홍길동');
    await page.getByTestId('save-identity').click();
    await page.getByTestId('identity-panel').getByText('Saved', { exact: true }).waitFor();
    await page.getByTestId('hide-identity').click();
    assert.equal(await page.getByText('홍길동').count(), 0);
    m = await mock(page);
    assert.equal(Object.values(m.identities)[0].real_name, '홍길동');
    // Withdrawal asks first.
    await page.getByTestId('withdraw').click();
    await page.getByTestId('confirm-withdraw').click();
    await page.getByTestId('consent-status').getByText('Consent withdrawn').waitFor();
    assert.ok(Object.values((await mock(page)).consents)[0].withdrawn_at);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('interview: autosave, live skip logic, validation, repeatable group, searchable picker', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await page.getByTestId('nav-interviews').click();
    await page.getByTestId('new-interview').click();
    await page.getByTestId('new-interview-witness').selectOption('W-2026-0001');
    await page.getByTestId('start-interview').click();
    await page.getByTestId('field-bg_note').waitFor();
    // Detention is skipped until ever_detained is yes; so is the follow-up question.
    assert.equal(await page.getByTestId('section-detention').isDisabled(), true);
    assert.equal(await page.getByTestId('field-detained_times').count(), 0);
    // Typed answer: saved after the pause, and "Saved" only after the command returned.
    await page.getByTestId('field-bg_note').locator('input').fill('교화소 출신 광부');
    await page.getByTestId('field-bg_note').getByText('Saved', { exact: true }).waitFor();
    assert.equal(await page.getByTestId('save-indicator').innerText(), 'Saved');
    await page.getByTestId('ever_detained-yes').check();
    await page.getByTestId('field-detained_times').waitFor();
    assert.equal(await page.getByTestId('section-detention').isDisabled(), false);
    // Validation: not a number (UI), above the maximum (core's reason), then valid.
    const times = page.getByTestId('field-detained_times').locator('input');
    await times.fill('abc');
    await times.blur();
    await page.getByTestId('field-detained_times').getByText('Not a number.').waitFor();
    assert.equal(await page.getByTestId('save-indicator').innerText(), 'Not saved');
    await times.fill('99');
    await times.blur();
    await page.getByTestId('field-detained_times').getByText(/not valid\. \(99 is above the maximum 50\.\)/).waitFor();
    // The same reason in Korean, with its numbers filled in.
    await page.getByRole('button', { name: '한국어' }).click();
    await page.getByTestId('field-detained_times').getByText('올바른 답변이 아닙니다. (99은(는) 최댓값 50보다 큽니다.)').waitFor();
    await page.getByRole('button', { name: 'English' }).click();
    await times.fill('3');
    await times.blur();
    await page.getByTestId('field-detained_times').getByText('Saved', { exact: true }).waitFor();
    // Repeatable group: two episodes, a picker filtered in Korean, remove one.
    await page.getByTestId('section-detention').click();
    await page.getByTestId('add-detention_episode').click();
    await page.getByTestId('instance-detention_episode').first().waitFor();
    await page.getByTestId('filter-facility_type').first().fill('교화');
    assert.equal(await page.getByTestId('instance-detention_episode').first().locator('[data-testid^=opt-]').count(), 1);
    await page.getByTestId('opt-kyohwaso').first().check();
    await page.getByTestId('field-det_facility_type').first().getByText('Saved', { exact: true }).waitFor();
    // Both languages are shown for each choice.
    assert.match(await page.getByTestId('field-det_facility_type').first().innerText(), /Kyohwaso[\s\S]*교화소/);
    await page.getByTestId('add-detention_episode').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=instance-detention_episode]').length === 2);
    await page.getByTestId('field-det_start').nth(1).locator('input').fill('about 1998');
    await page.getByTestId('field-det_start').nth(1).locator('input').blur();
    await page.getByTestId('field-det_start').nth(1).getByText('Saved', { exact: true }).waitFor();
    await page.getByTestId('remove-instance').first().click();
    await page.getByTestId('confirm-remove-instance').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=instance-detention_episode]').length === 1);
    // Keyboard: the next section by keyboard only.
    await page.getByTestId('next-section').focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('field-cl_anything_else').waitFor();
    // Completing with required questions left: the core's reason (codebook paths), in both languages.
    await page.getByTestId('complete').click();
    await page.getByTestId('form-error').getByText(/^Required questions are still unanswered\. \(\d+ unanswered: detention_episode#\d\.det_facility_type\)$/).waitFor();
    await page.getByRole('button', { name: '한국어' }).click();
    await page.getByTestId('form-error').getByText(/^아직 답하지 않은 필수 질문이 있습니다\. \(답하지 않은 필수 질문 \d+개: /).waitFor();
    await page.getByRole('button', { name: 'English' }).click();
    const m = await mock(page);
    const byQ = Object.fromEntries(m.answers.map((a) => [a.question_id, a.value]));
    assert.equal(byQ.bg_note, '교화소 출신 광부');
    assert.equal(byQ.ever_detained, 'yes');
    assert.equal(byQ.detained_times, 3);
    assert.equal(byQ.det_facility_type, 'kyohwaso');
    assert.equal(byQ.det_start, 'about 1998');
    assert.equal(m.instances.filter((i) => !i.deleted).length, 1);
    // The list finds the interview by a Hangul search.
    await page.getByTestId('back').click();
    await page.getByTestId('search').fill('광부');
    await page.getByText('교화소 출신 광부').waitFor();
    await page.getByTestId('search').fill('없는말');
    await page.getByTestId('empty').waitFor();
    // A search of too many words is refused with the core's code, said in Korean.
    await page.getByRole('button', { name: '한국어' }).click();
    await page.getByTestId('search').fill(Array.from({ length: 17 }, (_, n) => `w${n}`).join(' '));
    await page.getByRole('alert').getByText('입력을 확인하십시오. (검색어는 16개 단어까지 쓸 수 있습니다.)').waitFor();
    await page.getByRole('button', { name: 'English' }).click();
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('panic lock clears every screen; unlock needs the right passphrase', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    assert.equal(await page.getByText('W-2026-0001').count() > 0, true);
    await page.keyboard.press('Control+Shift+L');
    await page.getByTestId('unlock').waitFor();
    assert.equal((await mock(page)).unlocked, false, 'the backend was told to lock');
    assert.equal(await page.getByText('W-2026-0001').count(), 0, 'nothing of the previous screen remains');
    await page.getByTestId('unlock-passphrase').fill('not the passphrase');
    await page.getByTestId('unlock-button').click();
    assert.equal(await page.getByTestId('error').innerText(), 'Wrong passphrase.');
    assert.equal(await page.getByTestId('unlock-passphrase').inputValue(), '', 'a wrong passphrase is not kept in the field');
    await page.getByTestId('unlock-passphrase').fill(PASS);
    await page.keyboard.press('Enter');
    await page.getByTestId('nav-interviews').waitFor();
    // The lock button does the same.
    await page.getByTestId('panic-lock').click();
    await page.getByTestId('unlock').waitFor();
    assert.equal((await mock(page)).unlocked, false);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('locks by itself after the idle time', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.clock.install();
    await page.addInitScript({ path: MOCK });
    await page.goto(base);
    await createVault(page);
    await page.clock.fastForward('04:00');
    assert.equal(await page.getByTestId('unlock').count(), 0);
    await page.clock.fastForward('01:30');
    await page.getByTestId('unlock').waitFor();
    assert.match(await page.getByTestId('lock-notice').innerText(), /without activity/);
    assert.equal((await mock(page)).unlocked, false);
    await context.close();
  });

  it('language switch changes every string and is remembered', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    assert.equal(await page.getByTestId('nav-interviews').innerText(), 'Interviews');
    await page.getByRole('button', { name: '한국어' }).click();
    assert.equal(await page.getByTestId('nav-interviews').innerText(), '면담');
    assert.equal(await page.getByTestId('nav-witnesses').innerText(), '증언자');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'ko');
    assert.equal((await mock(page)).settings.language, 'ko');
    await page.getByTestId('nav-settings').click();
    await page.getByTestId('lang-en').check();
    assert.equal(await page.getByTestId('nav-settings').innerText(), 'Settings');
    assert.equal((await mock(page)).settings.language, 'en');
    // No English left on a Korean screen but names and codes.
    await page.getByRole('button', { name: '한국어' }).click();
    const text = await page.locator('main').innerText();
    assert.doesNotMatch(text.replace(/English|Ctrl\+Shift\+L|Testimony|age1…|\/media\/usb/g, ''), /\b(the|and|Save|Lock)\b/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('export: saved recipient, destination, report of exported and withheld', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await page.getByTestId('new-witness').click();
    await page.getByTestId('create-witness').click();
    await page.getByTestId('created-pseudonym').getByText('W-2026-0002').waitFor();
    await page.getByTestId('nav-export').click();
    await page.getByTestId('destination').fill('relative/path');
    await page.getByTestId('recipient').fill('age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq');
    await page.getByTestId('export').click();
    assert.equal(await page.getByTestId('error').innerText(), 'Choose an existing folder (full path).');
    await page.getByTestId('destination').fill('/media/usb');
    await page.getByTestId('export').click();
    await page.getByTestId('export-report').waitFor();
    assert.match(await page.getByTestId('withheld-count').innerText(), /1 records of 1 witnesses withheld/);
    assert.ok((await mock(page)).recipient.startsWith('age1'));
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('recording: start, level and clock, markers tied to the question on screen, pause, resume, stop', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await newInterview(page);
    const panel = page.getByTestId('recording-panel');
    await page.getByTestId('rec-start').click();
    await page.getByTestId('rec-state').getByText('Recording', { exact: true }).waitFor();
    // The clock runs and the meter shows the input (the mock's level is -20 dBFS: 67 %).
    await page.getByTestId('rec-elapsed').getByText('0:01').waitFor();
    assert.equal(await page.getByTestId('rec-level').getAttribute('value'), '67');
    assert.equal(await page.getByTestId('rec-level-word').innerText(), 'Good level');
    // A marker from the keyboard while typing an answer: tied to that question.
    await page.getByTestId('field-bg_note').locator('input').fill('광부');
    await page.keyboard.press('Control+m');
    await page.getByTestId('rec-marker-added').getByText(/Marker at 0:0\d: Occupation/).waitFor();
    // Pause: the clock stops; resume: it goes on.
    await page.getByTestId('rec-pause').click();
    await page.getByTestId('rec-state').getByText('Paused').waitFor();
    const paused = await page.getByTestId('rec-elapsed').innerText();
    await page.waitForTimeout(1300);
    assert.equal(await page.getByTestId('rec-elapsed').innerText(), paused, 'the clock stands still while paused');
    assert.equal((await mock(page)).active.paused, true);
    await page.getByTestId('rec-resume').click();
    await page.getByTestId('rec-state').getByText('Recording', { exact: true }).waitFor();
    // Recording goes on in another section: the marker button ties it to that section's
    // first question on screen.
    await page.getByTestId('section-closing').click();
    await page.getByTestId('field-cl_anything_else').waitFor();
    await page.getByTestId('rec-marker').click();
    await page.getByTestId('rec-marker-added').getByText(/Anything else\?/).waitFor();
    assert.equal(await page.getByTestId('rec-marker-count').innerText(), 'Markers: 2');
    // …and on other screens: the header shows it and leads back.
    await page.getByTestId('back').click();
    await page.getByTestId('rec-indicator').click();
    await page.getByTestId('rec-state').getByText('Recording', { exact: true }).waitFor();
    assert.equal(await panel.getAttribute('data-state'), 'recording');
    await page.getByTestId('rec-stop').click();
    await page.getByTestId('rec-start').waitFor();
    assert.equal(await page.getByTestId('rec-indicator').count(), 0);
    const m = await mock(page);
    assert.equal(m.active, null);
    assert.equal(m.recordings.length, 1);
    assert.ok(m.recordings[0].duration_ms >= 1000);
    assert.deepEqual(m.markers.map((x) => x.question_id), ['bg_note', 'cl_anything_else']);
    assert.deepEqual(m.markers.map((x) => x.label), ['Occupation', 'Anything else?']);
    assert.ok(m.markers[0].at_ms < m.markers[1].at_ms);
    // The list under the panel shows it with its markers.
    await page.getByTestId('recordings').locator('summary').click();
    assert.match(await page.getByTestId('recording-item').innerText(), /Markers: 2/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('recording: refused without audio consent (pointing to consent), and without a microphone', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page, { audio: false });
    await newInterview(page);
    await page.getByTestId('rec-start').click();
    assert.match(await page.getByTestId('rec-error').innerText(), /has not agreed to audio recording/);
    assert.equal((await mock(page)).active, null);
    await page.getByTestId('rec-consent-link').click();
    await page.getByTestId('new-witness').waitFor();
    // With consent but no input device: a clear message, nothing recorded.
    await page.getByText('W-2026-0001').first().click();
    await page.getByTestId('scope-record_audio').check();
    await page.getByTestId('record-consent').click();
    await page.evaluate(() => { window.__mock.audioDevice = false; });
    await page.getByTestId('nav-interviews').click();
    await page.getByTestId('open-interview').click();
    await page.getByTestId('rec-start').click();
    assert.match(await page.getByTestId('rec-error').innerText(), /No microphone was found/);
    assert.equal(await page.getByTestId('rec-consent-link').count(), 0);
    assert.equal((await mock(page)).recordings.length, 0);
    // Korean too.
    await page.getByRole('button', { name: '한국어' }).click();
    assert.match(await page.getByTestId('rec-error').innerText(), /마이크를 찾지 못했습니다/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('locking while recording stops the recording first', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await newInterview(page);
    await page.getByTestId('rec-start').click();
    await page.getByTestId('rec-elapsed').getByText('0:01').waitFor();
    await page.keyboard.press('Control+Shift+L');
    await page.getByTestId('unlock').waitFor();
    const m = await mock(page);
    assert.equal(m.active, null);
    assert.equal(m.recordings.length, 1, 'the recording was stopped and kept');
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('playback: windows read from the vault, seek by keyboard, jump to a marker', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await newInterview(page);
    await page.evaluate(() => {
      const m = window.__mock;
      m.addRecording(m.interviews[0].id, 3 * 60 * 60 * 1000, [
        { at_ms: 95_000, question_id: 'ever_detained', label: 'Were you ever detained?' },
        { at_ms: 2 * 60 * 60 * 1000 + 5_000, question_id: null, label: 'Marker' },
      ]);
    });
    // Reopen the interview so that the list is read again.
    await page.getByTestId('back').click();
    await page.getByTestId('open-interview').click();
    await page.getByTestId('recordings').locator('summary').click();
    assert.match(await page.getByTestId('recording-duration').innerText(), /^3:00:00$/);
    await page.getByTestId('open-player').click();
    assert.equal(await page.getByTestId('play-position').innerText(), '0:00 / 3:00:00');
    // Seek by keyboard: one second per arrow key.
    await page.getByTestId('seek').focus();
    for (let k = 0; k < 5; k++) await page.keyboard.press('ArrowRight');
    assert.match(await page.getByTestId('play-position').innerText(), /^0:05 \//);
    assert.equal((await mock(page)).windows.length, 0, 'nothing is read before playing');
    // Jump to a marker: playback starts there, reading a few seconds at a time.
    await page.getByTestId('jump-marker').nth(1).click();
    await page.waitForFunction(() => window.__mock.windows.length >= 2);
    const w = (await mock(page)).windows;
    assert.equal(w[0].from_ms, 2 * 60 * 60 * 1000 + 5_000);
    assert.ok(w.every((x) => x.to_ms - x.from_ms <= 4000), 'small windows, never the whole recording');
    assert.equal(w[1].from_ms, w[0].to_ms, 'windows follow each other without a gap');
    assert.ok(w.length <= 3, `only a little is read ahead (${w.length} windows)`);
    assert.match(await page.getByTestId('play-position').innerText(), /^2:00:0\d \//);
    assert.equal(await page.getByTestId('play-toggle').innerText(), 'Pause');
    await page.getByTestId('play-toggle').click();
    assert.equal(await page.getByTestId('play-toggle').innerText(), 'Play');
    // The first marker: its question is kept with it.
    assert.equal(await page.getByTestId('jump-marker').first().getAttribute('data-question'), 'ever_detained');
    await page.getByTestId('jump-marker').first().click();
    await page.waitForFunction(() => window.__mock.windows.some((x) => x.from_ms === 95_000));
    assert.match(await page.getByTestId('play-position').innerText(), /^1:3\d \//);
    // Speed: Alt+S (focus in the player) or the button cycles 1× → 0.75× → 0.5× → 1×, and the
    // audio is scheduled at that rate (each Web Audio source's playbackRate is watched).
    await page.evaluate(() => {
      window.__rates = [];
      const start = AudioBufferSourceNode.prototype.start;
      AudioBufferSourceNode.prototype.start = function (...a) { window.__rates.push(this.playbackRate.value); return start.apply(this, a); };
    });
    assert.equal(await page.getByTestId('play-speed').innerText(), 'Speed: 1×');
    await page.keyboard.press('Alt+KeyS');
    await page.getByTestId('play-speed').filter({ hasText: 'Speed: 0.75×' }).waitFor();
    await page.waitForFunction(() => window.__rates.includes(0.75));
    await page.keyboard.press('Alt+KeyS');
    await page.waitForFunction(() => window.__rates.includes(0.5));
    assert.equal(await page.getByTestId('play-speed').innerText(), 'Speed: 0.5×');
    await page.getByTestId('play-speed').click();
    await page.getByTestId('play-speed').filter({ hasText: 'Speed: 1×' }).waitFor();
    await page.getByRole('button', { name: '한국어' }).click();
    await page.getByTestId('play-speed').filter({ hasText: '속도: 1×' }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('transcript review: open, edit text, add a translation, speaker, mark reviewed, keyboard navigation and replay, export', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await newInterview(page);
    await page.evaluate(() => {
      const m = window.__mock;
      const r = m.addRecording(m.interviews[0].id, 10_000);
      // Out of time order on purpose: the screen shows them in time order.
      m.addTranscript(r, [
        { start_ms: 6000, end_ms: 8000, text: '셋째 구간' },
        { start_ms: 0, end_ms: 2000, text: '첫째 구간' },
        { start_ms: 3000, end_ms: 5000, text: '둘째 구간' },
      ]);
    });
    await page.getByTestId('back').click();
    await page.getByTestId('open-interview').click();
    await page.getByTestId('recordings').locator('summary').click();
    await page.getByTestId('open-transcript').click();
    const rows = page.getByTestId('segment');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 3);
    assert.deepEqual(await page.getByTestId('segment-text').evaluateAll((els) => els.map((e) => e.value)), ['첫째 구간', '둘째 구간', '셋째 구간']);
    assert.match(await rows.nth(1).innerText(), /0:03\.0–0:05\.0/);
    const seg = (k) => page.evaluate((k) => [...window.__mock.segments].sort((a, b) => a.start_ms - b.start_ms)[k], k);

    // Edit the original: saved only once the command returned.
    await page.getByTestId('segment-text').first().fill('첫째 구간입니다');
    await page.getByTestId('segment-text').first().press('Tab');
    await page.locator('[data-testid="segment-text"][data-status="saved"]').first().waitFor();
    assert.equal((await seg(0)).text, '첫째 구간입니다');
    assert.equal((await seg(0)).machine_text, '첫째 구간', 'the machine text stays');
    await page.getByTestId('segment-machine').first().waitFor();
    // A refused edit says so and is not shown as saved.
    await page.getByTestId('segment-text').nth(2).fill('   ');
    await page.getByTestId('segment-text').nth(2).press('Tab');
    await page.locator('[data-testid="segment-text"][data-status="error"]').waitFor();
    assert.match(await page.getByTestId('transcript-error').innerText(), /segment text is empty/);
    assert.equal((await seg(2)).text, '셋째 구간');

    // Translation beside it (English for a Korean original).
    await page.getByTestId('segment-translation').nth(1).fill('This is the second stretch');
    await page.getByTestId('segment-translation').nth(1).press('Tab');
    await page.locator('[data-testid="segment-translation"][data-status="saved"]').waitFor();
    assert.equal((await seg(1)).translation, 'This is the second stretch');
    assert.equal((await seg(1)).translation_language, 'en');

    // Speaker and reviewed.
    await page.getByTestId('segment-speaker').first().selectOption('witness');
    await page.waitForFunction(() => window.__mock.segments.some((x) => x.speaker === 'witness'));
    await page.getByTestId('segment-reviewed').first().check();
    await page.waitForFunction(() => window.__mock.segments.filter((x) => x.reviewed).length === 1);
    assert.equal((await seg(0)).reviewed, true);
    assert.match(await page.getByTestId('reviewed-count').innerText(), /Reviewed: 1 of 3/);

    // Keyboard: Enter on a segment plays that stretch, highlighted.
    await rows.first().focus();
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__mock.windows.some((x) => x.from_ms === 0));
    assert.equal(await rows.first().getAttribute('data-playing'), 'true');
    assert.ok((await mock(page)).windows.every((x) => x.to_ms <= 2000), 'only the segment is read');
    // Alt+↓: the next segment plays and is highlighted.
    await page.keyboard.press('Alt+ArrowDown');
    await page.waitForFunction(() => window.__mock.windows.some((x) => x.from_ms === 3000));
    assert.equal(await rows.nth(1).getAttribute('data-playing'), 'true');
    assert.equal(await rows.first().getAttribute('data-playing'), 'false');
    assert.equal(await rows.nth(1).evaluate((e) => e === document.activeElement), true);
    // Alt+R replays it; Alt+K marks it reviewed; Alt+↑ goes back.
    await page.keyboard.press('Alt+KeyR');
    await page.waitForFunction(() => window.__mock.windows.filter((x) => x.from_ms === 3000).length >= 2);
    await page.keyboard.press('Alt+KeyK');
    await page.waitForFunction(() => window.__mock.segments.filter((x) => x.reviewed).length === 2);
    assert.equal((await seg(1)).reviewed, true);
    assert.equal(await page.getByTestId('segment-reviewed').nth(1).isChecked(), true);
    await page.keyboard.press('Alt+ArrowUp');
    await page.waitForFunction(() => window.__mock.windows.filter((x) => x.from_ms === 0).length >= 2);
    assert.equal(await rows.first().getAttribute('data-playing'), 'true');
    // Alt+S slows playback down (and cycles back): the segment is read again from where it is.
    assert.match(await page.getByTestId('speed').innerText(), /1×/);
    await page.keyboard.press('Alt+KeyS');
    await page.waitForFunction(() => document.querySelector('[data-testid="speed"]')?.textContent?.includes('0.75×'));
    await page.keyboard.press('Alt+KeyS');
    await page.waitForFunction(() => document.querySelector('[data-testid="speed"]')?.textContent?.includes('0.5×'));
    await page.getByTestId('speed').click();
    await page.waitForFunction(() => document.querySelector('[data-testid="speed"]')?.textContent?.includes('1×'));
    // Clicking a time plays that segment.
    await page.getByTestId('segment-play').nth(2).click();
    await page.waitForFunction(() => window.__mock.windows.some((x) => x.from_ms === 6000));
    assert.equal(await rows.nth(2).getAttribute('data-playing'), 'true');
    // Every change went to the backend's history.
    const actions = (await mock(page)).segmentHistory.map((h) => h.action);
    assert.deepEqual(actions, ['edit', 'translate', 'speaker', 'review', 'review']);

    // History: every version with who and what.
    await page.getByTestId('segment-history').first().click();
    const hist = page.getByTestId('history-entry');
    await hist.first().waitFor();
    assert.deepEqual(await hist.evaluateAll((els) => els.map((e) => e.dataset.action)), ['create', 'edit', 'speaker', 'review']);
    assert.match(await hist.nth(1).innerText(), /Kim Field · text corrected/);
    // Split at the cursor, then merge back.
    const text0 = page.getByTestId('segment-text').first();
    await text0.click();
    await text0.evaluate((e) => { e.setSelectionRange(2, 2); });
    await text0.press('ArrowRight');
    await text0.press('ArrowLeft');
    await page.getByTestId('segment-split').first().click();
    await page.waitForFunction(() => window.__mock.segments.length === 4);
    assert.equal(await rows.count(), 4);
    assert.deepEqual(await page.getByTestId('segment-text').evaluateAll((els) => els.slice(0, 2).map((e) => e.value)), ['첫째', '구간입니다']);
    await page.getByTestId('segment-merge').first().click();
    await page.waitForFunction(() => window.__mock.segments.length === 3);
    assert.equal(await rows.count(), 3);
    assert.equal(await page.getByTestId('segment-text').first().inputValue(), '첫째 구간입니다');
    // Split with the cursor at the very start is explained, not sent.
    await text0.evaluate((e) => { e.setSelectionRange(0, 0); });
    await text0.press('End');
    await text0.press('Home');
    await page.getByTestId('segment-split').first().click();
    assert.match(await page.getByTestId('transcript-error').innerText(), /Put the cursor/);
    assert.equal((await mock(page)).segments.length, 3);

    // Redaction: "Hide" without a selection is explained; select "구간" (characters 3–5 of
    // '첫째 구간입니다'), hide it as a place; it is listed and can be shown again.
    await page.getByTestId('segment-redact').first().click();
    assert.match(await page.getByTestId('transcript-error').innerText(), /Select the words to hide first/);
    await page.getByTestId('redact-label').first().selectOption('place');
    // Selected with the keyboard as a translator would: Home, three right, then Shift+Right twice.
    await text0.focus();
    await text0.press('Home');
    for (let k = 0; k < 3; k++) await text0.press('ArrowRight');
    await text0.press('Shift+ArrowRight');
    await text0.press('Shift+ArrowRight');
    await page.getByTestId('segment-redact').first().click();
    const first = () => window.__mock.segments.find((x) => x.text === '첫째 구간입니다');
    await page.waitForFunction(`(${first})().redactions?.length === 1`);
    const red = (await mock(page)).segments.find((x) => x.text === '첫째 구간입니다').redactions[0];
    assert.deepEqual([red.field, red.start, red.end, red.label], ['text', 3, 5, 'place']);
    assert.match(await page.getByTestId('redaction').first().innerText(), /\[place\] “구간”/);
    await page.getByTestId('redaction-remove').first().click();
    await page.waitForFunction(`(${first})().redactions.length === 0`);
    assert.equal(await page.getByTestId('redaction').count(), 0);
    await text0.focus();
    await text0.press('Home');
    await text0.press('Shift+ArrowRight');
    await text0.press('Shift+ArrowRight');
    await page.getByTestId('segment-redact').first().click();
    await page.waitForFunction(`(${first})().redactions.length === 1`);

    // Export: the plaintext warning, then a file in the folder named.
    await page.getByTestId('transcript-export').locator('summary').click();
    assert.match(await page.getByTestId('transcript-export').innerText(), /NOT encrypted/);
    await page.getByTestId('transcript-destination').fill('/media/usb');
    await page.getByTestId('transcript-export-run').click();
    await page.getByTestId('transcript-exported').waitFor();
    assert.deepEqual((await mock(page)).transcriptExports[0].format, 'bilingual');
    assert.equal((await mock(page)).transcriptExports[0].redact, true);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('transcript: a recording without one says how transcripts arrive', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await newInterview(page);
    await page.evaluate(() => { const m = window.__mock; m.addRecording(m.interviews[0].id, 5_000); });
    await page.getByTestId('back').click();
    await page.getByTestId('open-interview').click();
    await page.getByTestId('recordings').locator('summary').click();
    await page.getByTestId('open-transcript').click();
    assert.match(await page.getByTestId('no-transcript').innerText(), /testimony transcribe/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('export: progress bar while it runs, cancel leaves nothing, the next export completes', async () => {
    const { page, context, errors } = await freshPage();
    await createVault(page);
    await witnessWithConsent(page);
    await page.evaluate(() => { window.__mock.exportSteps = 40; });
    await page.getByTestId('nav-export').click();
    await page.getByTestId('recipient').fill('age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq');
    await page.getByTestId('destination').fill('/media/usb');
    await page.getByTestId('export').click();
    // The bar follows the progress the backend sends.
    await page.getByTestId('export-progress').getByText('Writing the encrypted bundle').waitFor();
    const v = Number(await page.getByTestId('export-bar').getAttribute('value'));
    assert.ok(v > 30 && v < 100, `progress shown (${v} %)`);
    assert.match(await page.getByTestId('export-percent').innerText(), /^\d+ %$/);
    // Cancel from the keyboard.
    await page.getByTestId('export-cancel').focus();
    await page.keyboard.press('Enter');
    await page.getByTestId('export-cancelled').waitFor();
    assert.match(await page.getByTestId('export-cancelled').innerText(), /No bundle was written/);
    assert.equal(await page.getByTestId('export-progress').count(), 0);
    assert.equal(await page.getByTestId('export-report').count(), 0);
    assert.equal(await page.getByTestId('error').count(), 0, 'a cancel is not shown as an error');
    assert.equal((await mock(page)).exportsCancelled, 1);
    // Again, to the end: the report replaces the notice.
    await page.getByTestId('export').click();
    await page.getByTestId('export-report').waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('export-cancelled').count(), 0);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('the idle lock waits while audio is being recorded, not while it is paused', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.clock.install();
    await page.addInitScript({ path: MOCK });
    await page.goto(base);
    await createVault(page);
    await witnessWithConsent(page);
    await newInterview(page);
    await page.getByTestId('rec-start').click();
    await page.getByTestId('rec-state').getByText('Recording', { exact: true }).waitFor();
    // Twelve minutes without a key press (the idle time is five): still open, still recording.
    await page.clock.fastForward('12:00');
    await page.getByTestId('rec-state').getByText('Recording', { exact: true }).waitFor();
    assert.equal(await page.getByTestId('unlock').count(), 0);
    assert.equal((await mock(page)).unlocked, true);
    // Paused, the idle time runs out: the recording is stopped and kept, the vault locked.
    await page.getByTestId('rec-pause').click();
    await page.clock.fastForward('05:30');
    await page.getByTestId('unlock').waitFor();
    const m = await mock(page);
    assert.equal(m.unlocked, false);
    assert.equal(m.active, null);
    assert.equal(m.recordings.length, 1);
    await context.close();
  });
});
