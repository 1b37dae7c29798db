//! Testimony desktop app: Tauri commands over `testimony-core`. This file only receives
//! arguments, hands them to the vault thread (`worker.rs`) and returns what the core said;
//! the rules live in the core (see `ops.rs` for what each command does).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod audio;
mod error;
#[cfg(test)]
mod ipc_types;
mod ops;
mod settings;
mod slots;
mod transcribe;
mod transcript;
mod webview;
mod worker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};
use testimony_core::SearchHit;
use testimony_core::audio::capture::CpalSource;
use testimony_core::audio::{Marker, Recording};
use testimony_core::bundle::ExportReport;
use testimony_core::codebook::Codebook;
use testimony_core::model::{
    Consent, ConsentMethod, ConsentScopes, Interview, Note, Witness, WitnessIdentity,
    WitnessProfile,
};
use zeroize::Zeroizing;

use audio::RecordingSummary;
use error::AppError;
use ops::{
    AppInfo, ExportStep, FormState, NewInterviewArgs, Session, StatusAction, VaultInfo,
    WitnessSummary,
};
use settings::Settings;
use slots::RecordingState;
use testimony_core::transcript::{SegmentVersion, Transcript, TranscriptSegment};
use transcript::TranscriptExport;
use worker::Worker;

/// Set once the window has started closing (so the second close request goes through).
#[derive(Default)]
struct Closing(AtomicBool);

struct AppPaths {
    settings: PathBuf,
    /// Where the user copies whisper model files (`transcribe.rs`).
    models: PathBuf,
    /// Started with TESTIMONY_VAULT (e.g. `./run demo`).
    demo: bool,
    /// The panic shortcut is registered system-wide (see `register_panic_shortcut`).
    global_panic: bool,
}

type Res<T> = Result<T, AppError>;

/// Runs `f` on the vault thread without blocking the async runtime.
async fn on_vault<R: Send + 'static>(
    w: &Worker,
    f: impl FnOnce(&mut Session) -> Res<R> + Send + 'static,
) -> Res<R> {
    let w = w.clone();
    tauri::async_runtime::spawn_blocking(move || w.call(f))
        .await
        .map_err(|_| AppError::code("internal"))?
}

// ---- app, vault, lock --------------------------------------------------------------------

#[tauri::command(rename_all = "snake_case")]
async fn app_info(w: State<'_, Worker>, p: State<'_, AppPaths>) -> Res<AppInfo> {
    let (demo, global_panic) = (p.demo, p.global_panic);
    on_vault(&w, move |s| {
        Ok(AppInfo {
            global_panic,
            ..s.info(demo)
        })
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn create_vault(w: State<'_, Worker>, passphrase: String, interviewer: String) -> Res<()> {
    let pass = Zeroizing::new(passphrase);
    on_vault(&w, move |s| s.create_vault(&pass, &interviewer)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn unlock(w: State<'_, Worker>, passphrase: String) -> Res<()> {
    let pass = Zeroizing::new(passphrase);
    on_vault(&w, move |s| s.unlock(&pass)).await
}

/// Closes the vault: the connection is dropped and SQLCipher wipes its key. An export in
/// progress is cancelled first, so that the lock does not wait for it.
#[tauri::command(rename_all = "snake_case")]
async fn lock(w: State<'_, Worker>) -> Res<()> {
    lock_vault(&w).await
}

/// The lock for commands (async). An export in progress holds the vault thread: it is
/// cancelled first so that the lock is not held up.
async fn lock_vault(w: &Worker) -> Res<()> {
    w.export_cancel.store(true, Ordering::SeqCst);
    on_vault(w, |s| {
        s.lock();
        Ok(())
    })
    .await
}

/// The same lock from a plain thread (the crashed-page handler, the app's exit): waits until
/// the vault thread has locked.
fn lock_vault_blocking(w: &Worker) {
    w.export_cancel.store(true, Ordering::SeqCst);
    let _ = w.call(|s| {
        s.lock();
        Ok(())
    });
}

/// Sent by the UI while the interviewer is active; answers whether the vault is still open.
#[tauri::command(rename_all = "snake_case")]
async fn heartbeat(w: State<'_, Worker>) -> Res<bool> {
    on_vault(&w, |s| Ok(s.vault.is_some())).await
}

#[tauri::command(rename_all = "snake_case")]
fn passphrase_check(passphrase: String) -> Res<()> {
    let pass = Zeroizing::new(passphrase);
    testimony_core::keys::check_passphrase_strength(&pass)?;
    Ok(())
}

#[tauri::command(rename_all = "snake_case")]
async fn change_passphrase(w: State<'_, Worker>, old: String, new: String) -> Res<()> {
    let (old, new) = (Zeroizing::new(old), Zeroizing::new(new));
    on_vault(&w, move |s| s.change_passphrase(&old, &new)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn vault_info(w: State<'_, Worker>) -> Res<VaultInfo> {
    on_vault(&w, |s| s.vault_info()).await
}

#[tauri::command(rename_all = "snake_case")]
async fn set_recipient(w: State<'_, Worker>, recipient: Option<String>) -> Res<()> {
    on_vault(&w, move |s| s.set_recipient(recipient)).await
}

// ---- settings (no vault needed) ------------------------------------------------------------

#[tauri::command(rename_all = "snake_case")]
fn get_settings(p: State<'_, AppPaths>) -> Settings {
    Settings::load(&p.settings)
}

/// Saves the UI language and the idle time; the transcription settings in the file are kept
/// (they change through `transcribe_settings`).
#[tauri::command(rename_all = "snake_case")]
fn save_settings(w: State<'_, Worker>, p: State<'_, AppPaths>, settings: Settings) -> Res<()> {
    let saved = Settings::save_general(&p.settings, &settings)?;
    w.idle_minutes.store(saved.idle_minutes, Ordering::Relaxed);
    Ok(())
}

// ---- witnesses and consent ---------------------------------------------------------------------

#[tauri::command(rename_all = "snake_case")]
async fn list_witnesses(w: State<'_, Worker>) -> Res<Vec<WitnessSummary>> {
    on_vault(&w, |s| s.witnesses()).await
}

#[tauri::command(rename_all = "snake_case")]
async fn create_witness(w: State<'_, Worker>, profile: WitnessProfile) -> Res<Witness> {
    on_vault(&w, move |s| s.create_witness(profile)).await
}

/// Identifying details: asked for separately, only when the identity panel is opened.
#[tauri::command(rename_all = "snake_case")]
async fn get_identity(w: State<'_, Worker>, witness: String) -> Res<Option<WitnessIdentity>> {
    on_vault(&w, move |s| s.identity(&witness)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn set_identity(w: State<'_, Worker>, witness: String, identity: WitnessIdentity) -> Res<()> {
    on_vault(&w, move |s| s.set_identity(&witness, identity)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn set_consent(
    w: State<'_, Worker>,
    witness: String,
    scopes: ConsentScopes,
    method: ConsentMethod,
) -> Res<Consent> {
    on_vault(&w, move |s| s.set_consent(&witness, scopes, method)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn withdraw_consent(w: State<'_, Worker>, witness: String) -> Res<Consent> {
    on_vault(&w, move |s| s.withdraw_consent(&witness)).await
}

// ---- codebook and interviews ---------------------------------------------------------------------

#[tauri::command(rename_all = "snake_case")]
async fn get_codebook(
    w: State<'_, Worker>,
    id: Option<String>,
    version: Option<String>,
) -> Res<Codebook> {
    on_vault(&w, move |s| s.codebook(id.as_deref(), version.as_deref())).await
}

#[tauri::command(rename_all = "snake_case")]
async fn list_interviews(
    w: State<'_, Worker>,
    status: Option<String>,
    witness: Option<String>,
) -> Res<Vec<Interview>> {
    on_vault(&w, move |s| {
        s.interviews(status.as_deref(), witness.as_deref())
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn search(w: State<'_, Worker>, query: String) -> Res<Vec<SearchHit>> {
    on_vault(&w, move |s| s.search(&query)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn new_interview(w: State<'_, Worker>, args: NewInterviewArgs) -> Res<Interview> {
    on_vault(&w, move |s| s.new_interview(args)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn interview_form(w: State<'_, Worker>, interview_id: String) -> Res<FormState> {
    on_vault(&w, move |s| s.form(&interview_id)).await
}

/// Returns only after the core committed the answer; the UI says "saved" on this reply.
#[tauri::command(rename_all = "snake_case")]
async fn set_answer(
    w: State<'_, Worker>,
    interview_id: String,
    instance_id: Option<String>,
    question_id: String,
    value: Value,
) -> Res<FormState> {
    on_vault(&w, move |s| {
        s.set_answer(&interview_id, instance_id.as_deref(), &question_id, &value)
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn clear_answer(
    w: State<'_, Worker>,
    interview_id: String,
    instance_id: Option<String>,
    question_id: String,
) -> Res<FormState> {
    on_vault(&w, move |s| {
        s.clear_answer(&interview_id, instance_id.as_deref(), &question_id)
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn add_group_instance(
    w: State<'_, Worker>,
    interview_id: String,
    group_id: String,
    parent_id: Option<String>,
) -> Res<FormState> {
    on_vault(&w, move |s| {
        s.add_group_instance(&interview_id, &group_id, parent_id.as_deref())
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn remove_group_instance(
    w: State<'_, Worker>,
    interview_id: String,
    instance_id: String,
) -> Res<FormState> {
    on_vault(&w, move |s| {
        s.remove_group_instance(&interview_id, &instance_id)
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn add_note(
    w: State<'_, Worker>,
    interview_id: String,
    question_id: Option<String>,
    instance_id: Option<String>,
    text: String,
) -> Res<Note> {
    on_vault(&w, move |s| {
        s.add_note(
            &interview_id,
            question_id.as_deref(),
            instance_id.as_deref(),
            &text,
        )
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn set_interview_status(
    w: State<'_, Worker>,
    interview_id: String,
    action: StatusAction,
) -> Res<Interview> {
    on_vault(&w, move |s| s.set_status(&interview_id, action)).await
}

// ---- audio -----------------------------------------------------------------------------------
// See audio.rs: the recorder lives beside the vault thread; start, stop, markers and reads are
// vault jobs; status, pause and resume only touch the recorder.

/// Starts recording the interview from the default audio input.
#[tauri::command(rename_all = "snake_case")]
async fn recording_start(w: State<'_, Worker>, interview_id: String) -> Res<RecordingState> {
    on_vault(&w, move |s| {
        s.start_recording(&interview_id, || {
            CpalSource::default_input().map_err(|e| match e {
                testimony_core::Error::Audio(m) => AppError::with_detail("no_audio_device", m),
                e => e.into(),
            })
        })
    })
    .await
}

/// The recording in progress (clock, level), or none. Does not wait for the vault thread.
#[tauri::command(rename_all = "snake_case")]
async fn recording_status(w: State<'_, Worker>) -> Res<Option<RecordingState>> {
    Ok(slots::recording_status(&w.audio))
}

#[tauri::command(rename_all = "snake_case")]
async fn recording_pause(w: State<'_, Worker>, paused: bool) -> Res<RecordingState> {
    slots::pause_recording(&w.audio, paused)
}

#[tauri::command(rename_all = "snake_case")]
async fn recording_stop(w: State<'_, Worker>) -> Res<Recording> {
    on_vault(&w, |s| s.stop_recording()).await
}

#[tauri::command(rename_all = "snake_case")]
async fn recording_marker(
    w: State<'_, Worker>,
    recording_id: String,
    question_id: Option<String>,
    label: String,
) -> Res<Marker> {
    on_vault(&w, move |s| {
        s.add_marker(&recording_id, question_id.as_deref(), &label)
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn list_recordings(w: State<'_, Worker>, interview_id: String) -> Res<Vec<RecordingSummary>> {
    on_vault(&w, move |s| s.recordings(&interview_id)).await
}

/// A window of decoded samples for playback, as raw bytes (an ArrayBuffer in the webview).
#[tauri::command(rename_all = "snake_case")]
async fn recording_window(
    w: State<'_, Worker>,
    recording_id: String,
    from_ms: u64,
    to_ms: u64,
) -> Res<tauri::ipc::Response> {
    on_vault(&w, move |s| {
        s.recording_window(&recording_id, from_ms, to_ms)
    })
    .await
    .map(tauri::ipc::Response::new)
}

// ---- panic shortcut ---------------------------------------------------------------------------

/// Registers Ctrl+Shift+L with the desktop (X11 key grab through tauri-plugin-global-shortcut),
/// so that it locks even while another window has the focus. Under Wayland no application
/// may grab keys: there it works only inside the window (the UI's own handler), and the
/// settings screen says so. Returns whether the system-wide shortcut is in place.
fn register_panic_shortcut(app: &tauri::App) -> bool {
    use tauri_plugin_global_shortcut::{GlobalShortcutExt, ShortcutState};
    let wayland = std::env::var("XDG_SESSION_TYPE").is_ok_and(|t| t == "wayland")
        || (std::env::var_os("WAYLAND_DISPLAY").is_some() && std::env::var_os("DISPLAY").is_none());
    if wayland || std::env::var_os("DISPLAY").is_none() {
        return false;
    }
    let plugin = tauri_plugin_global_shortcut::Builder::new()
        .with_handler(|app, _shortcut, event| {
            if event.state == ShortcutState::Pressed {
                panic_lock(app);
            }
        })
        .build();
    if app.handle().plugin(plugin).is_err() {
        return false;
    }
    app.global_shortcut().register("ctrl+shift+KeyL").is_ok()
}

/// The panic shortcut pressed anywhere: the UI saves what is waiting and locks (as for the
/// button); if it has not locked within 2 s (a hung page), the vault is locked here and the
/// UI is told to clear its screens.
fn panic_lock(app: &AppHandle) {
    let webview = app.get_webview_window("main");
    if let Some(wv) = &webview {
        let _ = wv.eval("window.__testimonyPanic && window.__testimonyPanic()");
    }
    let w = app.state::<Worker>().inner().clone();
    // An export in progress holds the vault thread: cancel it so the lock is not held up.
    w.export_cancel.store(true, Ordering::SeqCst);
    std::thread::spawn(move || {
        let Ok(seen) = w.call(|s| Ok(s.locks)) else {
            return;
        };
        std::thread::sleep(Duration::from_secs(2));
        let locked_here = w
            .call(move |s| {
                let fallback = s.locks == seen && s.vault.is_some();
                if fallback {
                    s.lock();
                }
                Ok(fallback)
            })
            .unwrap_or(false);
        if let (true, Some(wv)) = (locked_here, webview) {
            let _ = wv.eval("window.__testimonyLocked && window.__testimonyLocked()");
        }
    });
}

// ---- a crashed page ----------------------------------------------------------------------------

/// If WebKit's web content process dies (a crash, or killed for memory), the window would stay
/// blank with the vault still open behind it. Instead the vault is locked (as by the panic
/// button: a recording is stopped with its audio kept, a transcription keeps its finished
/// windows) and the page is loaded again, which then shows the unlock screen. Only what the
/// UI had not yet handed to the core (typing within autosave's pause) is lost with the page.
fn lock_when_the_page_crashes(app: &tauri::App) {
    #[cfg(target_os = "linux")]
    if let Some(window) = app.get_webview_window("main") {
        let handle = app.handle().clone();
        let _ = window.with_webview(move |wv| {
            use webkit2gtk::{WebProcessTerminationReason as Reason, WebViewExt};
            wv.inner()
                .connect_web_process_terminated(move |_view, reason| {
                    if !matches!(reason, Reason::Crashed | Reason::ExceededMemoryLimit) {
                        return;
                    }
                    let w = handle.state::<Worker>().inner().clone();
                    let handle = handle.clone();
                    // Off GTK's main thread: the vault thread may take a moment to stop a job.
                    std::thread::spawn(move || {
                        lock_vault_blocking(&w);
                        if let Some(window) = handle.get_webview_window("main") {
                            let _ = window.with_webview(|wv| wv.inner().reload());
                        }
                    });
                });
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

// ---- closing the window -----------------------------------------------------------------------

/// The UI calls this once it has saved what was waiting (see `on_window_event` below): the
/// vault is locked and the window goes.
#[tauri::command(rename_all = "snake_case")]
async fn close_window(w: State<'_, Worker>, window: tauri::WebviewWindow) -> Res<()> {
    let _ = lock_vault(&w).await;
    window.destroy().map_err(|_| AppError::code("internal"))
}

// ---- transcripts (the translator's review; rules in testimony_core::transcript) ----------

#[tauri::command(rename_all = "snake_case")]
async fn list_transcripts(w: State<'_, Worker>, recording_id: String) -> Res<Vec<Transcript>> {
    on_vault(&w, move |s| s.transcripts(&recording_id)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn transcript_segments(
    w: State<'_, Worker>,
    transcript_id: String,
) -> Res<Vec<TranscriptSegment>> {
    on_vault(&w, move |s| s.segments(&transcript_id)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_edit_text(
    w: State<'_, Worker>,
    segment_id: String,
    text: String,
) -> Res<TranscriptSegment> {
    on_vault(&w, move |s| s.edit_segment_text(&segment_id, &text)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_set_translation(
    w: State<'_, Worker>,
    segment_id: String,
    text: String,
    language: String,
) -> Res<TranscriptSegment> {
    on_vault(&w, move |s| {
        s.set_segment_translation(&segment_id, &text, &language)
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_set_speaker(
    w: State<'_, Worker>,
    segment_id: String,
    speaker: Option<String>,
) -> Res<TranscriptSegment> {
    on_vault(&w, move |s| {
        s.set_segment_speaker(&segment_id, speaker.as_deref())
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_set_reviewed(
    w: State<'_, Worker>,
    segment_id: String,
    reviewed: bool,
) -> Res<TranscriptSegment> {
    on_vault(&w, move |s| s.set_segment_reviewed(&segment_id, reviewed)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_split(
    w: State<'_, Worker>,
    segment_id: String,
    at_ms: u64,
    text_at: u32,
    translation_at: Option<u32>,
) -> Res<Vec<TranscriptSegment>> {
    on_vault(&w, move |s| {
        s.split_segment(&segment_id, at_ms, text_at, translation_at)
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_merge(
    w: State<'_, Worker>,
    first_id: String,
    second_id: String,
) -> Res<TranscriptSegment> {
    on_vault(&w, move |s| s.merge_segments(&first_id, &second_id)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_redact(
    w: State<'_, Worker>,
    segment_id: String,
    field: String,
    start: u32,
    end: u32,
    label: String,
) -> Res<TranscriptSegment> {
    on_vault(&w, move |s| {
        s.add_redaction(&segment_id, &field, start, end, &label)
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_unredact(
    w: State<'_, Worker>,
    segment_id: String,
    redaction_id: String,
) -> Res<TranscriptSegment> {
    on_vault(&w, move |s| s.remove_redaction(&segment_id, &redaction_id)).await
}

#[tauri::command(rename_all = "snake_case")]
async fn segment_history(w: State<'_, Worker>, segment_id: String) -> Res<Vec<SegmentVersion>> {
    on_vault(&w, move |s| s.segment_history(&segment_id)).await
}

/// Writes a plaintext file (the user was warned) into the folder they picked.
#[tauri::command(rename_all = "snake_case")]
async fn export_transcript(
    w: State<'_, Worker>,
    transcript_id: String,
    format: String,
    redact: bool,
    dest_dir: String,
) -> Res<TranscriptExport> {
    on_vault(&w, move |s| {
        s.export_transcript(&transcript_id, &format, redact, &dest_dir)
    })
    .await
}

// ---- transcription (in the background; see transcribe.rs) ----------------------------------

/// The models folder: its path, the models in it, the files that are not usable models and
/// why, and the chosen model and language.
#[tauri::command(rename_all = "snake_case")]
async fn transcribe_models(p: State<'_, AppPaths>) -> Res<transcribe::ModelsInfo> {
    let (dir, settings) = (p.models.clone(), Settings::load(&p.settings));
    tauri::async_runtime::spawn_blocking(move || transcribe::models(&dir, &settings))
        .await
        .map_err(|_| AppError::code("internal"))?
}

/// Saves the chosen model (a file name in the models folder; None: none) and the spoken
/// language (auto, ko, en) in the settings file.
#[tauri::command(rename_all = "snake_case")]
async fn transcribe_settings(
    p: State<'_, AppPaths>,
    model: Option<String>,
    language: String,
) -> Res<transcribe::ModelsInfo> {
    let (dir, path) = (p.models.clone(), p.settings.clone());
    tauri::async_runtime::spawn_blocking(move || {
        let s = Settings {
            whisper_model: model.filter(|m| !m.trim().is_empty()),
            transcribe_language: language,
            ..Settings::load(&path)
        };
        s.save(&path)?;
        transcribe::models(&dir, &s)
    })
    .await
    .map_err(|_| AppError::code("internal"))?
}

/// Starts (or resumes) transcribing a stopped recording in the background; returns at once.
#[tauri::command(rename_all = "snake_case")]
async fn transcribe_start(
    w: State<'_, Worker>,
    p: State<'_, AppPaths>,
    recording_id: String,
) -> Res<slots::TranscriptionState> {
    let (w, dir, settings) = (
        w.inner().clone(),
        p.models.clone(),
        Settings::load(&p.settings),
    );
    tauri::async_runtime::spawn_blocking(move || {
        transcribe::start(
            &w,
            &dir,
            &settings,
            &recording_id,
            transcribe::DEFAULT_WINDOW_MS,
        )
    })
    .await
    .map_err(|_| AppError::code("internal"))?
}

/// Progress of the transcription (or how it ended); does not wait for the vault thread.
#[tauri::command(rename_all = "snake_case")]
fn transcribe_status(w: State<'_, Worker>) -> Option<slots::TranscriptionState> {
    slots::transcription_status(&w.transcribe)
}

#[tauri::command(rename_all = "snake_case")]
fn transcribe_cancel(w: State<'_, Worker>) -> Option<slots::TranscriptionState> {
    slots::cancel_transcription(&w.transcribe)
}

// ---- export ----------------------------------------------------------------------------------

/// Exports on the vault thread; progress goes to `on_progress` (a channel: no event
/// permission is needed), and `export_cancel` stops it through a flag the export checks at
/// each step (the vault thread is busy with the export, so cancel cannot be a job there).
#[tauri::command(rename_all = "snake_case")]
async fn export_bundle(
    w: State<'_, Worker>,
    dest_dir: String,
    on_progress: Channel<ExportStep>,
) -> Res<ExportReport> {
    let cancel = w.export_cancel.clone();
    cancel.store(false, Ordering::SeqCst);
    on_vault(&w, move |s| {
        s.export(&dest_dir, &cancel, &mut |step| {
            let _ = on_progress.send(step);
        })
    })
    .await
}

#[tauri::command(rename_all = "snake_case")]
fn export_cancel(w: State<'_, Worker>) {
    w.export_cancel.store(true, Ordering::SeqCst);
}

fn main() {
    // No core dump of this process or of WebKit's processes (they hold the key and the page):
    // first, so that it covers everything that follows.
    testimony_core::process::no_core_dumps();
    // Panic messages say where, never what (the payload could quote testimony).
    testimony_core::process::quiet_panics("testimony-app");
    // WebKitGTK's memory levers that are environment variables: before any thread or GTK starts.
    webview::before_gtk();
    let env_vault = std::env::var_os("TESTIMONY_VAULT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    tauri::Builder::default()
        .setup(move |app| {
            let demo = env_vault.is_some();
            let vault_dir = match &env_vault {
                Some(p) => std::path::absolute(p)?,
                None => app.path().app_data_dir()?.join("vault"),
            };
            let settings_path = app.path().app_config_dir()?.join("settings.json");
            // Model files are copied in by the user (nothing is downloaded). TESTIMONY_MODELS
            // points elsewhere (e.g. a folder of models shared by several installs, or tests).
            let models = match std::env::var_os("TESTIMONY_MODELS").filter(|v| !v.is_empty()) {
                Some(p) => std::path::absolute(PathBuf::from(p))?,
                None => app.path().app_data_dir()?.join("models"),
            };
            // Made at start so that the user finds it (Settings shows where).
            let _ = std::fs::create_dir_all(&models);
            let idle = Settings::load(&settings_path).idle_minutes;
            app.manage(Worker::start(vault_dir, idle));
            let global_panic = register_panic_shortcut(app);
            app.manage(AppPaths {
                settings: settings_path,
                models,
                demo,
                global_panic,
            });
            webview::tune(app);
            lock_when_the_page_crashes(app);
            Ok(())
        })
        .manage(Closing::default())
        // Closing the window first lets the UI save the answers still waiting for their pause
        // (autosave), then locks the vault; if the UI does not answer within 3 s, it closes
        // anyway.
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                let closing = window.state::<Closing>();
                if closing.0.swap(true, Ordering::SeqCst) {
                    return;
                }
                api.prevent_close();
                if let Some(webview) = window.app_handle().get_webview_window(window.label()) {
                    let _ = webview
                        .eval("window.__testimonyBeforeClose && window.__testimonyBeforeClose()");
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(3));
                        let _ = webview.destroy();
                    });
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            app_info,
            create_vault,
            unlock,
            lock,
            heartbeat,
            passphrase_check,
            change_passphrase,
            vault_info,
            set_recipient,
            get_settings,
            save_settings,
            list_witnesses,
            create_witness,
            get_identity,
            set_identity,
            set_consent,
            withdraw_consent,
            get_codebook,
            list_interviews,
            search,
            new_interview,
            interview_form,
            set_answer,
            clear_answer,
            add_group_instance,
            remove_group_instance,
            add_note,
            set_interview_status,
            close_window,
            export_bundle,
            export_cancel,
            recording_start,
            recording_status,
            recording_pause,
            recording_stop,
            recording_marker,
            list_recordings,
            recording_window,
            list_transcripts,
            transcript_segments,
            segment_edit_text,
            segment_set_translation,
            segment_set_speaker,
            segment_set_reviewed,
            segment_split,
            segment_merge,
            segment_history,
            export_transcript,
            segment_redact,
            segment_unredact,
            transcribe_models,
            transcribe_settings,
            transcribe_start,
            transcribe_status,
            transcribe_cancel,
        ])
        .build(tauri::generate_context!())
        .expect("Testimony could not start")
        .run(|app, event| {
            // However the app ends (last window gone, a signal Tauri handles), a recording in
            // progress is stopped and the vault closed before the process exits.
            if let tauri::RunEvent::Exit = event {
                lock_vault_blocking(app.state::<Worker>().inner());
            }
        });
}
