// A minimal W3C WebDriver client (plain HTTP) for tauri-driver: just what the end-to-end
// test needs, so no WebDriver framework has to be installed.
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class Driver {
  constructor(base) {
    this.base = base;
    this.session = null;
    /** Set by the harness: what to add to the error when the session is lost. */
    this.diagnostics = null;
  }
  async req(method, path, body) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) {
      const lost = json.value?.error === 'invalid session id' && this.diagnostics ? this.diagnostics() : '';
      const e = new Error(`${method} ${path}: ${json.value?.error ?? res.status} ${json.value?.message ?? ''}${lost}`);
      e.wd = json.value?.error;
      throw e;
    }
    return json.value;
  }
  s(path) {
    return `/session/${this.session}${path}`;
  }
  async start(application) {
    const v = await this.req('POST', '/session', { capabilities: { alwaysMatch: { 'tauri:options': { application } } } });
    this.session = v.sessionId;
  }
  async quit() {
    if (this.session) await this.req('DELETE', this.s('')).catch(() => {});
    this.session = null;
  }
  async findAll(css) {
    const v = await this.req('POST', this.s('/elements'), { using: 'css selector', value: css });
    return v.map((e) => e[ELEMENT]);
  }
  /** Waits until `css` matches a displayed element (or, with `gone`, until nothing matches). */
  async wait(css, { timeout = 15000, gone = false, text = null } = {}) {
    const end = Date.now() + timeout;
    let last = '';
    for (;;) {
      try {
        const els = await this.findAll(css);
        if (gone && els.length === 0) return null;
        for (const el of els) {
          if (gone) break;
          const shown = await this.req('GET', this.s(`/element/${el}/displayed`)).catch(() => true);
          if (!shown) continue;
          if (text === null) return el;
          last = await this.req('GET', this.s(`/element/${el}/text`));
          if (text instanceof RegExp ? text.test(last) : last.includes(text)) return el;
        }
      } catch (e) {
        if (e.wd !== 'stale element reference') throw e;
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${css}${gone ? ' to go' : ''}${text ? ` with text ${text} (last: ${last})` : ''}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  async click(css, opts) {
    const el = await this.wait(css, opts);
    await this.req('POST', this.s(`/element/${el}/click`), {});
    return el;
  }
  async type(css, text, { clear = true } = {}) {
    const el = await this.wait(css);
    if (clear) await this.req('POST', this.s(`/element/${el}/clear`), {});
    await this.req('POST', this.s(`/element/${el}/value`), { text });
    return el;
  }
  async text(css) {
    const el = await this.wait(css);
    return this.req('GET', this.s(`/element/${el}/text`));
  }
  async exec(script, args = []) {
    return this.req('POST', this.s('/execute/sync'), { script, args });
  }
  /** The window as a PNG. WebKitGTK takes it after the page's next paint (WebAutomationSession::
   * takeScreenshot waits for the next presentation update). The app composites on the CPU
   * (src-tauri/src/webview.rs), and then a page where nothing changes is not painted again, so the
   * screenshot would wait for ever although the app goes on working. So a paint is asked for:
   * a 1×1 pixel in the top-left corner is tinted by 1/255 for a moment, then removed. */
  async screenshot() {
    await this.exec(`const p = document.createElement('div');
      p.style.cssText = 'position:fixed;left:0;top:0;width:1px;height:1px;pointer-events:none;z-index:2147483647;background:rgba(0,0,0,0.004)';
      setTimeout(() => document.body.append(p), 50);
      setTimeout(() => p.remove(), 1000);`);
    return Buffer.from(await this.req('GET', this.s('/screenshot')), 'base64');
  }
  async keys(...keys) {
    const actions = keys.flatMap((k) => [{ type: 'keyDown', value: k }]).concat([...keys].reverse().map((k) => ({ type: 'keyUp', value: k })));
    await this.req('POST', this.s('/actions'), { actions: [{ type: 'key', id: 'kb', actions }] });
    await this.req('DELETE', this.s('/actions')).catch(() => {});
  }
}
