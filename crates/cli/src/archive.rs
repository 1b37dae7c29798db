//! `testimony archive …`: the coordinator's side. Thin: every rule is in crates/archive.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use testimony_archive::Error;
use testimony_archive::{Archive, Backend};
use testimony_core::Error as CoreError;

use crate::Out;
use crate::passphrase;

#[derive(Args)]
pub struct ArchiveDir {
    /// Archive directory (or set TESTIMONY_ARCHIVE).
    #[arg(long, env = "TESTIMONY_ARCHIVE")]
    archive: PathBuf,
    /// Keep the records in PostgreSQL: a libpq connection string such as
    /// "host=127.0.0.1 port=5432 user=testimony dbname=archive" (or set
    /// TESTIMONY_ARCHIVE_POSTGRES, which keeps a password out of the process list). Give it on
    /// every command for an archive created with it. The identity stays in the directory under
    /// the passphrase; attachments are stored encrypted. No TLS: loopback or a trusted network.
    #[arg(
        long,
        env = "TESTIMONY_ARCHIVE_POSTGRES",
        hide_env_values = true,
        value_name = "URL"
    )]
    postgres: Option<String>,
}

#[derive(Subcommand)]
pub enum ArchiveCmd {
    /// Create a new archive with its own age key (passphrase: TESTIMONY_ARCHIVE_PASSPHRASE or prompt).
    Init(ArchiveDir),
    /// Print the age1… recipient that devices encrypt their bundles to.
    Recipient(ArchiveDir),
    /// Print the archive's id, recipient and signing key (devices trust the signing key with
    /// `testimony trust-archive KEY` to accept return bundles).
    Id(ArchiveDir),
    /// Codebook versions published to devices through return bundles.
    #[command(subcommand)]
    Codebook(CodebookCmd),
    /// Send an interview to a device (a translator's laptop) with its next return bundles.
    Assign {
        #[command(flatten)]
        dir: ArchiveDir,
        /// The device's signing key (from `archive device list`).
        #[arg(long)]
        device: String,
        interview: String,
    },
    /// Write a return bundle for one device: other devices' edits and translations of its
    /// interviews, resolved conflicts, assigned interviews (with their recordings and audio,
    /// once) and new codebooks, encrypted to it.
    Return {
        #[command(flatten)]
        dir: ArchiveDir,
        #[arg(long)]
        device: String,
        /// Output file (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Send everything the device should have again, not only what changed.
        #[arg(long)]
        full: bool,
    },
    /// Trusted devices.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Import bundle files: verified, merged all-or-nothing, idempotent.
    Import {
        #[command(flatten)]
        dir: ArchiveDir,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Interviews in the archive.
    List(ArchiveDir),
    /// One interview with its answers, notes and attachments.
    Show {
        #[command(flatten)]
        dir: ArchiveDir,
        id: String,
    },
    /// Write a recording's audio as a WAV file (PLAINTEXT audio: only where you mean to).
    RecordingWav {
        #[command(flatten)]
        dir: ArchiveDir,
        recording: String,
        /// Output file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Full-text search (Korean and English).
    Search {
        #[command(flatten)]
        dir: ArchiveDir,
        query: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Bundles from devices that are not trusted yet.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// Records changed on two devices, kept side by side.
    #[command(subcommand)]
    Conflicts(ConflictsCmd),
}

#[derive(Subcommand)]
pub enum DeviceCmd {
    /// Trust a device's signing key (from `testimony device id`); merges its quarantined bundles.
    Trust {
        #[command(flatten)]
        dir: ArchiveDir,
        key: String,
        #[arg(long)]
        name: String,
    },
    /// Trusted devices, their bundles and any missing sequence numbers.
    List(ArchiveDir),
    /// Stop trusting a device (lost or seized laptop): its later bundles wait in quarantine.
    Untrust {
        #[command(flatten)]
        dir: ArchiveDir,
        key: String,
    },
}

#[derive(Subcommand)]
pub enum CodebookCmd {
    /// Publish a codebook file (checked first; errors name line and field).
    Add {
        #[command(flatten)]
        dir: ArchiveDir,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum QuarantineCmd {
    List(ArchiveDir),
}

#[derive(Subcommand)]
pub enum ConflictsCmd {
    /// Unresolved conflicts (--all for resolved ones too).
    List {
        #[command(flatten)]
        dir: ArchiveDir,
        #[arg(long)]
        all: bool,
    },
    /// Resolve a conflict by keeping the current version or taking the incoming one.
    Resolve {
        #[command(flatten)]
        dir: ArchiveDir,
        id: i64,
        #[arg(long, value_parser = ["current", "incoming"])]
        keep: String,
    },
}

const PASS_ENV: &str = "TESTIMONY_ARCHIVE_PASSPHRASE";

fn open(d: &ArchiveDir) -> Result<Archive, Error> {
    testimony_core::keys::Header::read_for(testimony_core::keys::ARCHIVE_HEADER, &d.archive)?;
    let pass = passphrase::get(PASS_ENV, "Archive passphrase: ", false)?;
    Archive::open_with_backend(&d.archive, &pass, &backend(d))
}

fn backend(d: &ArchiveDir) -> Backend {
    Backend::from_postgres_url(d.postgres.as_deref())
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

pub fn run(cmd: &ArchiveCmd, out: &Out) -> Result<(), Error> {
    match cmd {
        ArchiveCmd::Init(d) => {
            let pass = passphrase::get(PASS_ENV, "New archive passphrase: ", true)?;
            let a =
                Archive::create_with_backend(&d.archive, &pass, &backend(d), Default::default())?;
            let info = json!({"archive": d.archive, "recipient": a.recipient(), "backend": a.backend_description()});
            out.print(&info, |_| {
                format!(
                    "Created archive {} (records: {}).\nRecipient for bundles: {}",
                    d.archive.display(),
                    a.backend_description(),
                    a.recipient()
                )
            });
        }
        ArchiveCmd::Recipient(d) => {
            let a = open(d)?;
            let r = a.recipient();
            out.print(&json!({"recipient": r}), |_| r.clone());
        }
        ArchiveCmd::Id(d) => {
            let a = open(d)?;
            let id = a.id()?;
            out.print(&id, |i| {
                format!(
                    "Archive {}\nRecipient for bundles: {}\nSigning key for return bundles: {}",
                    i.archive_id, i.recipient, i.signing_key
                )
            });
        }
        ArchiveCmd::Codebook(CodebookCmd::Add { dir, file }) => {
            let source = crate::read_codebook_file(file)?;
            let mut a = open(dir)?;
            let (id, version, added) = a.add_codebook(&source, &file.display().to_string())?;
            out.print(&json!({"id": id, "version": version, "added": added}), |_| {
                if added { format!("Published codebook {id} version {version}; it goes out with the next return bundles.") } else { format!("Codebook {id} version {version} was already published; nothing changed.") }
            });
        }
        ArchiveCmd::Assign {
            dir,
            device,
            interview,
        } => {
            let mut a = open(dir)?;
            a.assign(device, interview)?;
            out.print(&json!({"device": device, "interview": interview}), |_| {
                format!(
                    "Interview {interview} goes to device {device} with its next return bundle."
                )
            });
        }
        ArchiveCmd::Return {
            dir,
            device,
            out: file,
            full,
        } => {
            let mut a = open(dir)?;
            let r = a.export_return(device, file, *full)?;
            out.print(&r, |r| {
                format!(
                    "Wrote {} ({} bytes): return bundle {} for device {}: {} codebooks, {} witnesses, {} interviews, {} group instances, {} answers, {} notes, {} recordings with their audio, {} markers, {} transcripts, {} transcript segments; {} interviews and {} recordings withheld (consent).",
                    r.path.display(), r.bytes, r.sequence, r.device, r.codebooks.len(), r.counts.witnesses, r.counts.interviews, r.counts.group_instances,
                    r.counts.answers, r.counts.notes, r.counts.recordings, r.counts.audio_markers, r.counts.transcripts, r.counts.transcript_segments,
                    r.withheld_interviews, r.withheld_recordings
                )
            });
        }
        ArchiveCmd::Device(DeviceCmd::Untrust { dir, key }) => {
            let mut a = open(dir)?;
            a.untrust_device(key)?;
            out.print(&json!({"untrusted": key}), |_| {
                format!(
                    "No longer trusting device {key}; its later bundles will wait in quarantine."
                )
            });
        }
        ArchiveCmd::Device(DeviceCmd::Trust { dir, key, name }) => {
            let mut a = open(dir)?;
            let r = a.trust_device(key, name)?;
            out.print(&r, |r| {
                let mut s = format!("Trusted device {} ({}).", r.name, r.public_key);
                for m in &r.merged {
                    s.push_str(&format!("\nReleased from quarantine: {}", m.message));
                }
                s
            });
        }
        ArchiveCmd::Device(DeviceCmd::List(d)) => {
            let a = open(d)?;
            let list = a.devices()?;
            out.print(&list, |l| {
                if l.is_empty() {
                    return "No trusted devices.".into();
                }
                l.iter()
                    .map(|d| {
                        let gaps = if d.gaps.is_empty() {
                            String::new()
                        } else {
                            format!("  MISSING bundles {:?}", d.gaps)
                        };
                        format!(
                            "{}  {}  bundles {}  last {}{}",
                            d.public_key,
                            d.name,
                            d.bundles,
                            d.last_sequence.map(|s| s.to_string()).unwrap_or("-".into()),
                            gaps
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ArchiveCmd::Import { dir, files } => {
            let mut a = open(dir)?;
            let mut reports = Vec::new();
            // Each file is its own all-or-nothing import; stop at the first rejected one so
            // the operator sees which.
            for f in files {
                let r = a.import(f).map_err(|e| with_file(f, e))?;
                reports.push(r);
            }
            out.print(&reports, |rs| {
                rs.iter()
                    .map(|r| {
                        let mut s = format!("{}: {}", r.outcome, r.message);
                        if !r.gaps.is_empty() {
                            s.push_str(&format!(
                                "\n  bundles not yet received from this device: {:?}",
                                r.gaps
                            ));
                        }
                        if !r.released.is_empty() {
                            s.push_str(&format!(
                                "\n  waiting bundles merged now too: {:?}",
                                r.released
                            ));
                        }
                        if r.purged_for_withdrawal > 0 {
                            s.push_str(&format!(
                                "\n  {} records removed: the witness withdrew consent",
                                r.purged_for_withdrawal
                            ));
                        }
                        for w in &r.warnings {
                            s.push_str(&format!("\n  warning: {w}"));
                        }
                        s
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ArchiveCmd::List(d) => {
            let a = open(d)?;
            let list = a.interviews()?;
            out.print(&list, |l| {
                l.iter()
                    .map(|i| {
                        format!(
                            "{}  {}  {}  {}",
                            text(i, "id"),
                            text(i, "witness_code"),
                            text(i, "status"),
                            text(i, "started_at")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ArchiveCmd::Show { dir, id } => {
            let a = open(dir)?;
            let d = a.interview_detail(id)?;
            out.print(&d, |d| {
                let mut s = format!(
                    "Interview {}  witness {}  status {}\n",
                    id,
                    text(&d["interview"], "witness_code"),
                    text(&d["interview"], "status")
                );
                for ans in d["answers"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "  {}: {}\n",
                        text(ans, "question_id"),
                        ans["value"]
                    ));
                }
                for n in d["notes"].as_array().into_iter().flatten() {
                    s.push_str(&format!("  note: {}\n", text(n, "text")));
                }
                for at in d["attachments"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "  attachment: {} ({} bytes)\n",
                        text(at, "name"),
                        at["size"]
                    ));
                }
                for r in d["recordings"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "  recording: {} ({} ms)\n",
                        text(r, "id"),
                        r["duration_ms"]
                    ));
                }
                for m in d["audio_markers"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "  marker: {} at {} ms: {}\n",
                        text(m, "recording_id"),
                        m["at_ms"],
                        text(m, "label")
                    ));
                }
                s.trim_end().to_string()
            });
        }
        ArchiveCmd::RecordingWav {
            dir,
            recording,
            out: file,
        } => {
            let a = open(dir)?;
            let bytes = testimony_core::io_util::write_private_file(file, |w| {
                Ok(a.recording_wav(recording, w)?)
            })?;
            eprintln!(
                "warning: {} holds the recording as plaintext audio, readable by anyone who can read the file.",
                file.display()
            );
            out.print(
                &json!({"path": file, "bytes": bytes, "plaintext": true}),
                |_| format!("Wrote {} ({bytes} bytes).", file.display()),
            );
        }
        ArchiveCmd::Search { dir, query, limit } => {
            let a = open(dir)?;
            let hits = a.search(query, *limit)?;
            out.print(&hits, |h| {
                h.iter()
                    .map(|h| format!("{}  {}  {}", h.interview_id, h.kind, h.snippet))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ArchiveCmd::Quarantine(QuarantineCmd::List(d)) => {
            let a = open(d)?;
            let q = a.quarantined()?;
            out.print(&q, |q| {
                if q.is_empty() {
                    return "Quarantine is empty.".into();
                }
                q.iter()
                    .map(|b| {
                        let why = if b.reason == "waiting" {
                            "waiting for an earlier bundle"
                        } else {
                            "device not trusted"
                        };
                        format!(
                            "{}  device {}  key {}  bundle {}  ({why})",
                            b.bundle_hash, b.device_id, b.public_key, b.sequence
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ArchiveCmd::Conflicts(ConflictsCmd::List { dir, all }) => {
            let a = open(dir)?;
            let c = a.conflicts(*all)?;
            out.print(&c, |c| {
                if c.is_empty() {
                    return "No conflicts.".into();
                }
                c.iter()
                    .map(|c| {
                        format!(
                            "#{}  {} {}  current v{} from {}  incoming v{} from {}",
                            c.id,
                            c.kind,
                            c.record_id,
                            c.current["version"],
                            short(&c.current_key),
                            c.incoming["version"],
                            short(&c.incoming_key)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ArchiveCmd::Conflicts(ConflictsCmd::Resolve { dir, id, keep }) => {
            let mut a = open(dir)?;
            let c = a.resolve_conflict(*id, keep == "incoming")?;
            out.print(&c, |c| {
                format!(
                    "Conflict #{} resolved: kept the {} version.",
                    c.id,
                    c.resolution.as_deref().unwrap_or("")
                )
            });
        }
    }
    Ok(())
}

fn short(k: &str) -> &str {
    &k[..k.len().min(12)]
}

/// Names the file in a rejection, so a coordinator importing many knows which one failed.
fn with_file(f: &Path, e: Error) -> Error {
    match e {
        Error::Core(CoreError::BadBundle(m)) => {
            CoreError::BadBundle(format!("{}: {m}", f.display())).into()
        }
        other => other,
    }
}
