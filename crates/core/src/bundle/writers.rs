//! The writers an export streams through: tar entries, zstd frames (records and audio at their
//! own levels; stored audio frames passed through), age encryption on its own thread into a
//! `.partial` file that is renamed when complete, and the in-memory record cache of pass 1.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zstd::stream::raw::{Encoder as RawEncoder, InBuffer, Operation, OutBuffer};

use super::export::Progress;
use super::*;
use crate::error::{Error, Result};
use crate::reason::Reason;

/// Streams a bundle into `out` as age(zstd(tar)): `body` writes the tar entries, this adds the
/// end-of-archive marker. The file is written beside `out` as `.NAME.partial`, synced and renamed
/// only when complete, so a crash or a full disk never leaves a half bundle under the real name.
/// Returns the size of the encrypted file.
pub(super) fn write_encrypted(
    out: &Path,
    recipients: &[age::x25519::Recipient],
    progress: Option<&mut Progress<'_>>,
    body: impl FnOnce(&mut TarOut<'_>) -> Result<()>,
) -> Result<u64> {
    if out.exists() {
        return Err(Error::AlreadyExists(out.to_path_buf()));
    }
    let tmp = temp_path(out);
    let written = (|| -> Result<u64> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let enc =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| Error::invalid(format!("cannot encrypt to these recipients: {e}")))?;
        let age_w = enc.wrap_output(io::BufWriter::new(CountingFile { file, bytes: 0 }))?;
        let mut z = FrameEncoder::new(Encrypting::start(age_w)?, RECORD_LEVEL)?;
        {
            let mut sink = Compressing {
                buf: Vec::with_capacity(COMPRESS_BUF),
                z: &mut z,
                level: RECORD_LEVEL,
                progress,
            };
            let mut tar = TarOut { w: &mut sink };
            body(&mut tar)?;
            tar.finish()?;
            sink.drain()?;
        }
        z.finish()?.finish()
    })();
    let bytes = match written {
        Ok(b) => b,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // Refuse to replace a file that appeared meanwhile.
    if out.exists() {
        let _ = fs::remove_file(&tmp);
        return Err(Error::AlreadyExists(out.to_path_buf()));
    }
    fs::rename(&tmp, out)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(bytes)
}

/// Encrypts and writes on its own thread: zstd's output is handed over in blocks (a few
/// MiB in flight at most), so that encryption and file writes run beside reading, hashing and
/// compressing. `finish` returns the encrypted file's size once it is complete and synced.
pub(super) struct Encrypting {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    thread: Option<std::thread::JoinHandle<io::Result<u64>>>,
}

impl Encrypting {
    pub(super) const BLOCK: usize = 1 << 20;

    pub(super) fn start(
        mut age_w: age::stream::StreamWriter<io::BufWriter<CountingFile>>,
    ) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new()
            .name("bundle-encrypt".into())
            .spawn(move || {
                for block in rx {
                    age_w.write_all(&block)?;
                }
                let counting = age_w.finish()?.into_inner().map_err(|e| e.into_error())?;
                counting.file.sync_all()?;
                Ok(counting.bytes)
            })?;
        Ok(Encrypting {
            tx: Some(tx),
            buf: Vec::with_capacity(Self::BLOCK),
            thread: Some(thread),
        })
    }

    pub(super) fn send(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::BLOCK));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(block).is_ok());
        if sent {
            return Ok(());
        }
        // The thread stopped on an error: report that error.
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| io::Error::other("the encrypting thread stopped")))
    }

    pub(super) fn join(&mut self) -> io::Result<u64> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the encrypting thread panicked")),
            None => Err(io::Error::other("the encrypting thread stopped")),
        }
    }

    /// Hands over the rest, waits for the file to be complete and synced; its size.
    pub(super) fn finish(mut self) -> Result<u64> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(self.join()?)
    }
}

impl Write for Encrypting {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::BLOCK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        // zstd flushes when the level changes; the file needs no flush before the end.
        Ok(())
    }
}

impl Drop for Encrypting {
    /// On an error path: stop the thread before the caller removes the partial file.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

pub(super) fn parse_recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    if list.is_empty() {
        return Err(Error::invalid(
            "a bundle needs at least one recipient (the archive's age1… key)".into(),
        ));
    }
    list.iter()
        .map(|r| {
            r.trim().parse::<age::x25519::Recipient>().map_err(|_| {
                Error::Invalid(Reason::NotARecipient {
                    recipient: r.trim().to_string(),
                })
            })
        })
        .collect()
}

pub(super) fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    out.with_file_name(format!(".{name}.partial"))
}

/// Record files serialised in pass 1, kept zstd-compressed in memory for pass 2, so that
/// records are read and serialised once. The budget bounds memory whatever the vault's size:
/// files beyond it are serialised again in pass 2 (as every file was before). Plaintext in
/// memory only, as the records are anyway while they are written.
pub(super) struct RecordCache {
    left: usize,
    kept: HashMap<&'static str, Vec<u8>>,
}

impl RecordCache {
    /// Compressed bytes kept at most (JSON lines compress about tenfold at level 1).
    pub(super) const BUDGET: usize = 64 << 20;

    pub(super) fn new(budget: usize) -> Self {
        RecordCache {
            left: budget,
            kept: HashMap::new(),
        }
    }

    /// A writer that passes everything to `inner` and keeps a compressed copy while it fits.
    pub(super) fn writer<W: Write>(&self, inner: W) -> CacheWriter<W> {
        let copy = zstd::Encoder::new(Vec::new(), 1).ok();
        // Serialisers write a few bytes at a time: buffer before hashing and compressing.
        CacheWriter(io::BufWriter::with_capacity(
            1 << 16,
            Tee {
                inner,
                copy,
                limit: self.left,
            },
        ))
    }

    pub(super) fn keep(&mut self, path: &'static str, kept: Option<Vec<u8>>) {
        if let Some(bytes) = kept.filter(|b| b.len() <= self.left) {
            self.left -= bytes.len();
            self.kept.insert(path, bytes);
        }
    }

    pub(super) fn take(&mut self, path: &str) -> Option<Vec<u8>> {
        self.kept.remove(path)
    }

    pub(super) fn replay(kept: &[u8], w: &mut dyn Write) -> Result<()> {
        io::copy(&mut zstd::Decoder::with_buffer(kept)?, w)?;
        Ok(())
    }
}

pub(super) struct CacheWriter<W: Write>(io::BufWriter<Tee<W>>);

/// Passes what the buffer flushes to the real writer and to the compressed copy.
pub(super) struct Tee<W> {
    inner: W,
    copy: Option<zstd::Encoder<'static, Vec<u8>>>,
    limit: usize,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(c) = &mut self.copy
            && (c.write_all(&buf[..n]).is_err() || c.get_ref().len() > self.limit)
        {
            self.copy = None;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Write for CacheWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> CacheWriter<W> {
    /// The real writer, and the compressed copy if it stayed within the budget.
    pub(super) fn finish(self) -> Result<(W, Option<Vec<u8>>)> {
        let tee = self.0.into_inner().map_err(|e| e.into_error())?;
        let kept = match tee.copy {
            Some(c) => Some(c.finish()?).filter(|b| b.len() <= tee.limit),
            None => None,
        };
        Ok((tee.inner, kept))
    }
}

pub(super) struct CountingFile {
    file: File,
    bytes: u64,
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// zstd level for records, codebooks and attachments.
pub(super) const RECORD_LEVEL: i32 = 3;
/// zstd level for audio: PCM gains about 6 % at level 1 as at level 3, at about 70 % of the
/// time. (Negative levels gain nothing on it.)
pub(super) const AUDIO_LEVEL: i32 = 1;
/// Bytes gathered before they go to zstd.
pub(super) const COMPRESS_BUF: usize = 1 << 18;

/// zstd's streaming compressor over `w`, which can end a frame and start the next one in the
/// same context (same parameters, same worker), and put frames compressed elsewhere (stored
/// audio chunks) between them: a zstd stream is any sequence of frames. The `zstd` crate's
/// `Encoder` cannot go on once it has ended a frame.
pub(super) struct FrameEncoder<W: Write> {
    cx: RawEncoder<'static>,
    out: Vec<u8>,
    w: W,
    /// Whether input went in since the current frame began (ending it otherwise would write an
    /// empty frame).
    open: bool,
}

impl<W: Write> FrameEncoder<W> {
    pub(super) fn new(w: W, level: i32) -> io::Result<Self> {
        let mut cx = RawEncoder::new(level)?;
        // One compression worker: zstd runs beside this thread (tar, hashing, audio decoding),
        // and age on a third, as `zstd | age` runs as two processes.
        cx.set_parameter(zstd::zstd_safe::CParameter::NbWorkers(1))?;
        Ok(FrameEncoder {
            cx,
            out: Vec::with_capacity(zstd::zstd_safe::CCtx::out_size()),
            w,
            open: false,
        })
    }

    /// Compresses `data` into the current frame.
    pub(super) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut src = InBuffer::around(data);
        while src.pos < data.len() {
            self.cx
                .run(&mut src, &mut OutBuffer::around(&mut self.out))?;
            self.w.write_all(&self.out)?;
        }
        self.open |= !data.is_empty();
        Ok(())
    }

    /// Runs `step` (flush or end of frame) until zstd has nothing left to write.
    pub(super) fn drain(
        &mut self,
        step: fn(&mut RawEncoder<'static>, &mut OutBuffer<'_, Vec<u8>>) -> io::Result<usize>,
    ) -> io::Result<()> {
        loop {
            let left = step(&mut self.cx, &mut OutBuffer::around(&mut self.out))?;
            self.w.write_all(&self.out)?;
            if left == 0 {
                return Ok(());
            }
        }
    }

    /// Flushes what the current frame holds so far. Nothing to flush writes nothing, so that
    /// no part of a frame is out while `open` is false (a stored frame may follow).
    pub(super) fn flush(&mut self) -> io::Result<()> {
        if self.open {
            self.drain(|cx, out| cx.flush(out))
        } else {
            Ok(())
        }
    }

    pub(super) fn set_level(&mut self, level: i32) -> io::Result<()> {
        self.cx
            .set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))
    }

    /// Ends the current frame; the next input starts a new one with the same parameters.
    pub(super) fn end_frame(&mut self) -> io::Result<()> {
        if self.open {
            self.drain(|cx, out| cx.finish(out, false))?;
            self.open = false;
        }
        Ok(())
    }

    /// Writes `frame`, a complete zstd frame, into the stream as it is.
    pub(super) fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.end_frame()?;
        self.w.write_all(frame)
    }

    pub(super) fn finish(mut self) -> io::Result<W> {
        self.end_frame()?;
        Ok(self.w)
    }
}

/// The tar stream's way into zstd: buffered (the tar and JSON writers write small pieces),
/// counted for progress, and able to change the compression level between entries. A level
/// change takes effect at zstd's next job, so it flushes the current one; the frame goes on
/// (zstd allows this in its multithreaded mode).
pub(super) struct Compressing<'z, 'p, 'a, W: Write> {
    buf: Vec<u8>,
    z: &'z mut FrameEncoder<W>,
    level: i32,
    progress: Option<&'p mut Progress<'a>>,
}

impl<W: Write> Compressing<'_, '_, '_, W> {
    pub(super) const BUF: usize = COMPRESS_BUF;

    pub(super) fn drain(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.z.write_all(&self.buf)?;
            if let Some(p) = &mut self.progress {
                p.advance(self.buf.len() as u64, false)?;
            }
            self.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Write for Compressing<'_, '_, '_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > Self::BUF {
            self.drain()?;
        }
        if data.len() >= Self::BUF {
            self.z.write_all(data)?;
            if let Some(p) = &mut self.progress {
                p.advance(data.len() as u64, false)?;
            }
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.z.flush()
    }
}

/// What a tar entry is written into: plain bytes (through [`Write`]) are compressed; a stored
/// zstd frame goes in as it is.
pub(super) trait CompressedOut: Write {
    fn set_level(&mut self, level: i32) -> io::Result<()>;
    /// Writes `frame`, a complete zstd frame holding `plain` bytes of the tar stream, as it is:
    /// the frame being compressed ends before it and a new one starts after it.
    fn frame(&mut self, frame: &[u8], plain: u64) -> io::Result<()>;
}

impl<W: Write> CompressedOut for Compressing<'_, '_, '_, W> {
    fn set_level(&mut self, level: i32) -> io::Result<()> {
        if level != self.level {
            self.flush()?;
            self.z.set_level(level)?;
            self.level = level;
        }
        Ok(())
    }

    fn frame(&mut self, frame: &[u8], plain: u64) -> io::Result<()> {
        self.drain()?;
        self.z.write_frame(frame)?;
        if let Some(p) = &mut self.progress {
            p.advance(plain, false)?;
        }
        Ok(())
    }
}

/// A tar stream written entry by entry, with the data streamed after a header whose size is
/// known in advance (from pass 1).
pub(super) struct TarOut<'a> {
    w: &'a mut dyn CompressedOut,
}

impl TarOut<'_> {
    pub(super) fn header(&mut self, path: &str, size: u64) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_size(size);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(0);
        h.set_cksum();
        self.w.write_all(h.as_bytes())?;
        Ok(())
    }

    pub(super) fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (512 - size % 512) % 512;
        self.w.write_all(&[0u8; 512][..rem as usize])?;
        Ok(())
    }

    pub(super) fn entry(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        self.header(path, size)?;
        let copied = io::copy(data, self.w)?;
        debug_assert_eq!(copied, size);
        self.pad(size)
    }

    /// Writes an entry whose size and hash were planned, and fails if the bytes differ (the
    /// vault changed between the passes, or an attachment or recording no longer matches its
    /// hash).
    pub(super) fn checked_entry(
        &mut self,
        planned: &FileEntry,
        path: &str,
        body: impl FnOnce(&mut EntryOut<'_>) -> Result<()>,
    ) -> Result<()> {
        debug_assert_eq!(planned.path, path);
        self.w.set_level(if path.starts_with("audio/") {
            AUDIO_LEVEL
        } else {
            RECORD_LEVEL
        })?;
        self.header(path, planned.size)?;
        let mut out = EntryOut(HashingWriter::new(&mut *self.w));
        body(&mut out)?;
        let (_, size, sha) = out.0.finish();
        if size != planned.size || sha != planned.sha256 {
            return Err(Error::Corrupt(format!(
                "{path} changed while the bundle was written, or does not match its recorded hash"
            )));
        }
        self.pad(size)
    }

    pub(super) fn finish(&mut self) -> Result<()> {
        self.w.write_all(&[0u8; 1024])?;
        Ok(())
    }
}

/// A tar entry's body on its way into the bundle, hashed and counted as plain bytes.
pub(super) struct EntryOut<'w>(pub(super) HashingWriter<&'w mut dyn CompressedOut>);

impl EntryOut<'_> {
    /// Puts `frame`, a complete zstd frame that decompresses to `plain_len` bytes, into the bundle
    /// as it is, and counts them. The caller hashes them (see `write_bundle_wav`).
    pub(super) fn frame(&mut self, frame: &[u8], plain_len: u64) -> Result<()> {
        self.0.inner.frame(frame, plain_len)?;
        Ok(())
    }
}

impl Write for EntryOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full USB stick: the write fails on the encrypting thread, and the export gets that
    /// error (not a hang, not a vague one).
    #[test]
    fn a_full_disk_on_the_encrypting_thread_is_reported() {
        let file = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let id = age::x25519::Identity::generate();
        let enc = age::Encryptor::with_recipients(std::iter::once(
            &id.to_public() as &dyn age::Recipient
        ))
        .unwrap();
        let age_w = enc
            .wrap_output(io::BufWriter::new(CountingFile { file, bytes: 0 }))
            .unwrap();
        let mut e = Encrypting::start(age_w).unwrap();
        let block = vec![7u8; Encrypting::BLOCK];
        let mut failed = None;
        for _ in 0..64 {
            if let Err(err) = e.write_all(&block) {
                failed = Some(err.to_string());
                break;
            }
        }
        let err = match failed {
            Some(err) => err,
            None => e.finish().unwrap_err().to_string(),
        };
        assert!(err.contains("No space left"), "{err}");
    }
}
