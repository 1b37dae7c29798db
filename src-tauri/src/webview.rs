//! WebKitGTK settings for the web content process's memory (docs/performance.md, "Desktop app:
//! cold start and idle memory"). The UI is a few local forms: it needs no page cache, no WebGL
//! and no GPU compositing. Playback uses Web Audio, which stays on. Nothing here touches the
//! CSP, the capabilities or what the page may load.
//!
//! `TESTIMONY_WEBVIEW_TUNING` (benchmark only: `ui/tests/e2e/bench.mjs` compares settings in one
//! build): unset or `all` applies every lever (`cache`, `webgl`, `accel`, `dmabuf`); `none`
//! none; otherwise a comma-separated list of them. Any value only ever turns memory
//! levers off or on, never anything that protects the vault.

use tauri::{App, Manager};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Levers {
    /// `CacheModel::DocumentViewer`: no page or object caches kept for later navigation (the
    /// app never navigates away from its one page).
    cache: bool,
    /// WebGL off: the UI draws nothing with it.
    webgl: bool,
    /// `HardwareAccelerationPolicy::Never`: pages are composited on the CPU, so the web process
    /// sets up no OpenGL compositor (a software GL on machines without a GPU). Alone it saves
    /// about 80 MiB of the web process (release, unlock screen, Xvfb: 303 → 223 MiB in all).
    /// It was off until 2026-12-06 because the e2e test "hung after playback": that was
    /// WebKitWebDriver's screenshot, which waits for the page's next paint, and without GPU
    /// compositing a page where nothing changes is not painted again. The app itself kept
    /// working (every later step of that test passed); the test now asks for a paint before a
    /// screenshot (`ui/tests/e2e/webdriver.mjs`).
    accel: bool,
    /// `WEBKIT_DISABLE_DMABUF_RENDERER=1` (set in `before_gtk`): WebKitGTK's DMA-BUF renderer,
    /// through which the web process hands GPU-composited frames to the app's window, is not
    /// set up. With `accel` the web process already composites on the CPU; this also spares
    /// the app process its side of that renderer and a few MiB of the web process: with
    /// `accel` 223 → 214 MiB (app 85 → 81, web content 111 → 105); alone 213 MiB, the same
    /// web process saving as `accel`. Set only if the user has not set the variable.
    dmabuf: bool,
}

const ALL: Levers = Levers {
    cache: true,
    webgl: true,
    accel: true,
    dmabuf: true,
};
/// Every lever is on by default: pages are composited on the CPU. Besides the memory (303 ->
/// 213 MiB idle, docs/performance.md), this keeps WebKit's threaded compositor off Mesa's
/// software GL, where it crashed the web process once in a CI run (2026-12-06: a general
/// protection fault in swrast_dri.so on the "ThreadedCompositor" thread, in the transcription
/// e2e test). GPU compositing was the default for part of that day, after the real-app demo
/// test failed once with it off; that failure was the test clicking "open" while the list
/// was still re-rendering after a filter change, and the test now waits for the list.
const DEFAULT: Levers = ALL;

fn levers(setting: Option<&str>) -> Levers {
    match setting.map(str::trim) {
        None | Some("") => DEFAULT,
        Some("all") => ALL,
        Some(list) => {
            let on = |name: &str| list.split(',').any(|x| x.trim() == name);
            Levers {
                cache: on("cache"),
                webgl: on("webgl"),
                accel: on("accel"),
                dmabuf: on("dmabuf"),
            }
        }
    }
}

fn from_env() -> Levers {
    levers(std::env::var("TESTIMONY_WEBVIEW_TUNING").ok().as_deref())
}

/// The levers that only work through WebKitGTK's environment variables, which it reads when
/// GTK and its processes start. Called first thing in `main`, while the process has one
/// thread (setting the environment is only sound then). The web and network processes
/// inherit the variable. A value the user set is left as it is.
pub fn before_gtk() {
    #[cfg(target_os = "linux")]
    if from_env().dmabuf && std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        // SAFETY: called at the start of `main`, before any other thread exists (no GTK, no
        // Tauri runtime, no worker yet), so nothing can read the environment concurrently.
        unsafe { std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1") };
    }
}

/// Applies the levers to the main window's webview (on GTK's main thread, once the event loop
/// runs). A failure leaves WebKit's defaults: the app works either way.
pub fn tune(app: &App) {
    let l = from_env();
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    #[cfg(target_os = "linux")]
    let _ = window.with_webview(move |wv| {
        use webkit2gtk::{
            CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt,
        };
        let view = wv.inner();
        if l.cache
            && let Some(ctx) = view.context()
        {
            ctx.set_cache_model(CacheModel::DocumentViewer);
        }
        if let Some(s) = WebViewExt::settings(&view) {
            if l.webgl {
                s.set_enable_webgl(false);
            }
            if l.accel {
                s.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
        }
    });
    #[cfg(not(target_os = "linux"))]
    let _ = (window, l);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_levers_unless_the_benchmark_says_otherwise() {
        assert_eq!(levers(None), DEFAULT);
        assert_eq!(levers(Some("")), DEFAULT);
        const { assert!(DEFAULT.accel && DEFAULT.dmabuf && DEFAULT.cache && DEFAULT.webgl) };
        assert_eq!(levers(Some("all")), ALL);
        assert_eq!(
            levers(Some("none")),
            Levers {
                cache: false,
                webgl: false,
                accel: false,
                dmabuf: false
            }
        );
        assert_eq!(
            levers(Some("cache, accel")),
            Levers {
                cache: true,
                webgl: false,
                accel: true,
                dmabuf: false
            }
        );
        assert_eq!(
            levers(Some("dmabuf")),
            Levers {
                cache: false,
                webgl: false,
                accel: false,
                dmabuf: true
            }
        );
    }
}
