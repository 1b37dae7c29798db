//! The framework's floor for `ui/tests/e2e/bench.mjs`'s idle-memory figure: the same Tauri build
//! and the same WebKitGTK settings as the app (`src/webview.rs`), but a one-line page and no
//! vault, commands or plugins. docs/performance.md compares the two. `BLANK_WINDOW_URL` loads
//! another page instead, e.g. `tauri://localhost/index.html`: the app's own UI without its Rust
//! side (its commands then fail, and it stays on a first screen).
#[path = "../src/webview.rs"]
mod webview;

fn main() {
    webview::before_gtk();
    let mut context = tauri::generate_context!();
    let page = std::env::var("BLANK_WINDOW_URL").unwrap_or_else(|_| "blank://localhost/".into());
    context.config_mut().app.windows[0].url =
        tauri::WebviewUrl::External(page.parse().expect("a URL"));
    tauri::Builder::default()
        // A page WebKit loads in a web content process like the app's (about:blank gets none).
        .register_uri_scheme_protocol("blank", |_, _| {
            tauri::http::Response::builder()
                .header("content-type", "text/html")
                .body(b"<!doctype html><title>blank</title><p>blank</p>".to_vec())
                .expect("a response")
        })
        .setup(|app| {
            webview::tune(app);
            Ok(())
        })
        .run(context)
        .expect("the window runs");
}
