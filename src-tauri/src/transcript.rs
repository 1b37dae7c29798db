//! The translator's review of a transcript: thin functions over the session, one per command.
//! Every rule (consent, text limits, audit, history, redaction) is the core's
//! (`testimony_core::transcript`); these only translate arguments and shape answers.
//! Nothing here logs or returns text other than to the UI that asked for it.

use std::path::Path;

use serde::Serialize;
use testimony_core::Error;
use testimony_core::transcript::{
    RedactionField, SegmentVersion, Speaker, Transcript, TranscriptFormat, TranscriptSegment,
};

use crate::error::AppError;
use crate::ops::Session;

/// Where an exported transcript went.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TranscriptExport {
    pub path: String,
    pub segments: usize,
}

fn speaker(code: Option<&str>) -> Result<Option<Speaker>, AppError> {
    match code.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => Speaker::parse(c)
            .map(Some)
            .ok_or_else(|| AppError::with_detail("invalid", "unknown speaker")),
    }
}

impl Session {
    pub fn transcripts(&mut self, recording_id: &str) -> Result<Vec<Transcript>, AppError> {
        Ok(self.vault()?.transcripts(recording_id)?)
    }

    /// Segments in time order (the core's order: by start, then sequence).
    pub fn segments(&mut self, transcript_id: &str) -> Result<Vec<TranscriptSegment>, AppError> {
        let mut v = self.vault()?.transcript_segments(transcript_id)?;
        v.sort_by_key(|s| (s.start_ms, s.seq));
        Ok(v)
    }

    pub fn edit_segment_text(
        &mut self,
        segment_id: &str,
        text: &str,
    ) -> Result<TranscriptSegment, AppError> {
        Ok(self.vault()?.edit_segment_text(segment_id, text)?)
    }

    /// A blank translation clears it (a translator emptying the field means "none").
    pub fn set_segment_translation(
        &mut self,
        segment_id: &str,
        text: &str,
        language: &str,
    ) -> Result<TranscriptSegment, AppError> {
        let v = self.vault()?;
        if text.trim().is_empty() {
            let s = v.transcript_segment(segment_id)?;
            if s.translation.is_none() {
                return Ok(s);
            }
            return Ok(v.clear_segment_translation(segment_id)?);
        }
        Ok(v.set_segment_translation(segment_id, text, language)?)
    }

    pub fn set_segment_speaker(
        &mut self,
        segment_id: &str,
        code: Option<&str>,
    ) -> Result<TranscriptSegment, AppError> {
        let sp = speaker(code)?;
        Ok(self.vault()?.set_segment_speaker(segment_id, sp)?)
    }

    pub fn set_segment_reviewed(
        &mut self,
        segment_id: &str,
        reviewed: bool,
    ) -> Result<TranscriptSegment, AppError> {
        Ok(self.vault()?.set_segment_reviewed(segment_id, reviewed)?)
    }

    pub fn split_segment(
        &mut self,
        segment_id: &str,
        at_ms: u64,
        text_at: u32,
        translation_at: Option<u32>,
    ) -> Result<Vec<TranscriptSegment>, AppError> {
        let (a, b) = self
            .vault()?
            .split_segment(segment_id, at_ms, text_at, translation_at)?;
        Ok(vec![a, b])
    }

    pub fn merge_segments(
        &mut self,
        first_id: &str,
        second_id: &str,
    ) -> Result<TranscriptSegment, AppError> {
        Ok(self.vault()?.merge_segments(first_id, second_id)?)
    }

    /// Marks characters `[start, end)` of the text or translation to hide in exports meant for
    /// publication; returns the segment as it now is.
    pub fn add_redaction(
        &mut self,
        segment_id: &str,
        field: &str,
        start: u32,
        end: u32,
        label: &str,
    ) -> Result<TranscriptSegment, AppError> {
        let field = match field {
            "text" => RedactionField::Text,
            "translation" => RedactionField::Translation,
            _ => {
                return Err(testimony_core::Error::invalid(
                    "a redaction marks the text or the translation".into(),
                )
                .into());
            }
        };
        let v = self.vault()?;
        v.add_redaction(segment_id, field, start, end, label)?;
        Ok(v.transcript_segment(segment_id)?)
    }

    pub fn remove_redaction(
        &mut self,
        segment_id: &str,
        redaction_id: &str,
    ) -> Result<TranscriptSegment, AppError> {
        Ok(self.vault()?.remove_redaction(segment_id, redaction_id)?)
    }

    pub fn segment_history(&mut self, segment_id: &str) -> Result<Vec<SegmentVersion>, AppError> {
        Ok(self.vault()?.segment_history(segment_id)?)
    }

    /// Writes the transcript as a new plaintext file in `dest_dir` (an existing absolute
    /// folder the user picked, as for bundles). Refuses to overwrite; on failure the partial
    /// file is removed.
    pub fn export_transcript(
        &mut self,
        transcript_id: &str,
        format: &str,
        redact: bool,
        dest_dir: &str,
    ) -> Result<TranscriptExport, AppError> {
        let fmt = TranscriptFormat::parse(format)
            .ok_or_else(|| AppError::with_detail("invalid", "unknown format"))?;
        let dest = Path::new(dest_dir.trim());
        if dest_dir.trim().is_empty() || !dest.is_absolute() || !dest.is_dir() {
            return Err(AppError::code("bad_destination"));
        }
        let v = self.vault()?;
        v.transcript(transcript_id)?;
        let ext = match fmt {
            TranscriptFormat::Text => "txt",
            TranscriptFormat::Srt => "srt",
            TranscriptFormat::Vtt => "vtt",
            TranscriptFormat::Bilingual => "html",
        };
        let stamp: String = testimony_core::vault::now()
            .chars()
            .filter(|c| c.is_ascii_digit())
            .take(14)
            .collect();
        let short: String = transcript_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        let suffix = if redact { "-redacted" } else { "" };
        let out = dest.join(format!("transcript-{short}-{stamp}{suffix}.{ext}"));
        // Owner-only, fsynced, removed on failure: the core's one writer for plaintext.
        let segments = testimony_core::io_util::write_private_file(&out, |w| {
            Ok(v.export_transcript(transcript_id, fmt, redact, w)? as u64)
        })
        .map_err(|e| match e {
            Error::CannotCreate { .. } => AppError::code("bad_destination"),
            e => e.into(),
        })?;
        Ok(TranscriptExport {
            path: out.to_string_lossy().into_owned(),
            segments: segments as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::NewInterviewArgs;
    use crate::slots::AudioSlot;
    use testimony_core::model::{ConsentMethod, ConsentScopes, WitnessProfile};
    use testimony_core::transcript::NewSegment;

    const PASS: &str = "a long enough passphrase for tests";

    /// A mono 16-bit WAV of `seconds` of a quiet tone, in memory.
    fn wav(seconds: u32) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        for i in 0..16_000 * seconds {
            w.write_sample(
                ((i as f32 / 16_000.0 * 440.0 * std::f32::consts::TAU).sin() * 8_000.0) as i16,
            )
            .unwrap();
        }
        w.finalize().unwrap();
        buf.into_inner()
    }

    fn seg(start_ms: u64, end_ms: u64, text: &str) -> NewSegment {
        NewSegment {
            start_ms,
            end_ms,
            text: text.into(),
            language: Some("ko".into()),
            confidence: None,
        }
    }

    /// A vault with an imported recording and a finished two-window transcript of it.
    fn setup() -> (tempfile::TempDir, Session, String, String) {
        let t = tempfile::tempdir().unwrap();
        let mut s = Session::new(t.path().join("vault"), AudioSlot::default());
        s.create_vault(PASS, "Kim").unwrap();
        let w = s.create_witness(WitnessProfile::default()).unwrap();
        let scopes = ConsentScopes {
            record_audio: true,
            transcribe: true,
            ..Default::default()
        };
        s.set_consent(&w.code, scopes, ConsentMethod::Oral).unwrap();
        let i = s
            .new_interview(NewInterviewArgs {
                witness: w.code,
                languages: vec!["ko".into()],
                place: None,
                interpreter: None,
            })
            .unwrap();
        let v = s.vault().unwrap();
        let rec = v
            .import_wav(&i.meta.id, std::io::Cursor::new(wav(4)))
            .unwrap();
        let tr = v
            .start_transcript(&rec.meta.id, "test-model", Some("ko"), 2_000)
            .unwrap();
        v.save_transcript_window(
            &tr.meta.id,
            1,
            &[seg(2_000, 3_900, "셋째"), seg(2_500, 3_000, "넷째")],
        )
        .unwrap();
        v.save_transcript_window(
            &tr.meta.id,
            0,
            &[seg(0, 900, "첫째 문장"), seg(1_000, 1_900, "둘째")],
        )
        .unwrap();
        v.finish_transcript(&tr.meta.id, 2).unwrap();
        (t, s, rec.meta.id, tr.meta.id)
    }

    #[test]
    fn list_edit_translate_speaker_review_and_history() {
        let (_t, mut s, rec, tr) = setup();
        let list = s.transcripts(&rec).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].meta.id, tr);
        let segs = s.segments(&tr).unwrap();
        assert_eq!(
            segs.iter().map(|x| x.start_ms).collect::<Vec<_>>(),
            vec![0, 1_000, 2_000, 2_500],
            "time order"
        );
        let id = segs[0].meta.id.clone();

        let e = s.edit_segment_text(&id, "첫째 문장입니다").unwrap();
        assert_eq!(e.text, "첫째 문장입니다");
        assert_eq!(e.machine_text.as_deref(), Some("첫째 문장"));
        let e = s
            .set_segment_translation(&id, "The first sentence", "en")
            .unwrap();
        assert_eq!(e.translation.as_deref(), Some("The first sentence"));
        assert_eq!(e.translation_language.as_deref(), Some("en"));
        let e = s.set_segment_speaker(&id, Some("witness")).unwrap();
        assert_eq!(e.speaker, Some(Speaker::Witness));
        assert_eq!(
            s.set_segment_speaker(&id, Some("narrator"))
                .unwrap_err()
                .code,
            "invalid"
        );
        let e = s.set_segment_reviewed(&id, true).unwrap();
        assert!(e.reviewed);
        // A blank translation clears it; clearing nothing changes nothing.
        let e = s.set_segment_translation(&id, "  ", "en").unwrap();
        assert_eq!(e.translation, None);
        let before = s.segment_history(&id).unwrap().len();
        s.set_segment_translation(&id, "", "en").unwrap();
        assert_eq!(s.segment_history(&id).unwrap().len(), before);
        let h = s.segment_history(&id).unwrap();
        let actions: Vec<&str> = h.iter().map(|v| v.action.as_str()).collect();
        for a in [
            "edit",
            "translate",
            "speaker",
            "review",
            "clear_translation",
        ] {
            assert!(actions.contains(&a), "history has {a}: {actions:?}");
        }
        assert!(h.iter().all(|v| v.actor == "Kim"));
        // Core validation comes back as a code.
        assert_eq!(
            s.edit_segment_text("no-such-segment", "x")
                .unwrap_err()
                .code,
            "not_found"
        );
        s.lock();
        assert_eq!(s.segments(&tr).unwrap_err().code, "locked");
    }

    #[test]
    fn split_merge_and_export_to_a_picked_folder() {
        let (t, mut s, _rec, tr) = setup();
        let segs = s.segments(&tr).unwrap();
        let parts = s.split_segment(&segs[0].meta.id, 400, 2, None).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].start_ms, 400);
        assert_eq!(s.segments(&tr).unwrap().len(), 5);
        let m = s
            .merge_segments(&parts[0].meta.id, &parts[1].meta.id)
            .unwrap();
        assert_eq!((m.start_ms, m.end_ms), (0, 900));
        assert_eq!(s.segments(&tr).unwrap().len(), 4);

        let dir = t.path().join("out");
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(
            s.export_transcript(&tr, "srt", false, "relative")
                .unwrap_err()
                .code,
            "bad_destination"
        );
        assert_eq!(
            s.export_transcript(&tr, "docx", false, dir.to_str().unwrap())
                .unwrap_err()
                .code,
            "invalid"
        );
        let r = s
            .export_transcript(&tr, "srt", false, dir.to_str().unwrap())
            .unwrap();
        assert_eq!(r.segments, 4);
        assert!(r.path.ends_with(".srt"));
        let body = std::fs::read_to_string(&r.path).unwrap();
        assert!(body.contains("00:00:00,000 --> 00:00:00,900"));
        let r = s
            .export_transcript(&tr, "bilingual", true, dir.to_str().unwrap())
            .unwrap();
        assert!(r.path.ends_with("-redacted.html"));
        assert_eq!(
            s.export_transcript("no-such", "txt", false, dir.to_str().unwrap())
                .unwrap_err()
                .code,
            "not_found"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "a refused export leaves no file"
        );
    }

    #[test]
    fn a_marked_name_is_hidden_in_the_publication_export_and_can_be_shown_again() {
        let (t, mut s, _rec, tr) = setup();
        let id = s.segments(&tr).unwrap()[0].meta.id.clone(); // "첫째 문장"
        let e = s.add_redaction(&id, "text", 0, 2, "name").unwrap();
        assert_eq!(e.redactions.len(), 1);
        assert_eq!(
            (
                e.redactions[0].start,
                e.redactions[0].end,
                e.redactions[0].label.as_str()
            ),
            (0, 2, "name")
        );
        // Bad input: a field that does not exist, a span outside the text, a bad label.
        assert_eq!(
            s.add_redaction(&id, "title", 0, 1, "name")
                .unwrap_err()
                .code,
            "invalid"
        );
        assert_eq!(
            s.add_redaction(&id, "text", 3, 99, "name")
                .unwrap_err()
                .code,
            "invalid"
        );
        assert_eq!(
            s.add_redaction(&id, "text", 0, 1, "Name!")
                .unwrap_err()
                .code,
            "invalid"
        );
        assert_eq!(
            s.segments(&tr).unwrap()[0].redactions.len(),
            1,
            "refusals changed nothing"
        );
        let dir = t.path().join("out");
        std::fs::create_dir(&dir).unwrap();
        let r = s
            .export_transcript(&tr, "text", true, dir.to_str().unwrap())
            .unwrap();
        let body = std::fs::read_to_string(&r.path).unwrap();
        assert!(
            body.contains("[name] 문장") && !body.contains("첫째"),
            "{body}"
        );
        let e = s.remove_redaction(&id, &e.redactions[0].id).unwrap();
        assert!(e.redactions.is_empty());
        assert_eq!(
            s.remove_redaction(&id, "no-such").unwrap_err().code,
            "not_found"
        );
        let actions: Vec<String> = s
            .segment_history(&id)
            .unwrap()
            .into_iter()
            .map(|v| v.action)
            .collect();
        assert!(
            actions.contains(&"redact".to_string()) && actions.contains(&"unredact".to_string()),
            "{actions:?}"
        );
    }
}
