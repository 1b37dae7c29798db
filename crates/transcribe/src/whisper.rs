//! The whisper.cpp [`Transcriber`] (whisper-rs 0.16, whisper.cpp 1.8.3 vendored).

use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
    WhisperSysContext, WhisperSysState,
};

use crate::error::{Error, Result};
use crate::model::{ModelInfo, check_model};
use crate::{Language, Segment, Transcriber, WindowHooks, WindowOptions};

/// A loaded model and its decoding state (reused from window to window; its buffers have a
/// fixed size, so memory does not grow with the audio).
pub struct WhisperTranscriber {
    ctx: WhisperContext,
    state: WhisperState,
    info: ModelInfo,
}

static QUIET: Once = Once::new();

impl WhisperTranscriber {
    /// Checks the model file ([`check_model`]: missing, not GGML, cut short, damaged are each
    /// their own error) and loads it on the CPU (or the GPU in a `cuda` build).
    pub fn load(model_path: &Path) -> Result<WhisperTranscriber> {
        let info = check_model(model_path)?;
        // whisper.cpp and GGML log to stderr by default (model details, timings, the detected
        // language). Route those logs into whisper-rs's hooks, which drop them (no `log` or
        // `tracing` backend is enabled): nothing about a recording reaches a terminal or a log.
        QUIET.call_once(whisper_rs::install_logging_hooks);
        let mut params = WhisperContextParameters::default();
        params.use_gpu(cfg!(feature = "cuda"));
        // whisper.cpp's own default (whisper-rs turns it off): faster on the CPU too.
        params.flash_attn(true);
        let ctx = WhisperContext::new_with_params(model_path, params)
            .map_err(|_| Error::ModelLoad(model_path.to_path_buf()))?;
        let state = ctx
            .create_state()
            .map_err(|e| Error::Whisper(format!("could not create a decoding state ({e:?})")))?;
        Ok(WhisperTranscriber { ctx, state, info })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Fails early when a language is forced that the model cannot do.
    pub fn check_language(&self, language: Language) -> Result<()> {
        match language {
            Language::Ko if !self.info.multilingual => {
                Err(Error::ModelLanguage(self.model_name(), "ko".into()))
            }
            _ => Ok(()),
        }
    }
}

/// Called by whisper.cpp on the calling thread at the start of each 30-second decode.
unsafe extern "C" fn on_progress(
    _: *mut WhisperSysContext,
    _: *mut WhisperSysState,
    progress: c_int,
    user_data: *mut c_void,
) {
    // SAFETY: `user_data` is the `&mut WindowHooks` that `transcribe_window` passed; it outlives
    // the `full` call that calls this, and nothing else touches it during that call.
    let hooks = unsafe { &mut *(user_data as *mut WindowHooks<'_>) };
    // A panic must not unwind into C: treat it as a request to stop.
    let go_on = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (hooks.progress)(progress.clamp(0, 100) as f32 / 100.0)
    }));
    if !matches!(go_on, Ok(true)) {
        hooks.stop.store(true, Ordering::SeqCst);
    }
}

/// Called by GGML during computation (possibly from its worker threads): stop when set.
unsafe extern "C" fn on_abort(user_data: *mut c_void) -> bool {
    // SAFETY: `user_data` is the `&AtomicBool` from the hooks, alive for the whole `full` call.
    let stop = unsafe { &*(user_data as *const AtomicBool) };
    stop.load(Ordering::SeqCst)
}

impl Transcriber for WhisperTranscriber {
    fn transcribe_window(
        &mut self,
        pcm: &[f32],
        opts: &WindowOptions,
        hooks: &mut WindowHooks<'_>,
    ) -> Result<Vec<Segment>> {
        self.check_language(opts.language)?;
        if pcm.is_empty() {
            return Ok(Vec::new());
        }
        if hooks.stop.load(Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(opts.threads.max(1) as c_int);
        let lang = match (opts.language.code(), self.info.multilingual) {
            (Some(code), _) => code,
            (None, true) => "auto",
            (None, false) => "en",
        };
        params.set_language(Some(lang));
        params.set_translate(false);
        // Every window starts afresh: whisper.cpp would otherwise carry the previous call's text
        // over as a prompt (`no_context` only clears it at the start of a call), and a resumed
        // run, which has no previous call, would then differ from an uninterrupted one.
        params.set_no_context(true);
        // Conditioning on the text before, between the 30-second decodes inside the window.
        if !opts.use_context {
            params.set_n_max_text_ctx(0);
        }
        params.set_temperature(opts.temperature);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        let stop_ptr = hooks.stop as *const AtomicBool as *mut c_void;
        let hooks_ptr = hooks as *mut WindowHooks<'_> as *mut c_void;
        // SAFETY: the callbacks match whisper.cpp's signatures, and their user data (the hooks and
        // the stop flag, see `on_progress` and `on_abort`) outlive `full` below, which is the only
        // caller; `params` is consumed by `full`.
        unsafe {
            params.set_progress_callback(Some(on_progress));
            params.set_progress_callback_user_data(hooks_ptr);
            params.set_abort_callback(Some(on_abort));
            params.set_abort_callback_user_data(stop_ptr);
        }
        let result = self.state.full(params, pcm);
        if hooks.stop.load(Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        result.map_err(|e| Error::Whisper(format!("{e:?}")))?;
        let language =
            whisper_rs::get_lang_str(self.state.full_lang_id_from_state()).map(str::to_string);
        let eot = self.ctx.token_eot();
        let n = self.state.full_n_segments();
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for i in 0..n {
            let Some(seg) = self.state.get_segment(i) else {
                continue;
            };
            // Timestamps are in units of 10 ms.
            let start_ms = seg.start_timestamp().max(0) as u64 * 10;
            let end_ms = (seg.end_timestamp().max(0) as u64 * 10).max(start_ms);
            let text = seg
                .to_str_lossy()
                .map_err(|e| Error::Whisper(format!("{e:?}")))?
                .trim()
                .to_string();
            if text.is_empty() || is_blank_marker(&text) {
                continue;
            }
            let (mut sum, mut count) = (0f32, 0u32);
            for t in 0..seg.n_tokens() {
                if let Some(tok) = seg.get_token(t) {
                    // Special tokens (timestamps, language, end of text) come after `eot`.
                    if tok.token_id() < eot {
                        sum += tok.token_probability();
                        count += 1;
                    }
                }
            }
            let confidence = (count > 0).then(|| (sum / count as f32).clamp(0.0, 1.0));
            out.push(Segment {
                start_ms,
                end_ms,
                text,
                language: language.clone(),
                confidence,
            });
        }
        Ok(out)
    }

    fn model_name(&self) -> String {
        self.info
            .path
            .file_name()
            .map_or_else(|| "model".to_string(), |n| n.to_string_lossy().into_owned())
    }
}

/// whisper.cpp writes "[BLANK_AUDIO]" as a segment's text for silence (English models do); it
/// is not speech, so it would only clutter the transcript and its search.
fn is_blank_marker(text: &str) -> bool {
    text.eq_ignore_ascii_case("[BLANK_AUDIO]")
}

#[cfg(test)]
mod tests {
    use super::is_blank_marker;

    #[test]
    fn only_whispers_silence_marker_is_dropped() {
        assert!(is_blank_marker("[BLANK_AUDIO]"));
        assert!(is_blank_marker("[blank_audio]"));
        assert!(!is_blank_marker("The guard said [BLANK_AUDIO] twice."));
        assert!(!is_blank_marker("[Music]"));
        assert!(!is_blank_marker("blank audio"));
    }
}
