import { api } from './api';
import { Autosaver, overall, type SaveStatus } from './autosave';
import { answerKey, fromInput, toInput, type InputValue } from './form';
import type { AppError, Codebook, FormState, Question } from './types';

/** State of one open interview form, shared by its fields through Svelte context. */
export class FormCtx {
  cb: Codebook;
  interviewId: string;
  state: FormState = $state() as FormState;
  values: Record<string, InputValue> = $state({});
  statuses: Record<string, SaveStatus> = $state({});
  errors: Record<string, AppError | { code: 'local'; detail: string }> = $state({});
  saver: Autosaver;
  readOnly = $derived(this.state?.detail.interview.status === 'reviewed');
  overall = $derived(overall(Object.values(this.statuses)));

  constructor(cb: Codebook, state: FormState) {
    this.cb = cb;
    this.state = state;
    this.interviewId = state.detail.interview.id;
    this.saver = new Autosaver((key, status, err) => {
      this.statuses[key] = status;
      if (status === 'error') this.errors[key] = err as AppError;
      else if (status === 'saved') delete this.errors[key];
    });
    for (const a of state.detail.answers) {
      const q = cb.questions.find((x) => x.id === a.question_id);
      if (q) this.values[answerKey(q.id, a.instance_id)] = toInput(q, a.value);
    }
  }

  question(id: string): Question | undefined {
    return this.cb.questions.find((q) => q.id === id);
  }

  value(q: Question, instanceId: string | null): InputValue {
    const k = answerKey(q.id, instanceId);
    if (!(k in this.values)) this.values[k] = toInput(q, undefined);
    return this.values[k];
  }

  private saveFn(q: Question, instanceId: string | null): (() => Promise<void>) | null {
    const key = answerKey(q.id, instanceId);
    const out = fromInput(q, this.values[key] ?? toInput(q, undefined));
    if (out.kind === 'error') {
      this.statuses[key] = 'error';
      this.errors[key] = { code: 'local', detail: out.key };
      return null;
    }
    const id = this.interviewId;
    return async () => {
      const next =
        out.kind === 'clear' ? await api.clearAnswer(id, instanceId, q.id) : await api.setAnswer(id, instanceId, q.id, out.value);
      // Skip logic and missing answers as the core now sees them; typed values stay as typed.
      this.state = next;
    };
  }

  /** A typed edit: saved after a pause. */
  edited(q: Question, instanceId: string | null) {
    const f = this.saveFn(q, instanceId);
    if (f) this.saver.schedule(answerKey(q.id, instanceId), f);
  }

  /** Leaving a field or choosing an option: saved now. */
  commit(q: Question, instanceId: string | null): Promise<void> {
    const f = this.saveFn(q, instanceId);
    return f ? this.saver.now(answerKey(q.id, instanceId), f) : Promise.resolve();
  }

  async addInstance(groupId: string, parentId: string | null) {
    this.state = await api.addGroupInstance(this.interviewId, groupId, parentId);
  }

  async removeInstance(instanceId: string) {
    await this.saver.flushAll();
    this.state = await api.removeGroupInstance(this.interviewId, instanceId);
  }
}
