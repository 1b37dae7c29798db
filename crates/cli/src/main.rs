//! `testimony`: the headless interface to a vault. Human-readable output by default, `--json`
//! for scripts, exit code 0 only on success. Errors name ids and fields, never content.

mod archive;
mod audio;
mod passphrase;
mod show;
mod transcribe;
mod transcript;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use serde_json::{Value, json};
use testimony_core::codebook::{Codebook, parse_input};
use testimony_core::model::*;
use testimony_core::{CreateOptions, Error, Reason, Vault};

#[derive(Parser)]
#[command(
    name = "testimony",
    version,
    about = "Encrypted, offline documentation of testimony",
    max_term_width = 100
)]
struct Cli {
    /// Vault directory (or set TESTIMONY_VAULT).
    #[arg(long, global = true, env = "TESTIMONY_VAULT")]
    vault: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Language for labels in human-readable output: en or ko.
    #[arg(long, global = true, default_value = "en", value_parser = ["en", "ko"])]
    lang: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new vault (asks for a passphrase twice).
    Init {
        /// Interviewer profile name recorded in the audit log.
        #[arg(long, default_value = "interviewer")]
        interviewer: String,
    },
    /// Change the vault passphrase (TESTIMONY_NEW_PASSPHRASE for scripts).
    Passwd,
    /// Witnesses: pseudonymous codes, profile, identifying details kept apart.
    #[command(subcommand)]
    Witness(WitnessCmd),
    /// A witness's consent: what may be recorded, transcribed, shared, quoted, published.
    #[command(subcommand)]
    Consent(ConsentCmd),
    /// Interviews driven by a codebook.
    #[command(subcommand)]
    Interview(InterviewCmd),
    /// Full-text search over answers and notes (Korean and English).
    Search {
        query: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Codebooks: check a file, list the versions in the vault.
    #[command(subcommand)]
    Codebook(CodebookCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// This device's signing identity.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Write an encrypted, signed bundle of what changed since the last export (or everything
    /// with --full), for the central archive. Consent decides what is included.
    Export {
        /// age X25519 recipient (age1…) of the archive; repeat for a second coordinator key.
        /// Without it, the recipients saved with `testimony recipient set` are used.
        #[arg(long = "recipient")]
        recipients: Vec<String>,
        /// Output file (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Everything shareable, not only what changed since the last export.
        #[arg(long)]
        full: bool,
        /// Also export identifying details (real name, contact) of witnesses whose consent
        /// allows publishing with identifying details.
        #[arg(long)]
        include_identity: bool,
    },
    /// The archive recipients saved in the vault, used by `export` when none is given.
    #[command(subcommand)]
    Recipient(RecipientCmd),
    /// Accept return bundles signed by this archive key (`testimony archive id` prints it).
    TrustArchive {
        key: String,
        /// Replace a different archive key trusted before.
        #[arg(long)]
        replace: bool,
    },
    /// Apply a return bundle from the archive: verified, all or nothing, idempotent.
    ImportReturn { file: PathBuf },
    /// Record audio for an interview straight into the vault (or import a WAV file).
    Record(audio::RecordArgs),
    /// Recordings: list, show, markers, export as WAV (plaintext), delete.
    #[command(subcommand)]
    Recording(audio::RecordingCmd),
    /// Transcripts: show, review and translate segments, history, export (txt, srt, vtt,
    /// bilingual HTML; plaintext, optionally redacted).
    #[command(subcommand)]
    Transcript(transcript::TranscriptCmd),
    /// Transcribe a recording into the vault (whisper.cpp, on this device); resumes an
    /// unfinished run. Needs the witness's consent to transcription.
    Transcribe(transcribe::TranscribeArgs),
    /// Transcribe an audio file and print the segments (no vault; nothing is written).
    TranscribeFile(transcribe::TranscribeFileArgs),
    /// The central archive (coordinators): import bundles, trust devices, search.
    #[command(subcommand)]
    Archive(archive::ArchiveCmd),
    /// Create a new vault filled with fictional demo interviews. Refuses an existing vault, so
    /// that made-up testimony can never mix with real testimony.
    Demo {
        #[arg(long, default_value_t = 24)]
        count: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
}

#[derive(Args)]
struct ProfileArgs {
    #[arg(long, value_parser = ["female", "male", "other", "undisclosed"])]
    gender: Option<String>,
    #[arg(long)]
    birth_year: Option<i64>,
    /// Province code, e.g. north_hamgyong.
    #[arg(long)]
    home_province: Option<String>,
    #[arg(long, value_parser = ["core", "wavering", "hostile", "unknown"])]
    songbun: Option<String>,
    #[arg(long)]
    year_left: Option<i64>,
    /// Number of forced repatriations from China.
    #[arg(long)]
    repatriations: Option<i64>,
}

impl ProfileArgs {
    fn profile(self) -> WitnessProfile {
        WitnessProfile {
            gender: self.gender,
            birth_year: self.birth_year,
            home_province: self.home_province,
            songbun: self.songbun,
            year_left: self.year_left,
            repatriations: self.repatriations,
        }
    }
}

#[derive(Subcommand)]
enum WitnessCmd {
    /// Add a witness; prints the new pseudonymous code.
    Add {
        #[command(flatten)]
        profile: ProfileArgs,
        /// Real name (stored apart, never exported without consent).
        #[arg(long)]
        real_name: Option<String>,
        #[arg(long)]
        contact: Option<String>,
    },
    List,
    Show {
        witness: String,
        /// Also show identifying details (real name, contact).
        #[arg(long)]
        identity: bool,
    },
}

#[derive(Subcommand)]
enum ConsentCmd {
    /// Record consent; scopes not named are refused.
    Set {
        witness: String,
        /// Comma-separated: record_audio, transcribe, share_archive, quote_anonymously, publish_identified (or "none").
        #[arg(long)]
        scopes: String,
        #[arg(long)]
        taken_by: String,
        #[arg(long, default_value = "oral", value_parser = ["oral", "written"])]
        method: String,
        /// When consent was given (default: now).
        #[arg(long)]
        taken_at: Option<String>,
    },
    /// Withdraw consent: every scope ends from now (or --at).
    Withdraw {
        witness: String,
        #[arg(long)]
        at: Option<String>,
    },
    Show {
        witness: String,
    },
}

#[derive(Subcommand)]
enum InterviewCmd {
    /// Start an interview; prints its id.
    New {
        #[arg(long)]
        witness: String,
        /// Comma-separated language codes.
        #[arg(long, default_value = "ko")]
        languages: String,
        /// Coarse place (a city, never an address).
        #[arg(long)]
        place: Option<String>,
        #[arg(long)]
        interpreter: Option<String>,
        /// Use this codebook file instead of the default (stored in the vault).
        #[arg(long)]
        codebook: Option<PathBuf>,
    },
    /// Answer a question (value syntax per type: see docs/codebook.md).
    Answer {
        interview: String,
        question: String,
        /// The answer; `-` reads it from standard input (keeps testimony out of the process
        /// list and shell history).
        value: String,
        /// Group instance id, for questions inside a repeatable group.
        #[arg(long)]
        instance: Option<String>,
        /// The value is JSON in the stored shape.
        #[arg(long)]
        raw: bool,
    },
    /// Clear an answer.
    Clear {
        interview: String,
        question: String,
        #[arg(long)]
        instance: Option<String>,
    },
    /// Add an instance of a repeatable group; prints its id.
    AddGroup {
        interview: String,
        group: String,
        /// Instance of the enclosing group, for nested groups.
        #[arg(long)]
        parent: Option<String>,
    },
    /// Remove a group instance (answers are kept, hidden).
    RemoveGroup {
        instance: String,
    },
    /// Add a note to the interview (or to one question).
    Note {
        interview: String,
        /// The note; `-` reads it from standard input.
        text: String,
        #[arg(long)]
        question: Option<String>,
        #[arg(long)]
        instance: Option<String>,
    },
    /// Attach a file (stored encrypted in the vault).
    Attach {
        interview: String,
        file: PathBuf,
        #[arg(long, default_value = "application/octet-stream")]
        media_type: String,
    },
    Show {
        interview: String,
    },
    List {
        #[arg(long, value_parser = ["draft", "complete", "reviewed"])]
        status: Option<String>,
        #[arg(long)]
        witness: Option<String>,
    },
    /// Mark complete (checks required questions).
    Complete {
        interview: String,
    },
    /// Mark a complete interview reviewed.
    Review {
        interview: String,
    },
    /// Back to draft.
    Reopen {
        interview: String,
    },
}

#[derive(Subcommand)]
enum CodebookCmd {
    /// Validate a codebook file; lists every error with line and field.
    Check { file: PathBuf },
    /// Codebook versions stored in the vault.
    List,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the whole hash chain.
    Verify,
    /// History of one record.
    History { record: String },
}

#[derive(Subcommand)]
enum RecipientCmd {
    /// Save the archive's age1… recipient(s); replaces what was saved.
    Set {
        #[arg(required = true)]
        recipients: Vec<String>,
    },
    /// Print the saved recipients.
    Show,
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// Print this device's signing public key (read it out when enrolling the laptop).
    Id,
}

pub(crate) struct Out {
    json: bool,
}

impl Out {
    pub(crate) fn print<T: Serialize>(&self, v: &T, human: impl FnOnce(&T) -> String) {
        let s = if self.json {
            serde_json::to_string_pretty(v).expect("serialisable")
        } else {
            human(v)
        };
        if s.is_empty() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, "{s}").and_then(|()| stdout.flush()) {
            // The reader went away (`| head`): the command itself already succeeded.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("testimony: cannot write output: {}", e.kind());
            std::process::exit(1);
        }
    }
}

fn vault_dir(cli: &Cli) -> Result<&Path, Error> {
    cli.vault
        .as_deref()
        .ok_or_else(|| Error::invalid("no vault: pass --vault DIR or set TESTIMONY_VAULT".into()))
}

fn open(cli: &Cli) -> Result<Vault, Error> {
    let dir = vault_dir(cli)?;
    // Check the header before asking for a passphrase: a typo in the path should say so.
    testimony_core::keys::Header::read(dir)?;
    let pass = passphrase::get("TESTIMONY_PASSPHRASE", "Vault passphrase: ", false)?;
    Vault::open(dir, &pass)
}

fn main() -> ExitCode {
    // No core dump: it would hold the key and whatever the command was reading.
    testimony_core::process::no_core_dumps();
    // A panic message could quote what the failing code was handling: only where it happened.
    testimony_core::process::quiet_panics("testimony");
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.json {
                eprintln!("{}", json!({"error": e.to_string(), "kind": e.code()}));
            } else {
                eprintln!("testimony: {e}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Distinct exit codes so scripts can tell the common failures apart, by the core's error
/// code (`Error::code`, also printed as `kind` with `--json`). Every code is named here; a
/// test fails when the core gains a code this table does not know.
const EXIT_CODES: &[(&str, u8)] = &[
    ("wrong_passphrase", 3),
    ("not_a_vault", 4),
    ("corrupt", 5),
    ("damaged_recording", 5),
    ("newer_version", 6),
    ("vault_in_use", 7),
    ("audit_broken", 8),
    ("codebook", 9),
    ("bad_bundle", 10),
    ("nothing_to_export", 11),
    ("already_exists", 1),
    ("cannot_create", 1),
    ("weak_passphrase", 1),
    ("invalid_answer", 1),
    ("not_found", 1),
    ("not_allowed", 1),
    ("invalid", 1),
    ("incomplete", 1),
    ("storage", 1),
    ("server", 1),
    ("sink", 1),
    ("audio", 1),
    ("cancelled", 1),
    ("io", 1),
];

fn exit_code(e: &testimony_archive::Error) -> u8 {
    let code = e.code();
    EXIT_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(1, |(_, n)| *n)
}

/// Every command; the archive's error type holds the core's and its own (PostgreSQL).
fn run(cli: &Cli) -> Result<(), testimony_archive::Error> {
    let out = Out { json: cli.json };
    let lang = cli.lang.as_str();
    match &cli.cmd {
        Cmd::Init { interviewer } => {
            let dir = vault_dir(cli)?;
            let pass = passphrase::get("TESTIMONY_PASSPHRASE", "New vault passphrase: ", true)?;
            let v = Vault::create(
                dir,
                &pass,
                CreateOptions {
                    interviewer: interviewer.clone(),
                    ..Default::default()
                },
            )?;
            let info = json!({"vault": dir, "device_id": v.device_id(), "device_public_key": v.device_public_key()?});
            out.print(&info, |_| {
                format!(
                    "Created vault {}.\nThere is no way to recover a lost passphrase: keep it safe.\nDevice key: {}",
                    dir.display(),
                    info["device_public_key"].as_str().unwrap_or("")
                )
            });
        }
        Cmd::Passwd => {
            let dir = vault_dir(cli)?;
            testimony_core::keys::Header::read(dir)?;
            let old = passphrase::get("TESTIMONY_PASSPHRASE", "Current passphrase: ", false)?;
            let new = passphrase::get("TESTIMONY_NEW_PASSPHRASE", "New passphrase: ", true)?;
            Vault::change_passphrase(dir, &old, &new)?;
            out.print(&json!({"changed": true}), |_| "Passphrase changed.".into());
        }
        Cmd::Witness(c) => witness(cli, &out, c)?,
        Cmd::Export {
            recipients,
            out: file,
            full,
            include_identity,
        } => {
            let mut v = open(cli)?;
            let recipients = if recipients.is_empty() {
                v.archive_recipients()?
            } else {
                recipients.clone()
            };
            if recipients.is_empty() {
                return Err(Error::invalid("no recipient: give --recipient age1… or save one with `testimony recipient set age1…`".into()).into());
            }
            let opts = testimony_core::bundle::ExportOptions {
                recipients,
                full: *full,
                include_identity: *include_identity,
            };
            let r = v.export_bundle(&opts, file)?;
            out.print(&r, |r| {
                let w = &r.withheld;
                format!(
                    "Wrote {} ({} bytes): bundle {} ({}), {} interviews, {} answers, {} notes, {} attachments, {} audit entries.\nWithheld: {} witnesses ({} records): {} without consent to share, {} withdrawn, {} with no consent recorded.",
                    r.path.display(), r.bytes, r.sequence, r.kind, r.counts.interviews, r.counts.answers, r.counts.notes, r.counts.attachments,
                    r.counts.audit_entries, w.witnesses, w.records, w.reasons.no_share_consent, w.reasons.consent_withdrawn, w.reasons.no_consent_recorded
                )
            });
        }
        Cmd::Recipient(RecipientCmd::Set { recipients }) => {
            let mut v = open(cli)?;
            v.set_archive_recipients(recipients)?;
            out.print(&json!({"recipients": recipients}), |_| {
                format!(
                    "Saved {} recipient(s); `testimony export --out FILE` now uses them.",
                    recipients.len()
                )
            });
        }
        Cmd::Recipient(RecipientCmd::Show) => {
            let v = open(cli)?;
            let r = v.archive_recipients()?;
            out.print(&json!({"recipients": r}), |r| {
                if r["recipients"].as_array().is_some_and(|a| a.is_empty()) {
                    "No recipient saved.".into()
                } else {
                    r["recipients"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
        }
        Cmd::TrustArchive { key, replace } => {
            let mut v = open(cli)?;
            v.trust_archive(key, *replace)?;
            out.print(&json!({"archive_signing_key": key.trim()}), |_| {
                "This vault now accepts return bundles signed by that archive key.".into()
            });
        }
        Cmd::ImportReturn { file } => {
            let mut v = open(cli)?;
            let r = v.import_return_bundle(file)?;
            out.print(&r, |r| {
                let mut s = r.message.clone();
                for w in &r.warnings {
                    s.push_str(&format!("\nwarning: {w}"));
                }
                s
            });
        }
        Cmd::Archive(c) => archive::run(c, &out)?,
        Cmd::Record(a) => audio::record(cli, &out, a)?,
        Cmd::Recording(c) => audio::run(cli, &out, c)?,
        Cmd::Transcript(c) => transcript::run(cli, &out, c)?,
        Cmd::Transcribe(a) => transcribe::transcribe(cli, &out, a)?,
        Cmd::TranscribeFile(a) => transcribe::transcribe_file(cli, &out, a)?,
        Cmd::Consent(c) => consent(cli, &out, c)?,
        Cmd::Interview(c) => interview(cli, &out, c, lang)?,
        Cmd::Search { query, limit } => {
            let v = open(cli)?;
            let hits = v.search(query, *limit)?;
            out.print(&hits, |h| {
                if h.is_empty() {
                    return "No matches.".into();
                }
                h.iter()
                    .map(|x| {
                        format!(
                            "{}  {}  {}  {}",
                            x.witness_code, x.interview_id, x.kind, x.snippet
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::Codebook(CodebookCmd::Check { file }) => {
            let src = read_codebook_file(file)?;
            let cb = Codebook::parse(&src, &file.display().to_string())?;
            let groups = cb
                .questions
                .iter()
                .filter(|q| q.kind == testimony_core::codebook::QuestionType::Group)
                .count();
            let info = json!({"id": cb.id, "version": cb.version, "sections": cb.sections.len(), "questions": cb.questions.len(), "groups": groups, "vocabularies": cb.vocabs.len(), "sha256": cb.sha256});
            out.print(&info, |_| {
                format!(
                    "OK: {} version {}: {} sections, {} questions ({} repeatable groups), {} vocabularies",
                    cb.id, cb.version, cb.sections.len(), cb.questions.len(), groups, cb.vocabs.len()
                )
            });
        }
        Cmd::Codebook(CodebookCmd::List) => {
            let v = open(cli)?;
            let list: Vec<Value> = v
                .codebooks()?
                .into_iter()
                .map(|(id, ver, at)| json!({"id": id, "version": ver, "added_at": at}))
                .collect();
            out.print(&list, |l| {
                l.iter()
                    .map(|x| format!("{} {} (added {})", x["id"], x["version"], x["added_at"]))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::Audit(AuditCmd::Verify) => {
            let v = open(cli)?;
            let r = v.audit_verify()?;
            out.print(&r, |r| {
                format!(
                    "Audit log intact: {} entries, head {}",
                    r.entries,
                    &r.head_hash[..16]
                )
            });
        }
        Cmd::Audit(AuditCmd::History { record }) => {
            let v = open(cli)?;
            let h = v.audit_history(record)?;
            out.print(&h, |h| {
                h.iter()
                    .map(|e| {
                        format!(
                            "#{} {} {} {} {}",
                            e.seq, e.at, e.actor, e.action, e.record_type
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Cmd::Device(DeviceCmd::Id) => {
            let v = open(cli)?;
            let key = v.device_public_key()?;
            out.print(&json!({"device_id": v.device_id(), "public_key": key, "recipient": v.device_recipient()?}), |_| key.clone());
        }
        Cmd::Demo { count, seed } => {
            let dir = vault_dir(cli)?;
            if dir.join(testimony_core::keys::HEADER_FILE).exists() {
                return Err(Error::AlreadyExists(dir.to_path_buf()).into());
            }
            let pass = passphrase::get("TESTIMONY_PASSPHRASE", "New vault passphrase: ", true)?;
            let mut v = Vault::create(
                dir,
                &pass,
                CreateOptions {
                    interviewer: "demo interviewer".into(),
                    ..Default::default()
                },
            )?;
            let s = testimony_core::demo::populate(&mut v, *count, *seed)?;
            out.print(&s, |s| {
                format!(
                    "Added {} fictional witnesses and {} interviews ({} answers); {} witnesses have not consented to sharing.",
                    s.witnesses, s.interviews, s.answers, s.withheld_consent
                )
            });
        }
    }
    Ok(())
}

/// A codebook file's text: at most 4 MiB of UTF-8.
pub(crate) fn read_codebook_file(file: &std::path::Path) -> Result<String, Error> {
    let src = read_limited(file, 4 << 20)?;
    String::from_utf8(src)
        .map_err(|_| Error::invalid(format!("{} is not UTF-8 text", file.display())))
}

/// `-` means: read the value from standard input (without the final newline).
fn arg_or_stdin(arg: &str) -> Result<String, Error> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut buf = String::new();
    std::io::stdin()
        .lock()
        .take((1 << 20) + 1)
        .read_to_string(&mut buf)?;
    if buf.len() > 1 << 20 {
        return Err(Error::invalid("standard input is larger than 1 MiB".into()));
    }
    let trimmed = buf
        .strip_suffix('\n')
        .map(|b| b.strip_suffix('\r').unwrap_or(b))
        .unwrap_or(&buf);
    Ok(trimmed.to_string())
}

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > max {
        return Err(Error::invalid(format!(
            "{} is larger than {} MiB",
            path.display(),
            max >> 20
        )));
    }
    Ok(std::fs::read(path)?)
}

fn parse_scopes(s: &str) -> Result<ConsentScopes, Error> {
    let mut scopes = ConsentScopes::default();
    if s.trim() == "none" {
        return Ok(scopes);
    }
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let sc = ConsentScope::parse(part).ok_or_else(|| {
            Error::invalid(format!(
                "unknown consent scope '{part}' (use {})",
                ConsentScope::ALL
                    .iter()
                    .map(|c| c.code())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        scopes.set(sc, true);
    }
    Ok(scopes)
}

fn witness(cli: &Cli, out: &Out, c: &WitnessCmd) -> Result<(), Error> {
    let mut v = open(cli)?;
    match c {
        WitnessCmd::Add {
            profile,
            real_name,
            contact,
        } => {
            let identity = (real_name.is_some() || contact.is_some()).then(|| WitnessIdentity {
                real_name: real_name.clone(),
                contact: contact.clone(),
                notes: None,
            });
            let p = ProfileArgs {
                ..clone_profile(profile)
            }
            .profile();
            let w = v.add_witness(p, identity)?;
            out.print(&w, |w| w.code.clone());
        }
        WitnessCmd::List => {
            let ws = v.witnesses()?;
            out.print(&ws, |ws| show::witness_table(ws));
        }
        WitnessCmd::Show { witness, identity } => {
            let w = v.witness(witness)?;
            let consent = v.consent(witness)?;
            let ident = if *identity {
                v.witness_identity(witness)?
            } else {
                None
            };
            let interviews = v.interviews(None, Some(witness))?;
            let doc = json!({"witness": w, "consent": consent, "identity": ident, "interviews": interviews.iter().map(|i| &i.meta.id).collect::<Vec<_>>()});
            out.print(&doc, |_| {
                show::witness(&w, consent.as_ref(), ident.as_ref(), &interviews)
            });
        }
    }
    Ok(())
}

fn clone_profile(p: &ProfileArgs) -> ProfileArgs {
    ProfileArgs {
        gender: p.gender.clone(),
        birth_year: p.birth_year,
        home_province: p.home_province.clone(),
        songbun: p.songbun.clone(),
        year_left: p.year_left,
        repatriations: p.repatriations,
    }
}

fn consent(cli: &Cli, out: &Out, c: &ConsentCmd) -> Result<(), Error> {
    let mut v = open(cli)?;
    let c = match c {
        ConsentCmd::Set {
            witness,
            scopes,
            taken_by,
            method,
            taken_at,
        } => {
            let m = if method == "written" {
                ConsentMethod::Written
            } else {
                ConsentMethod::Oral
            };
            Some(v.set_consent(
                witness,
                parse_scopes(scopes)?,
                taken_by,
                taken_at.as_deref(),
                m,
            )?)
        }
        ConsentCmd::Withdraw { witness, at } => Some(v.withdraw_consent(witness, at.as_deref())?),
        ConsentCmd::Show { witness } => v.consent(witness)?,
    };
    out.print(&c, |c| show::consent(c.as_ref()));
    Ok(())
}

fn interview(cli: &Cli, out: &Out, c: &InterviewCmd, lang: &str) -> Result<(), Error> {
    let mut v = open(cli)?;
    match c {
        InterviewCmd::New {
            witness,
            languages,
            place,
            interpreter,
            codebook,
        } => {
            let cbk = match codebook {
                Some(path) => {
                    let src = String::from_utf8(read_limited(path, 4 << 20)?)
                        .map_err(|_| Error::invalid("codebook is not UTF-8".into()))?;
                    let cb = v.add_codebook(&src, &path.display().to_string())?;
                    Some((cb.id.clone(), cb.version.clone()))
                }
                None => None,
            };
            let i = v.new_interview(NewInterview {
                witness: witness.clone(),
                interpreter: interpreter.clone(),
                languages: languages
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                place: place.clone(),
                started_at: None,
                codebook: cbk,
            })?;
            out.print(&i, |i| i.meta.id.clone());
        }
        InterviewCmd::Answer {
            interview,
            question,
            value,
            instance,
            raw,
        } => {
            let value = &arg_or_stdin(value)?;
            let i = v.interview(interview)?;
            let cb = v.codebook(&i.codebook_id, &i.codebook_version)?;
            let q = cb
                .question(question)
                .ok_or_else(|| Error::NotFound("question", question.clone()))?;
            let val = if *raw {
                serde_json::from_str(value).map_err(|e| Error::InvalidAnswer {
                    question: question.clone(),
                    reason: Reason::NotJson {
                        line: e.line(),
                        column: e.column(),
                    },
                })?
            } else {
                parse_input(&cb, q, value).map_err(|reason| Error::InvalidAnswer {
                    question: question.clone(),
                    reason,
                })?
            };
            let a = v.set_answer(interview, instance.as_deref(), question, &val)?;
            out.print(&a, |a| {
                format!("saved {} (version {})", a.question_id, a.meta.version)
            });
        }
        InterviewCmd::Clear {
            interview,
            question,
            instance,
        } => {
            let cleared = v.clear_answer(interview, instance.as_deref(), question)?;
            out.print(&json!({"cleared": cleared}), |_| {
                if cleared {
                    "cleared".into()
                } else {
                    "no answer to clear".into()
                }
            });
        }
        InterviewCmd::AddGroup {
            interview,
            group,
            parent,
        } => {
            let g = v.add_group_instance(interview, group, parent.as_deref())?;
            out.print(&g, |g| g.meta.id.clone());
        }
        InterviewCmd::RemoveGroup { instance } => {
            v.remove_group_instance(instance)?;
            out.print(&json!({"removed": instance}), |_| "removed".into());
        }
        InterviewCmd::Note {
            interview,
            text,
            question,
            instance,
        } => {
            let text = &arg_or_stdin(text)?;
            let n = v.add_note(interview, question.as_deref(), instance.as_deref(), text)?;
            out.print(&n, |n| n.meta.id.clone());
        }
        InterviewCmd::Attach {
            interview,
            file,
            media_type,
        } => {
            let data = read_limited(file, testimony_core::MAX_ATTACHMENT_BYTES as u64)?;
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::invalid("attachment needs a UTF-8 file name".into()))?;
            let a = v.add_attachment(interview, name, media_type, &data)?;
            out.print(&a, |a| {
                format!(
                    "{} ({} bytes, sha256 {})",
                    a.meta.id,
                    a.size,
                    &a.sha256[..16]
                )
            });
        }
        InterviewCmd::Show { interview } => {
            let d = v.interview_detail(interview)?;
            let cb = v.codebook(&d.interview.codebook_id, &d.interview.codebook_version)?;
            out.print(&d, |d| show::interview(&cb, d, lang));
        }
        InterviewCmd::List { status, witness } => {
            let st = status.as_deref().and_then(InterviewStatus::parse);
            let list = v.interviews(st, witness.as_deref())?;
            out.print(&list, |l| show::interview_table(l));
        }
        InterviewCmd::Complete { interview } => {
            let i = v.complete_interview(interview)?;
            out.print(&i, |i| format!("{} is {}", i.meta.id, i.status.code()));
        }
        InterviewCmd::Review { interview } => {
            let i = v.review_interview(interview)?;
            out.print(&i, |i| format!("{} is {}", i.meta.id, i.status.code()));
        }
        InterviewCmd::Reopen { interview } => {
            let i = v.reopen_interview(interview)?;
            out.print(&i, |i| format!("{} is {}", i.meta.id, i.status.code()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_an_exit_code() {
        for code in testimony_archive::Error::codes() {
            assert!(
                EXIT_CODES.iter().any(|(c, _)| *c == code),
                "no exit code for error code {code}"
            );
        }
        for (c, _) in EXIT_CODES {
            assert!(
                testimony_archive::Error::codes().any(|k| k == *c),
                "exit code for unknown error code {c}"
            );
        }
    }
}
