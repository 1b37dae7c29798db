// Locks after a period without input. The backend has its own backstop (src-tauri worker.rs).

export class IdleTimer {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private last = 0;
  constructor(private minutes: number, private onIdle: () => void, private now: () => number = Date.now) {}

  setMinutes(m: number) {
    this.minutes = m;
    if (this.timer) this.start();
  }

  start() {
    this.stop();
    this.last = this.now();
    this.timer = setTimeout(() => this.check(), this.minutes * 60_000);
  }

  /** Called on every keydown, pointer or wheel event. */
  activity() {
    this.last = this.now();
  }

  private check() {
    const left = this.minutes * 60_000 - (this.now() - this.last);
    if (left <= 0) {
      this.stop();
      this.onIdle();
    } else {
      this.timer = setTimeout(() => this.check(), left);
    }
  }

  stop() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  running(): boolean {
    return this.timer !== null;
  }
}

/** Ctrl+Shift+L (any layout: by key or by physical key). */
export function isPanicShortcut(e: { ctrlKey: boolean; shiftKey: boolean; altKey: boolean; metaKey: boolean; key: string; code?: string }): boolean {
  return e.ctrlKey && e.shiftKey && !e.altKey && !e.metaKey && (e.key.toLowerCase() === 'l' || e.code === 'KeyL');
}
