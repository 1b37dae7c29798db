import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Autosaver, overall, type SaveStatus } from '../../src/lib/autosave';
import { errorText } from '../../src/lib/errors';
import { answerKey, filterTerms, fromInput, instancesOf, missingIds, toInput } from '../../src/lib/form';
import { IdleTimer, isPanicShortcut } from '../../src/lib/idle';
import { filterInterviews } from '../../src/lib/list';
import { strength } from '../../src/lib/strength';
import type { GroupInstance, Interview, Question, Vocab } from '../../src/lib/types';

const q = (type: Question['type'], extra: Partial<Question> = {}): Question => ({
  id: 'q', section: 's', group: null, type, label: { en: 'Q', ko: '질문' }, help: null, required: false,
  vocab: null, show_if: null, min: null, max: null, unit: null, ...extra,
});

describe('passphrase strength', () => {
  it('orders passphrases sensibly', () => {
    expect(strength('')).toBe(0);
    expect(strength('abc')).toBe(0);
    expect(strength('aaaaaaaaaaaaaaaa')).toBeLessThanOrEqual(1);
    expect(strength('password12345')).toBeLessThanOrEqual(1);
    expect(strength('correct horse battery staple')).toBeGreaterThanOrEqual(3);
    expect(strength('나비 바다 연필 구름 사과')).toBeGreaterThanOrEqual(3);
    expect(strength('Tr0ub4dor&3 orange mountain river')).toBe(4);
  });
});

describe('form values', () => {
  it('converts stored values to inputs and back', () => {
    expect(toInput(q('number'), 12)).toBe('12');
    expect(fromInput(q('number'), ' 12,5 ')).toEqual({ kind: 'set', value: 12.5 });
    expect(fromInput(q('number'), 'twelve')).toEqual({ kind: 'error', key: 'form.not_a_number' });
    expect(fromInput(q('number'), '')).toEqual({ kind: 'clear' });
    expect(fromInput(q('text'), '  ')).toEqual({ kind: 'clear' });
    expect(fromInput(q('long_text'), ' 교화소에서 일했다 ')).toEqual({ kind: 'set', value: ' 교화소에서 일했다 ' });
    expect(fromInput(q('partial_date'), ' about 1998 ')).toEqual({ kind: 'set', value: 'about 1998' });
    expect(toInput(q('date_range'), { from: '1998' })).toEqual({ from: '1998', to: '' });
    expect(fromInput(q('date_range'), { from: '1998', to: '' })).toEqual({ kind: 'set', value: { from: '1998' } });
    expect(fromInput(q('date_range'), { from: '', to: '' })).toEqual({ kind: 'clear' });
    expect(fromInput(q('place'), { province: 'north_hamgyong', locality: ' Hoeryong ' })).toEqual({
      kind: 'set', value: { province: 'north_hamgyong', locality: 'Hoeryong' },
    });
    expect(fromInput(q('place'), { province: '', locality: '' })).toEqual({ kind: 'clear' });
    expect(toInput(q('multi_choice'), ['a', 3, 'b'])).toEqual(['a', 'b']);
    expect(fromInput(q('multi_choice'), [])).toEqual({ kind: 'clear' });
    expect(fromInput(q('yes_no'), 'yes')).toEqual({ kind: 'set', value: 'yes' });
    expect(fromInput(q('single_choice'), '')).toEqual({ kind: 'clear' });
  });

  it('filters vocabulary terms in both languages', () => {
    const v: Vocab = {
      id: 'facility_type', label: { en: 'Facility', ko: '시설' },
      terms: [
        { code: 'kyohwaso', label: { en: 'Kyohwaso (correctional labour camp)', ko: '교화소' }, help: null },
        { code: 'kwalliso', label: { en: 'Kwalliso (political prison camp)', ko: '관리소' }, help: null },
      ],
    };
    expect(filterTerms(v, '교화').map((t) => t.code)).toEqual(['kyohwaso']);
    expect(filterTerms(v, 'POLITICAL').map((t) => t.code)).toEqual(['kwalliso']);
    expect(filterTerms(v, '').length).toBe(2);
    expect(filterTerms(v, 'zzz')).toEqual([]);
  });

  it('lists live instances in order and reduces missing paths to ids', () => {
    const inst = (id: string, ordinal: number, deleted = false, parent: string | null = null): GroupInstance => ({
      id, device_id: 'd', created_at: '', updated_at: '', version: 1, interview_id: 'i', group_id: 'g', parent_id: parent, ordinal, deleted,
    });
    const list = [inst('b', 2), inst('a', 1), inst('c', 3, true), inst('d', 1, false, 'a')];
    expect(instancesOf(list, 'g', null).map((i) => i.id)).toEqual(['a', 'b']);
    expect(instancesOf(list, 'g', 'a').map((i) => i.id)).toEqual(['d']);
    expect(answerKey('q', null)).toBe('q');
    expect(answerKey('q', 'x')).toBe('q@x');
    expect([...missingIds(['ever_detained', 'detention_episode#2.det_facility_type', 'detention_episode'])].sort()).toEqual(
      ['det_facility_type', 'detention_episode', 'ever_detained'],
    );
  });
});

describe('autosave', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('debounces, keeps the latest value, and says saved only after the save resolved', async () => {
    const log: [string, SaveStatus][] = [];
    const saver = new Autosaver((k, s) => log.push([k, s]), 500);
    const saved: string[] = [];
    let release: () => void = () => {};
    const slow = (v: string) => () => new Promise<void>((r) => { release = () => { saved.push(v); r(); }; });
    saver.schedule('a', slow('1'));
    saver.schedule('a', slow('12'));
    expect(log.at(-1)).toEqual(['a', 'pending']);
    await vi.advanceTimersByTimeAsync(500);
    expect(log.at(-1)).toEqual(['a', 'saving']);
    expect(saver.busy()).toBe(true);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(saved).toEqual(['12']);
    expect(log.at(-1)).toEqual(['a', 'saved']);
    expect(saver.busy()).toBe(false);
  });

  it('reports errors and never "saved" for a failed save', async () => {
    const log: [string, SaveStatus][] = [];
    const saver = new Autosaver((k, s) => log.push([k, s]));
    await saver.now('b', () => Promise.reject({ code: 'invalid_answer', detail: 'expected a number' }));
    expect(log.map(([, s]) => s)).toEqual(['saving', 'error']);
  });

  it('flushAll saves what is waiting', async () => {
    const saver = new Autosaver(() => {}, 10_000);
    const saved: string[] = [];
    saver.schedule('x', async () => { saved.push('x'); });
    saver.schedule('y', async () => { saved.push('y'); });
    await saver.flushAll();
    expect(saved.sort()).toEqual(['x', 'y']);
  });

  it('overall status is saved only when every field is saved', () => {
    expect(overall([])).toBe('idle');
    expect(overall(['saved', 'saved'])).toBe('saved');
    expect(overall(['saved', 'pending'])).toBe('pending');
    expect(overall(['saved', 'saving', 'pending'])).toBe('saving');
    expect(overall(['saved', 'error', 'saving'])).toBe('error');
  });
});

describe('idle lock and panic shortcut', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('locks after the idle time, and activity postpones it', () => {
    let locked = 0;
    const timer = new IdleTimer(5, () => locked++);
    timer.start();
    vi.advanceTimersByTime(4 * 60_000);
    timer.activity();
    vi.advanceTimersByTime(4 * 60_000);
    expect(locked).toBe(0);
    vi.advanceTimersByTime(60_000 + 10);
    expect(locked).toBe(1);
    expect(timer.running()).toBe(false);
  });

  it('a shorter setting takes effect at once', () => {
    let locked = 0;
    const timer = new IdleTimer(30, () => locked++);
    timer.start();
    timer.setMinutes(1);
    vi.advanceTimersByTime(60_000 + 10);
    expect(locked).toBe(1);
  });

  it('recognises Ctrl+Shift+L only', () => {
    const k = (o: Partial<KeyboardEvent>) => ({ ctrlKey: false, shiftKey: false, altKey: false, metaKey: false, key: '', ...o });
    expect(isPanicShortcut(k({ ctrlKey: true, shiftKey: true, key: 'L' }))).toBe(true);
    expect(isPanicShortcut(k({ ctrlKey: true, shiftKey: true, key: 'ㅣ', code: 'KeyL' }))).toBe(true);
    expect(isPanicShortcut(k({ ctrlKey: true, key: 'l' }))).toBe(false);
    expect(isPanicShortcut(k({ ctrlKey: true, shiftKey: true, altKey: true, key: 'L' }))).toBe(false);
  });
});

describe('interview list', () => {
  const iv = (id: string, status: Interview['status'], code: string, started: string): Interview => ({
    id, device_id: 'd', created_at: started, updated_at: started, version: 1, witness_id: code, witness_code: code,
    interviewer: 'k', interpreter: null, languages: ['ko'], place: null, started_at: started, ended_at: null,
    codebook_id: 'c', codebook_version: '1', status,
  });
  const all = [iv('1', 'draft', 'W-1', '2026-01-02'), iv('2', 'complete', 'W-2', '2026-03-01'), iv('3', 'draft', 'W-2', '2025-12-31')];

  it('filters by status, witness and search hits, and sorts by date', () => {
    const base = { status: '', witness: '', sort: 'newest' as const, hits: null };
    expect(filterInterviews(all, base).map((i) => i.id)).toEqual(['2', '1', '3']);
    expect(filterInterviews(all, { ...base, sort: 'oldest' }).map((i) => i.id)).toEqual(['3', '1', '2']);
    expect(filterInterviews(all, { ...base, status: 'draft' }).map((i) => i.id)).toEqual(['1', '3']);
    expect(filterInterviews(all, { ...base, witness: 'W-2' }).map((i) => i.id)).toEqual(['2', '3']);
    const hits = [{ interview_id: '3', witness_code: 'W-2', record_id: 'r', kind: 'answer', snippet: '교화소' }];
    expect(filterInterviews(all, { ...base, hits }).map((i) => i.id)).toEqual(['3']);
    expect(filterInterviews(all, { ...base, hits: [] })).toEqual([]);
  });
});

describe('error messages', () => {
  it('translate the code and add only the core reason', () => {
    expect(errorText('en', { code: 'wrong_passphrase', detail: null })).toBe('Wrong passphrase.');
    expect(errorText('ko', { code: 'wrong_passphrase', detail: null })).toBe('암호문이 틀렸습니다.');
    expect(errorText('en', { code: 'not_found', detail: 'witness' })).toBe('Not found. (witness)');
    expect(errorText('en', { code: 'something_new', detail: null })).toBe('Something went wrong.');
    expect(errorText('en', { code: 'local', detail: 'form.not_a_number' })).toBe('Not a number.');
  });

  it('translate the core reason code with its parameters in both languages', () => {
    const above = { code: 'invalid_answer', detail: null, reason: { code: 'above_max', params: { value: 60, max: 50 } } };
    expect(errorText('en', above)).toBe('This answer is not valid. (60 is above the maximum 50.)');
    expect(errorText('ko', above)).toBe('올바른 답변이 아닙니다. (60은(는) 최댓값 50보다 큽니다.)');
    const day = { code: 'invalid_answer', detail: null, reason: { code: 'date_no_such_day' } };
    expect(errorText('ko', day)).toBe('올바른 답변이 아닙니다. (날짜가 아닙니다. 그 달에는 그런 날이 없습니다.)');
    const consent = { code: 'invalid', detail: null, reason: { code: 'transcribe_needs_audio' } };
    expect(errorText('ko', consent)).toBe('입력을 확인하십시오. (녹취에 동의하려면 녹음에도 동의해야 합니다.)');
    // Refusals of the form, search and transcript review: statuses and speakers are named.
    const status = { code: 'not_allowed', detail: null, reason: { code: 'status_transition', params: { from: 'draft', to: 'reviewed' } } };
    expect(errorText('en', status)).toBe('Not allowed. (An interview with status “Draft” cannot become “Reviewed”.)');
    expect(errorText('ko', status)).toBe('허용되지 않습니다. (상태가 ‘작성 중’인 면담은 ‘검토됨’ 상태로 바꿀 수 없습니다.)');
    const missing = { code: 'incomplete', detail: null, reason: { code: 'required_unanswered', params: { count: 2, questions: 'sc_knowledge, episode#1.facility' } } };
    expect(errorText('ko', missing)).toBe('아직 답하지 않은 필수 질문이 있습니다. (답하지 않은 필수 질문 2개: sc_knowledge, episode#1.facility)');
    const speakers = { code: 'invalid', detail: null, reason: { code: 'merge_different_speakers', params: { first: 'interviewer', second: 'witness' } } };
    expect(errorText('ko', speakers)).toBe('입력을 확인하십시오. (두 구간의 화자가 다릅니다(면담자, 증언자). 먼저 화자를 하나로 정하십시오.)');
    expect(errorText('en', speakers)).toBe('Please check the input. (The segments have different speakers (Interviewer and Witness): set one speaker first.)');
    const search = { code: 'invalid', detail: null, reason: { code: 'search_too_many_terms', params: { max_terms: 16, max_bytes: 1000 } } };
    expect(errorText('ko', search)).toBe('입력을 확인하십시오. (검색어는 16개 단어까지 쓸 수 있습니다.)');
    // A code this UI does not know yet (a newer backend) still says something specific.
    expect(errorText('en', { code: 'invalid_answer', detail: null, reason: { code: 'brand_new' } })).toBe('This answer is not valid. (brand_new)');
  });
});
