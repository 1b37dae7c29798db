// An in-memory stand-in for the Tauri backend, injected before the UI loads (Playwright
// addInitScript). It answers the same commands with the same shapes and error codes, and
// applies the few rules the flows exercise (passphrase floor, consent scope dependencies,
// skip logic, vocabulary and range checks) so the UI's handling of them can be tested. The
// real rules are the core's; the real app is tested end to end separately.
(() => {
  const fixture = {
    id: 'test', version: '1', title: { en: 'Test codebook', ko: '시험 코드북' }, description: null,
    vocabs: [
      { id: 'facility_type', label: { en: 'Facility type', ko: '시설 유형' }, terms: [
        { code: 'kyohwaso', label: { en: 'Kyohwaso (correctional labour camp)', ko: '교화소' }, help: null },
        { code: 'kwalliso', label: { en: 'Kwalliso (political prison camp)', ko: '관리소' }, help: null },
        { code: 'jipkyulso', label: { en: 'Jipkyulso (holding centre)', ko: '집결소' }, help: null },
        { code: 'rodong_danryeondae', label: { en: 'Labour training camp', ko: '노동단련대' }, help: null },
        { code: 'guryujang', label: { en: 'Police detention centre', ko: '구류장' }, help: null },
        { code: 'kuryujang_bowibu', label: { en: 'State security detention centre', ko: '보위부 구류장' }, help: null },
        { code: 'other', label: { en: 'Other', ko: '기타' }, help: null },
      ] },
      { id: 'province', label: { en: 'Province', ko: '도' }, terms: [
        { code: 'north_hamgyong', label: { en: 'North Hamgyong', ko: '함경북도' }, help: null },
        { code: 'ryanggang', label: { en: 'Ryanggang', ko: '량강도' }, help: null },
      ] },
    ],
    sections: [
      { id: 'background', title: { en: 'Background', ko: '배경' }, help: null, show_if: null },
      { id: 'detention', title: { en: 'Detention', ko: '구금' }, help: null, show_if: "ever_detained == 'yes'" },
      { id: 'closing', title: { en: 'Closing', ko: '마무리' }, help: null, show_if: null },
    ],
    questions: [
      { id: 'bg_note', section: 'background', group: null, type: 'text', label: { en: 'Occupation', ko: '직업' }, help: null, required: true, vocab: null, show_if: null, min: null, max: null, unit: null },
      { id: 'ever_detained', section: 'background', group: null, type: 'yes_no', label: { en: 'Were you ever detained?', ko: '구금된 적이 있습니까?' }, help: null, required: true, vocab: null, show_if: null, min: null, max: null, unit: null },
      { id: 'detained_times', section: 'background', group: null, type: 'number', label: { en: 'How many times?', ko: '몇 번입니까?' }, help: null, required: false, vocab: null, show_if: "ever_detained == 'yes'", min: 1, max: 50, unit: { en: 'times', ko: '번' } },
      { id: 'detention_episode', section: 'detention', group: null, type: 'group', label: { en: 'Detention episode', ko: '구금 사례' }, help: null, required: true, vocab: null, show_if: null, min: null, max: null, unit: null },
      { id: 'det_facility_type', section: 'detention', group: 'detention_episode', type: 'single_choice', label: { en: 'Type of facility', ko: '시설 유형' }, help: null, required: true, vocab: 'facility_type', show_if: null, min: null, max: null, unit: null },
      { id: 'det_start', section: 'detention', group: 'detention_episode', type: 'partial_date', label: { en: 'Start', ko: '시작' }, help: null, required: false, vocab: null, show_if: null, min: null, max: null, unit: null },
      { id: 'cl_anything_else', section: 'closing', group: null, type: 'long_text', label: { en: 'Anything else?', ko: '더 하실 말씀?' }, help: null, required: false, vocab: null, show_if: null, min: null, max: null, unit: null },
    ],
  };

  const S = {
    exists: false, unlocked: false, passphrase: null, interviewer: null, recipient: null,
    settings: { language: 'ko', idle_minutes: 5 },
    witnesses: [], identities: {}, consents: {}, interviews: [], instances: [], answers: [], notes: [],
    calls: [], n: 0,
    // Audio: the recording in progress, stopped recordings, markers, playback reads. Tests
    // may set audioDevice = false (no microphone).
    audioDevice: true, active: null, recordings: [], markers: [], windows: [],
  };
  window.__mock = S;
  const callbacks = new Map();
  let nextCallback = 0;
  const now = () => new Date().toISOString();
  const id = () => `id-${++S.n}`;
  const meta = () => ({ id: id(), device_id: 'dev', created_at: now(), updated_at: now(), version: 1 });
  const fail = (code, detail = null) => { throw { code, detail }; };
  // The core's refusals of typed input come as a reason code with parameters (reason.rs).
  const refuse = (code, reason, params) => { throw { code, detail: null, reason: params ? { code: reason, params } : { code: reason } }; };
  const need = () => { if (!S.unlocked) fail('locked'); };
  const witness = (w) => S.witnesses.find((x) => x.code === w || x.id === w) || fail('not_found', 'witness');
  const q = (qid) => fixture.questions.find((x) => x.id === qid) || fail('not_found', 'question');

  function lookup(name, ctx) {
    const a = S.answers.find((x) => x.question_id === name && (x.instance_id ?? null) === (q(name).group ? ctx : null));
    return a ? a.value : undefined;
  }
  function evalIf(expr, ctx) {
    if (!expr) return true;
    const m = expr.match(/^(\w+) == '(\w+)'$/);
    return lookup(m[1], ctx) === m[2];
  }
  function form(iid) {
    const detail = {
      interview: S.interviews.find((i) => i.id === iid) || fail('not_found', 'interview'),
      instances: S.instances.filter((i) => i.interview_id === iid),
      answers: S.answers.filter((a) => a.interview_id === iid),
      notes: S.notes.filter((n) => n.interview_id === iid),
      attachments: [],
    };
    const sections = fixture.sections.filter((s) => evalIf(s.show_if, null)).map((s) => s.id);
    const visible = [];
    const missing = [];
    const live = detail.instances.filter((i) => !i.deleted);
    for (const qq of fixture.questions) {
      if (!sections.includes(qq.section)) continue;
      if (!qq.group) {
        if (evalIf(qq.show_if, null)) {
          visible.push(qq.id);
          if (qq.required && qq.type !== 'group' && lookup(qq.id, null) === undefined) missing.push(qq.id);
          if (qq.required && qq.type === 'group' && !live.some((i) => i.group_id === qq.id)) missing.push(qq.id);
        }
      } else {
        for (const inst of live.filter((i) => i.group_id === qq.group)) {
          if (evalIf(qq.show_if, inst.id)) {
            visible.push(`${qq.id}@${inst.id}`);
            if (qq.required && !S.answers.some((a) => a.instance_id === inst.id && a.question_id === qq.id)) missing.push(`${qq.group}#${inst.ordinal}.${qq.id}`);
          }
        }
      }
    }
    return JSON.parse(JSON.stringify({ detail, visible, sections, missing_required: missing }));
  }
  function validate(qq, v) {
    if (qq.type === 'number') {
      if (typeof v !== 'number') refuse('invalid_answer', 'not_a_number');
      if (qq.max !== null && v > qq.max) refuse('invalid_answer', 'above_max', { value: v, max: qq.max });
      if (qq.min !== null && v < qq.min) refuse('invalid_answer', 'below_min', { value: v, min: qq.min });
    }
    if (qq.type === 'single_choice') {
      const voc = fixture.vocabs.find((x) => x.id === qq.vocab);
      if (!voc.terms.some((t) => t.code === v)) refuse('invalid_answer', 'not_in_vocabulary', { vocab: voc.id, codes: voc.terms.map((t) => t.code).join(', ') });
    }
    if (qq.type === 'partial_date' && !/^((about|before|after) )?\d{4}(-\d{2}(-\d{2})?)?$/.test(v)) refuse('invalid_answer', 'date_shape');
  }

  // The recorder's clock: real time while not paused.
  function tickRec() {
    const a = S.active;
    if (!a) return;
    const t = Date.now();
    if (!a.paused) a.elapsed_ms += t - a.last;
    a.last = t;
  }
  function recState() {
    tickRec();
    const a = S.active;
    if (!a) return null;
    return { recording_id: a.recording_id, interview_id: a.interview_id, sample_rate: 48000, elapsed_ms: a.elapsed_ms,
      saved_ms: Math.floor(a.elapsed_ms / 1000) * 1000, paused: a.paused, running: true, failed: false,
      level: a.paused ? { rms: 0, peak: 0 } : { rms: 0.1, peak: 0.3 } };
  }
  function recording(over) {
    return { ...meta(), interview_id: '', started_at: now(), stopped_at: now(), sample_rate: 48000, channels: 1, format: 'pcm16-zstd',
      status: 'stopped', samples: 0, duration_ms: 0, chunks: 0, audio_sha256: 'ab', recovered: false, ...over };
  }
  // Test helper: a finished transcript of a recording with segments [{start_ms, end_ms, text}].
  S.transcripts = [];
  S.segments = [];
  S.segmentHistory = [];
  S.addTranscript = (recording_id, segs) => {
    const r = S.recordings.find((x) => x.id === recording_id);
    const tr = { ...meta(), recording_id, interview_id: r.interview_id, model: 'ggml-base', language: 'ko', window_ms: 30000,
      status: 'done', windows_done: 1, windows_total: 1 };
    S.transcripts.push(tr);
    segs.forEach((x, k) => S.segments.push({ ...meta(), transcript_id: tr.id, interview_id: r.interview_id, seq: k, language: 'ko',
      confidence: null, machine_text: x.text, translation: null, translation_language: null, speaker: null, reviewed: false,
      redactions: [], ...x }));
    return tr.id;
  };
  const segment = (sid) => S.segments.find((x) => x.id === sid) || fail('not_found', 'transcript segment');
  // As the core: every change bumps the version and is kept in the history.
  const change = (sid, action, f) => {
    need();
    const s = segment(sid);
    f(s);
    s.version += 1;
    s.updated_at = now();
    S.segmentHistory.push({ segment_id: sid, action });
    return s;
  };
  // Test helper: a stopped recording of `ms` with markers [{at_ms, question_id, label}].
  S.addRecording = (interview_id, ms, markers = []) => {
    const r = recording({ interview_id, duration_ms: ms, samples: ms * 48, chunks: Math.ceil(ms / 1000) });
    S.recordings.push(r);
    for (const m of markers) S.markers.push({ ...meta(), recording_id: r.id, ...m });
    return r.id;
  };

  // Transcription in the background (src-tauri transcribe.rs). Tests put model files in the
  // folder (S.modelFiles, S.invalidModels) as a user copying them in would; each status poll
  // advances a running transcription by S.transcribeStep percent.
  S.modelFiles = [];
  S.invalidModels = [];
  S.transcribeSettings = { model: null, language: 'auto' };
  S.tjob = null;
  S.transcribeStep = 10;
  const tActive = () => S.tjob && (S.tjob.phase === 'loading' || S.tjob.phase === 'running');
  const modelsInfo = () => ({
    dir: '/tmp/mock/models', models: S.modelFiles.map((m) => ({ ...m })), invalid: S.invalidModels.map((m) => ({ ...m })),
    chosen: S.transcribeSettings.model, chosen_ok: S.modelFiles.some((m) => m.file === S.transcribeSettings.model),
    language: S.transcribeSettings.language,
  });
  const tState = () => { const { stop, ...st } = S.tjob; return st; };
  function tAdvance() {
    const j = S.tjob;
    if (!j || !tActive()) return;
    const tr = S.transcripts.find((x) => x.id === j.transcript_id);
    if (j.stop) { j.phase = 'cancelled'; return; }
    j.phase = 'running';
    j.percent = Math.min(100, (j.percent ?? 0) + S.transcribeStep);
    j.windows_done = Math.max(j.windows_done, Math.floor(j.percent / 25));
    tr.windows_done = j.windows_done;
    j.eta_seconds = Math.round((100 - j.percent) * 3);
    if (j.percent >= 100) {
      j.phase = 'done';
      tr.status = 'done';
      tr.windows_total = 4;
      const r = S.recordings.find((x) => x.id === j.recording_id);
      [['The guards took us to the mine.', 0], ['We worked for twelve hours.', 3000]].forEach(([text, at], k) =>
        S.segments.push({ ...meta(), transcript_id: tr.id, interview_id: r.interview_id, seq: k, start_ms: at, end_ms: at + 2500, text,
          machine_text: text, language: 'en', confidence: 0.9, translation: null, translation_language: null, speaker: null, reviewed: false, redactions: [] }));
    }
  }

  const handlers = {
    transcribe_models: () => modelsInfo(),
    transcribe_settings: ({ model, language }) => {
      if (!['auto', 'ko', 'en'].includes(language)) fail('invalid', 'the spoken language must be auto, ko or en');
      S.transcribeSettings = { model, language };
      return modelsInfo();
    },
    transcribe_start: ({ recording_id }) => {
      need();
      if (tActive()) fail('transcription_active');
      const r = S.recordings.find((x) => x.id === recording_id) || fail('not_found', 'recording');
      const i = S.interviews.find((x) => x.id === r.interview_id);
      const c = S.consents[i.witness_id];
      if (!c || !c.scopes.transcribe || c.withdrawn_at) fail('no_transcribe_consent');
      let tr = S.transcripts.find((x) => x.recording_id === recording_id && x.status === 'running');
      if (!tr) {
        const m = S.transcribeSettings.model || fail('no_model');
        if (!S.modelFiles.some((x) => x.file === m)) fail('model_missing', m);
        tr = { ...meta(), recording_id, interview_id: r.interview_id, model: m, language: S.transcribeSettings.language === 'auto' ? null : S.transcribeSettings.language,
          window_ms: 300000, status: 'running', windows_done: 0, windows_total: null };
        S.transcripts.push(tr);
      }
      S.tjob = { recording_id, interview_id: r.interview_id, transcript_id: tr.id, model: tr.model, language: tr.language, resumed: tr.windows_done > 0,
        phase: 'loading', percent: tr.windows_done * 25, eta_seconds: null, windows_done: tr.windows_done, windows_total: 4, locked: false, error: null, stop: false };
      S.transcribeStarts = (S.transcribeStarts ?? 0) + 1;
      return tState();
    },
    transcribe_status: () => { tAdvance(); return S.tjob ? tState() : null; },
    transcribe_cancel: () => { if (!S.tjob) return null; S.tjob.stop = true; return tState(); },
    app_info: () => ({ vault_dir: '/tmp/mock', vault_exists: S.exists, unlocked: S.unlocked, demo: false, global_panic: false }),
    get_settings: () => ({ ...S.settings }),
    save_settings: ({ settings }) => { S.settings = { ...settings }; },
    passphrase_check: ({ passphrase }) => { if ([...passphrase].length < 10) refuse('weak_passphrase', 'passphrase_too_short', { min: 10 }); },
    create_vault: ({ passphrase, interviewer }) => {
      if (S.exists) fail('already_exists');
      if ([...passphrase].length < 10) refuse('weak_passphrase', 'passphrase_too_short', { min: 10 });
      if (!interviewer.trim()) fail('invalid', 'an interviewer profile name is required');
      Object.assign(S, { exists: true, unlocked: true, passphrase, interviewer: interviewer.trim() });
    },
    unlock: ({ passphrase }) => { if (passphrase !== S.passphrase) fail('wrong_passphrase'); S.unlocked = true; },
    // As the backend: a recording in progress is stopped (its audio kept) before the vault
    // closes; a transcription is stopped (its finished parts kept) and not waited for.
    lock: () => {
      if (S.active) handlers.recording_stop();
      if (tActive()) Object.assign(S.tjob, { phase: 'cancelled', locked: true });
      S.unlocked = false;
    },
    heartbeat: () => S.unlocked,
    change_passphrase: (a) => { need(); if (a.old !== S.passphrase) fail('wrong_passphrase'); S.passphrase = a.new; },
    vault_info: () => { need(); return { interviewer: S.interviewer, device_id: 'dev', device_key: 'ab'.repeat(32), fingerprint: 'abab abab abab abab', recipient: S.recipient }; },
    set_recipient: ({ recipient }) => { need(); if (recipient && !recipient.startsWith('age1')) refuse('invalid', 'not_a_recipient', { recipient }); S.recipient = recipient; },
    list_witnesses: () => { need(); return S.witnesses.map((w) => ({ witness: w, consent: S.consents[w.id] ?? null, has_identity: !!S.identities[w.id] })); },
    create_witness: ({ profile }) => {
      need();
      if (profile.birth_year != null && (profile.birth_year < 1900 || profile.birth_year > 2026)) refuse('invalid', 'birth_year_range', { min: 1900, max: 2026 });
      const w = { ...meta(), code: `W-2026-${String(S.witnesses.length + 1).padStart(4, '0')}`, ...profile };
      S.witnesses.push(w);
      return w;
    },
    get_identity: ({ witness: w }) => { need(); return S.identities[witness(w).id] ?? null; },
    set_identity: ({ witness: w, identity }) => { need(); S.identities[witness(w).id] = identity; },
    set_consent: ({ witness: w, scopes, method }) => {
      need();
      if (scopes.transcribe && !scopes.record_audio) refuse('invalid', 'transcribe_needs_audio');
      if (scopes.publish_identified && !scopes.share_archive) refuse('invalid', 'publish_needs_share');
      const ww = witness(w);
      const c = { ...meta(), witness_id: ww.id, scopes, taken_by: S.interviewer, taken_at: now(), method, withdrawn_at: null };
      S.consents[ww.id] = c;
      return c;
    },
    withdraw_consent: ({ witness: w }) => {
      need();
      const c = S.consents[witness(w).id] || fail('not_found', 'consent for witness');
      if (c.withdrawn_at) refuse('invalid', 'consent_already_withdrawn', { witness: w });
      c.withdrawn_at = now();
      return c;
    },
    get_codebook: () => { need(); return fixture; },
    list_interviews: ({ status, witness: w }) => { need(); return S.interviews.filter((i) => (!status || i.status === status) && (!w || i.witness_code === w)); },
    search: ({ query }) => {
      need();
      const terms = query.split(/\s+/).filter(Boolean).map((t) => t.toLowerCase());
      // As the core: codes, never the query.
      if (terms.length === 0) refuse('invalid', 'search_empty');
      if (terms.length > 16 || query.length > 1000) refuse('invalid', 'search_too_many_terms', { max_terms: 16, max_bytes: 1000 });
      return S.answers
        .filter((a) => typeof a.value === 'string' && terms.every((t) => a.value.toLowerCase().includes(t)))
        .map((a) => ({ interview_id: a.interview_id, witness_code: S.interviews.find((i) => i.id === a.interview_id).witness_code, record_id: a.id, kind: 'answer', snippet: a.value }));
    },
    new_interview: ({ args }) => {
      need();
      const w = witness(args.witness);
      if (!args.languages.length) refuse('invalid', 'no_language');
      const i = { ...meta(), witness_id: w.id, witness_code: w.code, interviewer: S.interviewer, interpreter: args.interpreter, languages: args.languages,
        place: args.place, started_at: now(), ended_at: null, codebook_id: 'test', codebook_version: '1', status: 'draft' };
      S.interviews.push(i);
      return i;
    },
    interview_form: ({ interview_id }) => { need(); return form(interview_id); },
    set_answer: ({ interview_id, instance_id, question_id, value }) => {
      need();
      const qq = q(question_id);
      validate(qq, value);
      if (qq.group && !S.instances.some((i) => i.id === instance_id && !i.deleted)) fail('invalid', 'say which instance');
      const existing = S.answers.find((a) => a.interview_id === interview_id && a.question_id === question_id && (a.instance_id ?? null) === (instance_id ?? null));
      if (existing) { existing.value = value; existing.version++; } else S.answers.push({ ...meta(), interview_id, instance_id: instance_id ?? null, question_id, value });
      return form(interview_id);
    },
    clear_answer: ({ interview_id, instance_id, question_id }) => {
      need();
      S.answers = S.answers.filter((a) => !(a.interview_id === interview_id && a.question_id === question_id && (a.instance_id ?? null) === (instance_id ?? null)));
      return form(interview_id);
    },
    add_group_instance: ({ interview_id, group_id, parent_id }) => {
      need();
      const ordinal = S.instances.filter((i) => i.interview_id === interview_id && i.group_id === group_id).length + 1;
      S.instances.push({ ...meta(), interview_id, group_id, parent_id: parent_id ?? null, ordinal, deleted: false });
      return form(interview_id);
    },
    remove_group_instance: ({ interview_id, instance_id }) => {
      need();
      const inst = S.instances.find((i) => i.id === instance_id) || fail('not_found');
      inst.deleted = true;
      return form(interview_id);
    },
    add_note: ({ interview_id, question_id, instance_id, text }) => {
      need();
      const n = { ...meta(), interview_id, question_id, instance_id, text };
      S.notes.push(n);
      return n;
    },
    set_interview_status: ({ interview_id, action }) => {
      need();
      const i = S.interviews.find((x) => x.id === interview_id);
      if (action === 'complete') {
        const f = form(interview_id);
        if (f.missing_required.length) refuse('incomplete', 'required_unanswered', { count: f.missing_required.length, questions: f.missing_required.join(', ') });
        i.status = 'complete';
      } else i.status = action === 'review' ? 'reviewed' : 'draft';
      return i;
    },
    close_window: () => {},
    export_cancel: () => { S.exportCancel = true; },
    recording_start: ({ interview_id }) => {
      need();
      if (S.active) fail('recording_active');
      const i = S.interviews.find((x) => x.id === interview_id) || fail('not_found', 'interview');
      const c = S.consents[i.witness_id];
      if (!c || !c.scopes.record_audio || c.withdrawn_at) fail('no_audio_consent');
      if (!S.audioDevice) fail('no_audio_device', 'no audio input device found (is a microphone connected and allowed?)');
      S.active = { recording_id: id(), interview_id, elapsed_ms: 0, paused: false, last: Date.now(), started_at: now() };
      return recState();
    },
    recording_status: () => recState(),
    recording_pause: ({ paused }) => { if (!S.active) fail('not_recording'); tickRec(); S.active.paused = paused; return recState(); },
    recording_stop: () => {
      need();
      if (!S.active) fail('not_recording');
      tickRec();
      const a = S.active;
      S.active = null;
      const r = recording({ id: a.recording_id, interview_id: a.interview_id, started_at: a.started_at, duration_ms: a.elapsed_ms,
        samples: a.elapsed_ms * 48, chunks: Math.ceil(a.elapsed_ms / 1000) });
      S.recordings.push(r);
      return r;
    },
    recording_marker: ({ recording_id, question_id, label }) => {
      need();
      if (!S.active || S.active.recording_id !== recording_id) fail('not_recording');
      if (question_id) q(question_id);
      tickRec();
      const m = { ...meta(), recording_id, at_ms: S.active.elapsed_ms, question_id, label };
      S.markers.push(m);
      return m;
    },
    list_recordings: ({ interview_id }) => {
      need();
      const live = S.active && S.active.interview_id === interview_id
        ? [recording({ id: S.active.recording_id, interview_id, status: 'recording', stopped_at: null, duration_ms: recState().saved_ms })] : [];
      return [...S.recordings.filter((r) => r.interview_id === interview_id), ...live]
        .map((r) => ({ recording: r, markers: S.markers.filter((m) => m.recording_id === r.id).sort((a, b) => a.at_ms - b.at_ms) }));
    },
    list_transcripts: ({ recording_id }) => { need(); return S.transcripts.filter((x) => x.recording_id === recording_id); },
    transcript_segments: ({ transcript_id }) => {
      need();
      return S.segments.filter((x) => x.transcript_id === transcript_id).sort((a, b) => a.start_ms - b.start_ms || a.seq - b.seq);
    },
    segment_edit_text: ({ segment_id, text }) => {
      if (!text.trim()) fail('invalid', 'segment text is empty');
      return change(segment_id, 'edit', (s) => { s.text = text; });
    },
    segment_set_translation: ({ segment_id, text, language }) => {
      if (!text.trim()) return change(segment_id, 'clear_translation', (s) => { s.translation = null; s.translation_language = null; });
      return change(segment_id, 'translate', (s) => { s.translation = text; s.translation_language = language; });
    },
    segment_set_speaker: ({ segment_id, speaker }) => change(segment_id, 'speaker', (s) => { s.speaker = speaker; }),
    segment_set_reviewed: ({ segment_id, reviewed }) => change(segment_id, reviewed ? 'review' : 'unreview', (s) => { s.reviewed = reviewed; }),
    segment_redact: ({ segment_id, field, start, end, label }) => change(segment_id, 'redact', (s) => {
      const len = [...(field === 'text' ? s.text : (s.translation ?? ''))].length;
      if (!(start < end && end <= len)) fail('invalid', 'the span must lie inside the text');
      if (!/^[a-z0-9_-]{1,40}$/.test(label)) fail('invalid', 'bad redaction label');
      s.redactions = [...(s.redactions ?? []), { id: `red-${(S.redactionSeq = (S.redactionSeq ?? 0) + 1)}`, field, start, end, label }];
    }),
    segment_unredact: ({ segment_id, redaction_id }) => change(segment_id, 'unredact', (s) => {
      if (!(s.redactions ?? []).some((r) => r.id === redaction_id)) fail('not_found', 'redaction');
      s.redactions = s.redactions.filter((r) => r.id !== redaction_id);
    }),
    segment_split: ({ segment_id, at_ms, text_at, translation_at }) => {
      need();
      const s = segment(segment_id);
      if (at_ms <= s.start_ms || at_ms >= s.end_ms) fail('invalid', 'the split time must be inside the segment');
      const chars = [...s.text];
      if (text_at < 1 || text_at >= chars.length) fail('invalid', 'the split position must leave text on both sides');
      if (s.translation && translation_at == null) fail('invalid', 'a translated segment needs a translation split position');
      const tr = s.translation ? [...s.translation] : null;
      const b = { ...s, ...meta(), seq: s.seq + 1000, start_ms: at_ms, text: chars.slice(text_at).join('').trimStart(), machine_text: null, reviewed: false,
        translation: tr ? tr.slice(translation_at).join('').trimStart() : null };
      s.end_ms = at_ms; s.text = chars.slice(0, text_at).join('').trimEnd(); s.reviewed = false; s.version += 1;
      if (tr) s.translation = tr.slice(0, translation_at).join('').trimEnd();
      S.segments.push(b);
      S.segmentHistory.push({ segment_id, action: 'split' }, { segment_id: b.id, action: 'split' });
      return [s, b];
    },
    segment_merge: ({ first_id, second_id }) => {
      need();
      const a = segment(first_id);
      const b = segment(second_id);
      a.end_ms = Math.max(a.end_ms, b.end_ms); a.text = `${a.text} ${b.text}`; a.reviewed = false; a.version += 1;
      S.segments = S.segments.filter((x) => x.id !== second_id);
      S.segmentHistory.push({ segment_id: first_id, action: 'merge' });
      return a;
    },
    segment_history: ({ segment_id }) => {
      need();
      const s = segment(segment_id);
      return [{ action: 'create' }, ...S.segmentHistory.filter((x) => x.segment_id === segment_id)]
        .map((x) => ({ at: now(), actor: 'Kim Field', device_id: 'dev', action: x.action, related_segment: null, segment: s }));
    },
    export_transcript: ({ transcript_id, format, redact, dest_dir }) => {
      need();
      if (!dest_dir.startsWith('/')) fail('bad_destination');
      const n = S.segments.filter((x) => x.transcript_id === transcript_id).length;
      S.transcriptExports = [...(S.transcriptExports ?? []), { transcript_id, format, redact, dest_dir }];
      return { path: `${dest_dir}/transcript-1.${format === 'bilingual' ? 'html' : format === 'text' ? 'txt' : format}`, segments: n };
    },
    // A 440 Hz tone as raw 16-bit PCM (an ArrayBuffer, as Tauri returns raw responses).
    recording_window: ({ recording_id, from_ms, to_ms }) => {
      need();
      const r = S.recordings.find((x) => x.id === recording_id) || fail('not_found', 'recording');
      if (to_ms <= from_ms || to_ms - from_ms > 30000) fail('invalid', 'a playback window is 1 to 30000 ms');
      S.windows.push({ from_ms, to_ms });
      const end = Math.min(to_ms, r.duration_ms);
      const frames = Math.max(0, Math.floor((end * 48000) / 1000) - Math.floor((from_ms * 48000) / 1000));
      const pcm = new Int16Array(frames);
      for (let k = 0; k < frames; k++) pcm[k] = Math.round(Math.sin(((from_ms * 48 + k) / 48000) * 440 * 2 * Math.PI) * 8000);
      return pcm.buffer;
    },
    // Progress goes to the channel the UI passed (as tauri::ipc::Channel does: {message, index}).
    // With S.exportSteps > 0 the export takes that many 100 ms steps and can be cancelled.
    export_bundle: async ({ dest_dir, on_progress }) => {
      need();
      if (!S.recipient) fail('no_recipient');
      if (!dest_dir.startsWith('/')) fail('bad_destination');
      S.exportCancel = false;
      const steps = S.exportSteps ?? 2;
      for (let k = 1; k <= steps; k++) {
        if (S.exportCancel) { S.exportsCancelled = (S.exportsCancelled ?? 0) + 1; fail('cancelled'); }
        const fraction = k / steps;
        callbacks.get(on_progress.id)?.({ message: { phase: fraction <= 0.3 ? 'checking' : 'writing', fraction }, index: k - 1 });
        if (steps > 2) await new Promise((r) => setTimeout(r, 100));
      }
      const shared = S.witnesses.filter((w) => S.consents[w.id]?.scopes.share_archive && !S.consents[w.id]?.withdrawn_at);
      return { path: `${dest_dir}/testimony-dev-1.tbundle`, bundle_id: 'b', sequence: 1, kind: 'incremental', bytes: 1000,
        counts: { witnesses: shared.length, interviews: S.interviews.filter((i) => shared.some((w) => w.id === i.witness_id)).length, answers: 0, audit_entries: 3 },
        withheld: { witnesses: S.witnesses.length - shared.length, records: S.witnesses.length - shared.length, reasons: { no_share_consent: 0, consent_withdrawn: 0, no_consent_recorded: S.witnesses.length - shared.length } } };
    },
  };

  window.__TAURI_INTERNALS__ = {
    metadata: { currentWindow: { label: 'main' }, currentWebview: { windowLabel: 'main', label: 'main' } },
    transformCallback: (cb) => { const cid = ++nextCallback; callbacks.set(cid, cb); return cid; },
    unregisterCallback: (cid) => { callbacks.delete(cid); },
    invoke: async (cmd, args = {}) => {
      // Passphrases are never recorded in the call log.
      S.calls.push(cmd);
      const h = handlers[cmd];
      if (!h) throw { code: 'internal', detail: `mock has no command ${cmd}` };
      const out = await h(args);
      if (out instanceof ArrayBuffer) return out;
      return JSON.parse(JSON.stringify(out ?? null));
    },
  };
})();
