//! `testimony transcript …`: reading, reviewing, translating and exporting the transcripts
//! stored in the vault. Every rule is the core's (testimony_core::transcript); this only
//! parses arguments and prints. Text arguments accept `-` to read standard input, which keeps
//! testimony out of the process list and the shell history.

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde_json::json;
use testimony_core::Error;
use testimony_core::transcript::{
    RedactionField, Speaker, Transcript, TranscriptFormat, TranscriptSegment, TranscriptStatus,
};

use crate::{Cli, Out, arg_or_stdin, open};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    Txt,
    Srt,
    Vtt,
    /// HTML table: time, speaker, original, translation.
    Bilingual,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum SpeakerArg {
    Interviewer,
    Witness,
    Interpreter,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum FieldArg {
    Text,
    Translation,
}

#[derive(Subcommand)]
pub(crate) enum TranscriptCmd {
    /// A recording's transcripts.
    List { recording: String },
    /// A transcript and its segments (ids, times, speaker, text, translation, redactions).
    Show { transcript: String },
    /// Correct a segment's text (the model's text is kept in its history).
    Edit {
        segment: String,
        /// The new text; `-` reads it from standard input.
        #[arg(long)]
        text: String,
    },
    /// Write or replace a segment's translation (or remove it with --clear).
    Translate {
        segment: String,
        /// The translation; `-` reads it from standard input.
        #[arg(long, required_unless_present = "clear", conflicts_with = "clear")]
        text: Option<String>,
        /// Language of the translation.
        #[arg(long, default_value = "en")]
        language: String,
        #[arg(long)]
        clear: bool,
    },
    /// Say who speaks in a segment.
    Speaker {
        segment: String,
        #[arg(value_enum)]
        speaker: SpeakerArg,
    },
    /// Mark a segment reviewed (or, with --undo, not reviewed).
    Review {
        segment: String,
        #[arg(long)]
        undo: bool,
    },
    /// Split a segment in two at a time and a character position of its text.
    Split {
        segment: String,
        /// Milliseconds from the start of the recording, strictly inside the segment.
        #[arg(long, value_name = "MS")]
        at_ms: u64,
        /// Character position in the text where the second part begins.
        #[arg(long, value_name = "N")]
        text_at: u32,
        /// Character position in the translation (required when there is one).
        #[arg(long, value_name = "N")]
        translation_at: Option<u32>,
    },
    /// Merge two neighbouring segments into one.
    Merge { first: String, second: String },
    /// Mark characters [START, END) of the text or translation to hide in redacted exports,
    /// or remove a mark with --remove ID.
    Redact {
        segment: String,
        #[arg(long, value_enum, default_value = "text")]
        field: FieldArg,
        #[arg(long, required_unless_present = "remove")]
        start: Option<u32>,
        #[arg(long, required_unless_present = "remove")]
        end: Option<u32>,
        #[arg(
            long,
            default_value = "name",
            help = "What is hidden: name, place, … (shown as [label])."
        )]
        label: String,
        /// Remove the redaction with this id instead.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        remove: Option<String>,
    },
    /// Every version of a segment: the model's text, each correction and translation, by whom
    /// and when.
    History { segment: String },
    /// Write a transcript as plain text, SRT, WebVTT or a bilingual HTML table. The output is
    /// NOT encrypted.
    Export {
        transcript: String,
        #[arg(long, value_enum)]
        format: FormatArg,
        #[arg(long, help = "Replace marked spans with [label] (for publication).")]
        redact: bool,
        /// Output file (must not exist); without it, standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Delete a transcript with its segments and their history.
    Delete { transcript: String },
}

fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

fn transcript_line(t: &Transcript) -> String {
    let status = match t.status {
        TranscriptStatus::Running => format!("running ({} windows done)", t.windows_done),
        TranscriptStatus::Done => format!(
            "done ({} windows)",
            t.windows_total.unwrap_or(t.windows_done)
        ),
    };
    format!(
        "{}  model {}  language {}  {status}  created {}",
        t.meta.id,
        t.model,
        t.language.as_deref().unwrap_or("auto"),
        t.meta.created_at
    )
}

fn segment_block(s: &TranscriptSegment) -> String {
    let mut out = format!(
        "{}  {} – {}  {}{}  v{}",
        s.meta.id,
        clock(s.start_ms),
        clock(s.end_ms),
        s.speaker.map_or("-", Speaker::code),
        if s.reviewed { "  reviewed" } else { "" },
        s.meta.version
    );
    out.push_str(&format!("\n  text: {}", s.text));
    if let Some(t) = &s.translation {
        out.push_str(&format!(
            "\n  translation ({}): {t}",
            s.translation_language.as_deref().unwrap_or("?")
        ));
    }
    for r in &s.redactions {
        out.push_str(&format!(
            "\n  redaction {}  {} {}..{}  [{}]",
            r.id,
            r.field.code(),
            r.start,
            r.end,
            r.label
        ));
    }
    out
}

pub(crate) fn run(cli: &Cli, out: &Out, c: &TranscriptCmd) -> Result<(), Error> {
    match c {
        TranscriptCmd::List { recording } => {
            let v = open(cli)?;
            let list = v.transcripts(recording)?;
            out.print(&list, |l| {
                if l.is_empty() {
                    "No transcripts.".into()
                } else {
                    l.iter().map(transcript_line).collect::<Vec<_>>().join("\n")
                }
            });
        }
        TranscriptCmd::Show { transcript } => {
            let v = open(cli)?;
            let t = v.transcript(transcript)?;
            let segments = v.transcript_segments(transcript)?;
            let doc = json!({"transcript": t, "segments": segments});
            out.print(&doc, |_| {
                let mut s = transcript_line(&t);
                for seg in &segments {
                    s.push('\n');
                    s.push_str(&segment_block(seg));
                }
                s
            });
        }
        TranscriptCmd::Edit { segment, text } => {
            let text = arg_or_stdin(text)?;
            let mut v = open(cli)?;
            let s = v.edit_segment_text(segment, &text)?;
            out.print(&s, segment_block);
        }
        TranscriptCmd::Translate {
            segment,
            text,
            language,
            clear,
        } => {
            let text = text.as_deref().map(arg_or_stdin).transpose()?;
            let mut v = open(cli)?;
            let s = match (clear, text) {
                (true, _) => v.clear_segment_translation(segment)?,
                (false, Some(t)) => v.set_segment_translation(segment, &t, language)?,
                (false, None) => return Err(Error::invalid("give --text or --clear".into())),
            };
            out.print(&s, segment_block);
        }
        TranscriptCmd::Speaker { segment, speaker } => {
            let sp = match speaker {
                SpeakerArg::Interviewer => Some(Speaker::Interviewer),
                SpeakerArg::Witness => Some(Speaker::Witness),
                SpeakerArg::Interpreter => Some(Speaker::Interpreter),
                SpeakerArg::None => None,
            };
            let mut v = open(cli)?;
            let s = v.set_segment_speaker(segment, sp)?;
            out.print(&s, segment_block);
        }
        TranscriptCmd::Review { segment, undo } => {
            let mut v = open(cli)?;
            let s = v.set_segment_reviewed(segment, !undo)?;
            out.print(&s, segment_block);
        }
        TranscriptCmd::Split {
            segment,
            at_ms,
            text_at,
            translation_at,
        } => {
            let mut v = open(cli)?;
            let (a, b) = v.split_segment(segment, *at_ms, *text_at, *translation_at)?;
            out.print(&json!([a, b]), |_| {
                format!("{}\n{}", segment_block(&a), segment_block(&b))
            });
        }
        TranscriptCmd::Merge { first, second } => {
            let mut v = open(cli)?;
            let s = v.merge_segments(first, second)?;
            out.print(&s, segment_block);
        }
        TranscriptCmd::Redact {
            segment,
            field,
            start,
            end,
            label,
            remove,
        } => {
            let mut v = open(cli)?;
            match (remove, start, end) {
                (Some(id), _, _) => {
                    let s = v.remove_redaction(segment, id)?;
                    out.print(&s, segment_block);
                }
                (None, Some(start), Some(end)) => {
                    let f = match field {
                        FieldArg::Text => RedactionField::Text,
                        FieldArg::Translation => RedactionField::Translation,
                    };
                    let r = v.add_redaction(segment, f, *start, *end, label)?;
                    out.print(&r, |r| r.id.clone());
                }
                _ => {
                    return Err(Error::invalid(
                        "give --start and --end, or --remove ID".into(),
                    ));
                }
            }
        }
        TranscriptCmd::History { segment } => {
            let v = open(cli)?;
            let h = v.segment_history(segment)?;
            out.print(&h, |h| {
                h.iter()
                    .map(|e| {
                        let mut s = format!(
                            "{}  {}  {}  v{}",
                            e.at, e.actor, e.action, e.segment.meta.version
                        );
                        if let Some(r) = &e.related_segment {
                            s.push_str(&format!(" (with {r})"));
                        }
                        s.push_str(&format!("\n  text: {}", e.segment.text));
                        if let Some(t) = &e.segment.translation {
                            s.push_str(&format!(
                                "\n  translation ({}): {t}",
                                e.segment.translation_language.as_deref().unwrap_or("?")
                            ));
                        }
                        s
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        TranscriptCmd::Export {
            transcript,
            format,
            redact,
            out: file,
        } => {
            let f = match format {
                FormatArg::Txt => TranscriptFormat::Text,
                FormatArg::Srt => TranscriptFormat::Srt,
                FormatArg::Vtt => TranscriptFormat::Vtt,
                FormatArg::Bilingual => TranscriptFormat::Bilingual,
            };
            let v = open(cli)?;
            v.transcript(transcript)?;
            match file {
                Some(path) => {
                    let n = testimony_core::io_util::write_private_file(path, |w| {
                        Ok(v.export_transcript(transcript, f, *redact, w)? as u64)
                    })?;
                    eprintln!(
                        "warning: {} holds the transcript as plaintext{}, readable by anyone who can read the file. Keep it off shared and synced folders and delete it when done.",
                        path.display(),
                        if *redact {
                            " (marked spans redacted)"
                        } else {
                            ""
                        }
                    );
                    out.print(&json!({"path": path, "segments": n, "redacted": redact, "plaintext": true}), |_| format!("Wrote {} ({n} segments).", path.display()));
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut lock = stdout.lock();
                    match v.export_transcript(transcript, f, *redact, &mut lock) {
                        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            std::process::exit(0)
                        }
                        r => {
                            r?;
                        }
                    }
                    lock.flush()?;
                }
            }
        }
        TranscriptCmd::Delete { transcript } => {
            let mut v = open(cli)?;
            v.delete_transcript(transcript)?;
            out.print(&json!({"deleted": transcript}), |_| "deleted".into());
        }
    }
    Ok(())
}
