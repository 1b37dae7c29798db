//! WebKitGTK settings for the web content process's memory (docs/performance.md, "Desktop app:
//! cold start and idle memory"). The UI is a few local forms: it needs no page cache and no
//! WebGL. Playback uses Web Audio, which stays on. Nothing here touches the CSP, the
//! capabilities or what the page may load.
//!
//! `TESTIMONY_WEBVIEW_TUNING` (benchmark only: `ui/tests/e2e/bench.mjs` compares settings in one
//! build): unset applies the default levers (`cache`, `webgl`); `none` applies none; `all` adds
//! `accel`; otherwise a comma-separated list of `cache`, `webgl`, `accel`. Any value only ever
//! turns memory levers off or on, never anything that protects the vault.

use tauri::{App, Manager};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Levers {
    /// `CacheModel::DocumentViewer`: no page or object caches kept for later navigation (the
    /// app never navigates away from its one page).
    cache: bool,
    /// WebGL off: the UI draws nothing with it.
    webgl: bool,
    /// `HardwareAccelerationPolicy::Never`: pages are composited on the CPU, so the web process
    /// sets up no OpenGL context (a software GL on machines without a GPU). It saves about
    /// 80 MiB, but **not on by default**: with it the real app stopped answering WebDriver
    /// right after playback in the e2e test (WebKitGTK 2.50.6, Xvfb), and a freeze after
    /// playback cannot be ruled out for people until that is understood.
    accel: bool,
}

fn levers(setting: Option<&str>) -> Levers {
    match setting.map(str::trim) {
        None | Some("") => Levers { cache: true, webgl: true, accel: false },
        Some("all") => Levers { cache: true, webgl: true, accel: true },
        Some(list) => {
            let on = |name: &str| list.split(',').any(|x| x.trim() == name);
            Levers { cache: on("cache"), webgl: on("webgl"), accel: on("accel") }
        }
    }
}

/// Applies the levers to the main window's webview (on GTK's main thread, once the event loop
/// runs). A failure leaves WebKit's defaults: the app works either way.
pub fn tune(app: &App) {
    let l = levers(std::env::var("TESTIMONY_WEBVIEW_TUNING").ok().as_deref());
    let Some(window) = app.get_webview_window("main") else { return };
    #[cfg(target_os = "linux")]
    let _ = window.with_webview(move |wv| {
        use webkit2gtk::{CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt};
        let view = wv.inner();
        if l.cache {
            if let Some(ctx) = view.context() {
                ctx.set_cache_model(CacheModel::DocumentViewer);
            }
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
        assert_eq!(levers(None), Levers { cache: true, webgl: true, accel: false });
        assert_eq!(levers(Some("all")), Levers { cache: true, webgl: true, accel: true });
        assert_eq!(levers(Some("none")), Levers { cache: false, webgl: false, accel: false });
        assert_eq!(levers(Some("cache, accel")), Levers { cache: true, webgl: false, accel: true });
    }
}
