//! `testimony record` and `testimony recording …`: audio recorded straight into the vault.
//! Audio leaves the vault only through `recording export-wav`, which says so on stderr.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use testimony_core::Error;
use testimony_core::audio::{Marker, Recording, RecordingStatus, Segment};

use crate::{Cli, Out, arg_or_stdin, open};

#[derive(Args)]
pub(crate) struct RecordArgs {
    /// Interview id.
    interview: String,
    /// Import a WAV file as a new recording (headless use, tests). 16-bit files are stored
    /// exactly; other sample formats are converted to 16 bits.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "seconds",
        required_unless_present = "seconds"
    )]
    from_wav: Option<PathBuf>,
    /// Record this many seconds from the default audio input (mono, at the device's rate).
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
}

#[derive(Subcommand)]
pub(crate) enum RecordingCmd {
    /// An interview's recordings.
    List { interview: String },
    /// One recording: details, segments (pauses) and markers.
    Show { recording: String },
    /// Write a recording to a WAV file. The file is NOT encrypted: anyone who can read it can
    /// listen to the testimony.
    ExportWav {
        recording: String,
        /// Output file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Mark a moment of a recording, optionally tied to a question.
    Marker {
        recording: String,
        /// Milliseconds from the start of the recording.
        #[arg(long, value_name = "MS")]
        at: u64,
        /// A short label; `-` reads it from standard input.
        #[arg(long)]
        label: String,
        /// Question id of the interview's codebook.
        #[arg(long)]
        question: Option<String>,
    },
    /// Delete a stopped recording, its audio and its markers.
    Delete { recording: String },
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

fn recording_line(r: &Recording) -> String {
    let status = match (r.status, r.recovered) {
        (RecordingStatus::Recording, _) => "recording",
        (RecordingStatus::Stopped, true) => "stopped (recovered after the recording process ended)",
        (RecordingStatus::Stopped, false) => "stopped",
    };
    format!(
        "{}  {}  {} Hz, {} ch  started {}  {status}",
        r.meta.id,
        clock(r.duration_ms),
        r.sample_rate,
        r.channels,
        r.started_at
    )
}

pub(crate) fn record(cli: &Cli, out: &Out, a: &RecordArgs) -> Result<(), Error> {
    let rec = match (&a.from_wav, a.seconds) {
        (Some(file), _) => {
            let f = std::fs::File::open(file).map_err(|e| {
                Error::invalid(format!("cannot open {}: {}", file.display(), e.kind()))
            })?;
            let mut v = open(cli)?;
            v.import_wav(&a.interview, f)?
        }
        (None, Some(seconds)) => {
            if seconds == 0 || seconds > 24 * 3600 {
                return Err(Error::invalid(
                    "--seconds must be between 1 and 86400".into(),
                ));
            }
            let mut v = open(cli)?;
            live::record(&mut v, &a.interview, seconds, !cli.json)?
        }
        (None, None) => return Err(Error::invalid("give --from-wav FILE or --seconds N".into())),
    };
    out.print(&rec, |r| format!("{}\n{}", r.meta.id, recording_line(r)));
    Ok(())
}

#[cfg(feature = "capture")]
mod live {
    use std::time::{Duration, Instant};

    use testimony_core::audio::Recording;
    use testimony_core::audio::capture::{AudioSource, CpalSource, Recorder};
    use testimony_core::{Error, Vault};

    /// Records from the default input until `seconds` of audio are captured. A progress line
    /// (time and level, never audio) goes to stderr when `progress`.
    pub(super) fn record(
        v: &mut Vault,
        interview: &str,
        seconds: u64,
        progress: bool,
    ) -> Result<Recording, Error> {
        let src = CpalSource::default_input()?;
        let rec = v.start_recording(interview, src.sample_rate(), 1)?;
        let id = rec.meta.id.clone();
        let result = (|| {
            let r = Recorder::start(src, v.recording_writer(&id)?)?;
            let started = Instant::now();
            let mut last_print = 0;
            loop {
                let s = r.status();
                if s.elapsed_ms >= seconds * 1000 || !s.running {
                    break;
                }
                if started.elapsed() > Duration::from_secs(seconds + 10) {
                    let _ = r.stop();
                    return Err(Error::Audio(format!(
                        "the audio input delivered only {} ms in {} s",
                        s.elapsed_ms,
                        seconds + 10
                    )));
                }
                if progress && s.elapsed_ms / 1000 > last_print {
                    last_print = s.elapsed_ms / 1000;
                    eprintln!(
                        "recording {:>4} s  level {:>6.1} dBFS  saved {} s",
                        last_print,
                        s.level.rms_dbfs().max(-99.0),
                        s.saved_ms / 1000
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            r.stop()
        })();
        // Stop the recording whatever happened: what was committed is kept.
        let rec = v.stop_recording(&id)?;
        result?;
        Ok(rec)
    }
}

#[cfg(not(feature = "capture"))]
mod live {
    use testimony_core::audio::Recording;
    use testimony_core::{Error, Vault};

    pub(super) fn record(_: &mut Vault, _: &str, _: u64, _: bool) -> Result<Recording, Error> {
        Err(Error::Audio("this build of testimony has no audio capture (cargo feature `capture`); use --from-wav FILE".into()))
    }
}

pub(crate) fn run(cli: &Cli, out: &Out, c: &RecordingCmd) -> Result<(), Error> {
    match c {
        RecordingCmd::List { interview } => {
            let v = open(cli)?;
            let list = v.recordings(interview)?;
            out.print(&list, |l| {
                if l.is_empty() {
                    "No recordings.".into()
                } else {
                    l.iter().map(recording_line).collect::<Vec<_>>().join("\n")
                }
            });
        }
        RecordingCmd::Show { recording } => {
            let v = open(cli)?;
            let r = v.recording(recording)?;
            let segments = v.recording_segments(recording)?;
            let markers = v.markers(recording)?;
            let doc = json!({"recording": r, "segments": segments, "markers": markers});
            out.print(&doc, |_| show(&r, &segments, &markers));
        }
        RecordingCmd::ExportWav {
            recording,
            out: file,
        } => {
            let v = open(cli)?;
            v.recording(recording)?;
            let bytes = export_wav(&v, recording, file)?;
            eprintln!(
                "warning: {} holds the recording as plaintext audio, readable by anyone who can read the file. Keep it off shared and synced folders and delete it when done.",
                file.display()
            );
            out.print(
                &json!({"path": file, "bytes": bytes, "plaintext": true}),
                |_| format!("Wrote {} ({bytes} bytes).", file.display()),
            );
        }
        RecordingCmd::Marker {
            recording,
            at,
            label,
            question,
        } => {
            let label = arg_or_stdin(label)?;
            let mut v = open(cli)?;
            let m = v.add_marker(recording, *at, question.as_deref(), &label)?;
            out.print(&m, |m| m.meta.id.clone());
        }
        RecordingCmd::Delete { recording } => {
            let mut v = open(cli)?;
            v.delete_recording(recording)?;
            out.print(&json!({"deleted": recording}), |_| "deleted".into());
        }
    }
    Ok(())
}

fn show(r: &Recording, segments: &[Segment], markers: &[Marker]) -> String {
    let mut s = recording_line(r);
    s.push_str(&format!(
        "\n{} samples in {} chunks, format {}",
        r.samples, r.chunks, r.format
    ));
    if let Some(h) = &r.audio_sha256 {
        s.push_str(&format!(", audio hash {}", &h[..16]));
    }
    if segments.len() > 1 {
        for g in segments {
            let ms = |n: u64| n * 1000 / r.sample_rate as u64;
            s.push_str(&format!(
                "\nsegment {}: from {} for {}",
                g.index,
                clock(ms(g.start_sample)),
                clock(ms(g.samples))
            ));
        }
    }
    for m in markers {
        s.push_str(&format!(
            "\nmarker {}  {}  {}",
            clock(m.at_ms),
            m.question_id.as_deref().unwrap_or("-"),
            m.label
        ));
    }
    s
}

/// Writes the WAV to a new file (owner-only permissions); a failed export leaves no file.
fn export_wav(v: &testimony_core::Vault, recording: &str, file: &Path) -> Result<u64, Error> {
    testimony_core::io_util::write_private_file(file, |w| v.export_wav(recording, w))
}
