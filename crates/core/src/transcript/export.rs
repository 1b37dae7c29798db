//! Transcript exports: plain text, SRT, WebVTT and a bilingual HTML page. All plaintext on
//! purpose (docs/threat-model.md); the caller chooses where it goes, through
//! `io_util::write_private_file` in the front-ends.

use super::*;

/// Export formats. All are UTF-8 text written to a writer the caller chose; they are plaintext
/// on purpose (see docs/threat-model.md): the caller decides where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptFormat {
    /// One line per segment: `[HH:MM:SS] Speaker: text`.
    Text,
    /// SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
    Srt,
    /// WebVTT: `WEBVTT` header, cues `HH:MM:SS.mmm --> HH:MM:SS.mmm`, speaker as a `<v>` tag.
    Vtt,
    /// A self-contained HTML5 document with one table row per segment (time, speaker,
    /// original, translation): opens in any browser and in word processors, which import it
    /// for reports; text is escaped, and the file has no scripts and loads nothing.
    Bilingual,
}

impl TranscriptFormat {
    pub fn parse(s: &str) -> Option<TranscriptFormat> {
        match s {
            "txt" | "text" => Some(TranscriptFormat::Text),
            "srt" => Some(TranscriptFormat::Srt),
            "vtt" => Some(TranscriptFormat::Vtt),
            "bilingual" | "html" => Some(TranscriptFormat::Bilingual),
            _ => None,
        }
    }
}

/// The segment's text or translation, with its redaction spans replaced by `[label]` when
/// `redact` is set.
pub fn rendered(s: &TranscriptSegment, field: RedactionField, redact: bool) -> Option<String> {
    let text = match field {
        RedactionField::Text => s.text.as_str(),
        RedactionField::Translation => s.translation.as_deref()?,
    };
    if !redact {
        return Some(text.to_string());
    }
    let mut spans: Vec<&Redaction> = s.redactions.iter().filter(|r| r.field == field).collect();
    spans.sort_by_key(|r| r.start);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut at = 0usize;
    for r in spans {
        let (start, end) = (
            (r.start as usize).clamp(at, chars.len()),
            (r.end as usize).min(chars.len()),
        );
        out.extend(&chars[at..start]);
        if end > start {
            out.push_str(&format!("[{}]", r.label));
        }
        at = at.max(end);
    }
    out.extend(&chars[at.min(chars.len())..]);
    Some(out)
}

fn clock(ms: u64, sep: char) -> String {
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn speaker_label(s: Option<Speaker>) -> &'static str {
    match s {
        Some(Speaker::Interviewer) => "Interviewer",
        Some(Speaker::Witness) => "Witness",
        Some(Speaker::Interpreter) => "Interpreter",
        None => "",
    }
}

/// Cue text for SRT and WebVTT: no empty line (it would end the cue).
fn cue_lines(t: &str) -> String {
    t.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn html_escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

impl Vault {
    /// Writes a transcript to `out` in `format`. With `redact`, every marked span is replaced
    /// by `[label]` (e.g. `[name]`). Returns the number of segments written. Nothing is written
    /// anywhere else; the caller picks the writer (a file, stdout, a buffer).
    pub fn export_transcript(
        &self,
        transcript_id: &str,
        format: TranscriptFormat,
        redact: bool,
        mut out: impl std::io::Write,
    ) -> Result<usize> {
        let t = self.transcript(transcript_id)?;
        let segs = self.transcript_segments(transcript_id)?;
        let text =
            |s: &TranscriptSegment| rendered(s, RedactionField::Text, redact).unwrap_or_default();
        let translation = |s: &TranscriptSegment| rendered(s, RedactionField::Translation, redact);
        match format {
            TranscriptFormat::Text => {
                for s in &segs {
                    let who = speaker_label(s.speaker);
                    let body = cue_lines(&text(s)).replace('\n', " ");
                    if who.is_empty() {
                        writeln!(out, "[{}] {body}", &clock(s.start_ms, '.')[..8])?;
                    } else {
                        writeln!(out, "[{}] {who}: {body}", &clock(s.start_ms, '.')[..8])?;
                    }
                }
            }
            TranscriptFormat::Srt => {
                for (n, s) in segs.iter().enumerate() {
                    let who = speaker_label(s.speaker);
                    let prefix = if who.is_empty() {
                        String::new()
                    } else {
                        format!("{who}: ")
                    };
                    write!(
                        out,
                        "{}\r\n{} --> {}\r\n{prefix}{}\r\n\r\n",
                        n + 1,
                        clock(s.start_ms, ','),
                        clock(s.end_ms, ','),
                        cue_lines(&text(s)).replace('\n', "\r\n")
                    )?;
                }
            }
            TranscriptFormat::Vtt => {
                write!(out, "WEBVTT\n\n")?;
                for s in &segs {
                    let who = speaker_label(s.speaker);
                    let voice = if who.is_empty() {
                        String::new()
                    } else {
                        format!("<v {who}>")
                    };
                    write!(
                        out,
                        "{} --> {}\n{voice}{}\n\n",
                        clock(s.start_ms, '.'),
                        clock(s.end_ms, '.'),
                        html_escape(&cue_lines(&text(s))).replace("<br>", "\n")
                    )?;
                }
            }
            TranscriptFormat::Bilingual => {
                let lang = t
                    .language
                    .as_deref()
                    .or_else(|| segs.iter().find_map(|s| s.language.as_deref()))
                    .unwrap_or("und");
                let tr_lang = segs
                    .iter()
                    .find_map(|s| s.translation_language.as_deref())
                    .unwrap_or("und");
                write!(
                    out,
                    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Transcript {}</title>\n\
                     <style>table{{border-collapse:collapse}}td,th{{border:1px solid #888;padding:4px;vertical-align:top}}</style>\n\
                     </head>\n<body>\n<table>\n<thead><tr><th>Time</th><th>Speaker</th><th>Original ({})</th><th>Translation ({})</th></tr></thead>\n<tbody>\n",
                    html_escape(&t.meta.id),
                    html_escape(lang),
                    html_escape(tr_lang)
                )?;
                for s in &segs {
                    writeln!(
                        out,
                        "<tr><td>{} – {}</td><td>{}</td><td lang=\"{}\">{}</td><td lang=\"{}\">{}</td></tr>",
                        clock(s.start_ms, '.'),
                        clock(s.end_ms, '.'),
                        speaker_label(s.speaker),
                        html_escape(s.language.as_deref().unwrap_or(lang)),
                        html_escape(&text(s)),
                        html_escape(s.translation_language.as_deref().unwrap_or(tr_lang)),
                        html_escape(&translation(s).unwrap_or_default()),
                    )?;
                }
                write!(out, "</tbody>\n</table>\n</body>\n</html>\n")?;
            }
        }
        out.flush()?;
        Ok(segs.len())
    }
}
