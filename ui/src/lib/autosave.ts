// Autosave: typed fields are saved after a pause (debounce) and at once when the field is
// left; choices are saved at once. One save per field runs at a time and the latest value
// wins. A field's status becomes 'saved' only when the command returned OK.

export type SaveStatus = 'idle' | 'pending' | 'saving' | 'saved' | 'error';

type Entry = {
  timer: ReturnType<typeof setTimeout> | null;
  next: (() => Promise<void>) | null;
  running: Promise<void> | null;
};

export class Autosaver {
  private entries = new Map<string, Entry>();
  constructor(
    private onStatus: (key: string, status: SaveStatus, error?: unknown) => void,
    private delayMs = 700,
  ) {}

  private entry(key: string): Entry {
    let e = this.entries.get(key);
    if (!e) {
      e = { timer: null, next: null, running: null };
      this.entries.set(key, e);
    }
    return e;
  }

  /** Saves after the pause; a newer call for the same key replaces the waiting one. */
  schedule(key: string, save: () => Promise<void>, delay = this.delayMs) {
    const e = this.entry(key);
    e.next = save;
    if (e.timer) clearTimeout(e.timer);
    this.onStatus(key, 'pending');
    e.timer = setTimeout(() => {
      e.timer = null;
      void this.run(key);
    }, delay);
  }

  /** Saves now (leaving a field, choosing an option). */
  now(key: string, save?: () => Promise<void>): Promise<void> {
    const e = this.entry(key);
    if (save) e.next = save;
    if (e.timer) {
      clearTimeout(e.timer);
      e.timer = null;
    }
    return this.run(key);
  }

  private async run(key: string): Promise<void> {
    const e = this.entry(key);
    while (e.running) await e.running;
    const save = e.next;
    if (!save) return;
    e.next = null;
    this.onStatus(key, 'saving');
    e.running = (async () => {
      try {
        await save();
        // A newer edit waiting means this value is already outdated: not "saved" yet.
        this.onStatus(key, e.next || e.timer ? 'pending' : 'saved');
      } catch (err) {
        this.onStatus(key, 'error', err);
      }
    })();
    await e.running;
    e.running = null;
  }

  /** Whether anything is waiting or being saved. */
  busy(): boolean {
    for (const e of this.entries.values()) if (e.timer || e.next || e.running) return true;
    return false;
  }

  /** Saves everything waiting (before locking or leaving the form). */
  async flushAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((k) => this.now(k)));
  }

  /** Forgets everything waiting without saving (used only after the vault is already locked). */
  drop() {
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    this.entries.clear();
  }
}

/** The indicator for the whole form: 'saved' only if every field's last save succeeded. */
export function overall(statuses: Iterable<SaveStatus>): SaveStatus {
  let any = false;
  let result: SaveStatus = 'idle';
  for (const s of statuses) {
    any = true;
    if (s === 'error') return 'error';
    if (s === 'saving') result = 'saving';
    else if (s === 'pending' && result !== 'saving') result = 'pending';
    else if (s === 'saved' && result === 'idle') result = 'saved';
  }
  return any ? result : 'idle';
}
