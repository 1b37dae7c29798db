//! Checks a whisper.cpp model file (GGML, the format `ggml-*.bin` models use) before it is
//! handed to whisper.cpp. whisper.cpp's loader reads the file without checking its reads: a
//! file that is not a model, or one cut short by an interrupted copy, can make it allocate
//! absurd amounts of memory or load garbage. So the whole layout is walked here first (header,
//! mel filters, vocabulary, every tensor's header and size) without reading the weights, and
//! anything off is a specific error.
//!
//! Layout (little-endian; whisper.cpp `whisper_model_load`): magic `0x67676d6c`; 11 × i32
//! hyper-parameters; mel filters (i32 n_mel, i32 n_fft, n_mel × n_fft f32); vocabulary (i32 n,
//! then n × (u32 len, bytes)); then tensors until the end of the file: i32 n_dims, i32
//! name_len, i32 type, n_dims × i32 dims, the name, the data.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const GGML_MAGIC: u32 = 0x6767_6d6c;

/// What the header says about a model that passed [`check_model`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub bytes: u64,
    /// "tiny", "base", "small", "medium", "large" (from the number of encoder layers), or "unknown".
    pub size_name: &'static str,
    /// Multilingual models have a vocabulary of at least 51865 tokens; English-only ones 51864.
    pub multilingual: bool,
    pub n_vocab: u32,
    pub n_mels: u32,
    pub tensors: u32,
}

/// (block size, bytes per block) of the GGML tensor types whisper models use.
fn type_size(t: i32) -> Option<(u64, u64)> {
    Some(match t {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

struct Walker {
    r: BufReader<File>,
    pos: u64,
    len: u64,
    path: PathBuf,
}

impl Walker {
    fn truncated(&self, needed: u64) -> Error {
        Error::ModelTruncated {
            path: self.path.clone(),
            actual: self.len,
            needed,
        }
    }
    fn invalid(&self, why: impl Into<String>) -> Error {
        Error::ModelInvalid(self.path.clone(), why.into())
    }
    fn i32(&mut self) -> Result<i32> {
        if self.pos + 4 > self.len {
            return Err(self.truncated(self.pos + 4));
        }
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b)?;
        self.pos += 4;
        Ok(i32::from_le_bytes(b))
    }
    fn skip(&mut self, n: u64) -> Result<()> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.invalid("a length overflows"))?;
        if end > self.len {
            return Err(self.truncated(end));
        }
        self.r.seek_relative(n as i64)?;
        self.pos = end;
        Ok(())
    }
    fn in_range(&self, what: &str, v: i32, lo: i32, hi: i32) -> Result<i32> {
        if v < lo || v > hi {
            return Err(self.invalid(format!("{what} is {v}, outside {lo}..={hi}")));
        }
        Ok(v)
    }
}

/// Walks the model file's layout (see the module docs); reads only headers, never the weights.
pub fn check_model(path: &Path) -> Result<ModelInfo> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ModelMissing(path.to_path_buf()));
        }
        Err(e) => return Err(Error::Io(e)),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(Error::ModelNotGgml(path.to_path_buf(), "it is a directory"));
    }
    let len = meta.len();
    if len < 4 {
        return Err(Error::ModelNotGgml(
            path.to_path_buf(),
            "the file is too small to be one",
        ));
    }
    let mut w = Walker {
        r: BufReader::with_capacity(1 << 16, file),
        pos: 0,
        len,
        path: path.to_path_buf(),
    };
    if w.i32()? as u32 != GGML_MAGIC {
        return Err(Error::ModelNotGgml(
            path.to_path_buf(),
            "it does not start with the GGML magic number (GGUF and PyTorch/CTranslate2 files must be converted first)",
        ));
    }
    // Hyper-parameters.
    let n_vocab = w.i32()?;
    let n_vocab = w.in_range("n_vocab", n_vocab, 1, 1_000_000)?;
    let n_audio_ctx = w.i32()?;
    w.in_range("n_audio_ctx", n_audio_ctx, 1, 100_000)?;
    let n_audio_state = w.i32()?;
    w.in_range("n_audio_state", n_audio_state, 1, 65_536)?;
    let n_audio_head = w.i32()?;
    w.in_range("n_audio_head", n_audio_head, 1, 1024)?;
    let n_audio_layer = w.i32()?;
    let n_audio_layer = w.in_range("n_audio_layer", n_audio_layer, 1, 1024)?;
    let n_text_ctx = w.i32()?;
    w.in_range("n_text_ctx", n_text_ctx, 1, 100_000)?;
    let n_text_state = w.i32()?;
    w.in_range("n_text_state", n_text_state, 1, 65_536)?;
    if n_text_state != n_audio_state {
        return Err(w.invalid("the text and audio state sizes differ"));
    }
    let n_text_head = w.i32()?;
    w.in_range("n_text_head", n_text_head, 1, 1024)?;
    let n_text_layer = w.i32()?;
    w.in_range("n_text_layer", n_text_layer, 1, 1024)?;
    let n_mels = w.i32()?;
    let n_mels = w.in_range("n_mels", n_mels, 1, 1024)?;
    let ftype = w.i32()?;
    if ftype < 0 || !matches!(ftype % 1000, 0..=4 | 7..=14 | 24) {
        return Err(w.invalid(format!("unknown weight type {ftype}")));
    }
    // Mel filters.
    let n_mel = w.i32()?;
    let n_mel = w.in_range("the mel filter count", n_mel, 1, 1024)?;
    let n_fft = w.i32()?;
    let n_fft = w.in_range("the mel filter length", n_fft, 1, 65_536)?;
    w.skip(n_mel as u64 * n_fft as u64 * 4)?;
    // Vocabulary.
    let n_words = w.i32()?;
    let n_words = w.in_range("the vocabulary size", n_words, 1, 1_000_000)?;
    for _ in 0..n_words {
        let l = w.i32()? as u32;
        if l > 4096 {
            return Err(w.invalid(format!("a vocabulary entry is {l} bytes long")));
        }
        w.skip(l as u64)?;
    }
    // Tensors, until the file ends exactly after one.
    let mut tensors = 0u32;
    while w.pos < w.len {
        let n_dims = w.i32()?;
        let n_dims = w.in_range("a tensor's dimension count", n_dims, 1, 4)?;
        let name_len = w.i32()?;
        let name_len = w.in_range("a tensor's name length", name_len, 1, 1024)?;
        let ttype = w.i32()?;
        let (block, block_bytes) = type_size(ttype)
            .ok_or_else(|| w.invalid(format!("a tensor has the unsupported type {ttype}")))?;
        let mut elements: u64 = 1;
        for _ in 0..n_dims {
            let d = w.i32()?;
            let d = w.in_range("a tensor dimension", d, 1, i32::MAX)?;
            elements = elements
                .checked_mul(d as u64)
                .ok_or_else(|| w.invalid("a tensor is impossibly large"))?;
        }
        if !elements.is_multiple_of(block) {
            return Err(w.invalid("a tensor's size does not fit its type's blocks"));
        }
        w.skip(name_len as u64)?;
        w.skip(elements / block * block_bytes)?;
        tensors += 1;
    }
    if tensors == 0 {
        return Err(w.truncated(w.len + 1));
    }
    let size_name = match n_audio_layer {
        4 => "tiny",
        6 => "base",
        12 => "small",
        24 => "medium",
        32 => "large",
        _ => "unknown",
    };
    Ok(ModelInfo {
        path: path.to_path_buf(),
        bytes: len,
        size_name,
        multilingual: n_vocab >= 51865,
        n_vocab: n_vocab as u32,
        n_mels: n_mels as u32,
        tensors,
    })
}

/// A file in the models folder that failed [`check_model`], with why.
pub type RejectedModel = (PathBuf, Error);

/// The model files (`*.bin` that pass [`check_model`]) in a folder, sorted by name, and the
/// files there that failed the check with why; for a settings screen's model list.
pub fn find_models(dir: &Path) -> Result<(Vec<ModelInfo>, Vec<RejectedModel>)> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "bin"))
        .collect();
    paths.sort();
    for p in paths {
        match check_model(&p) {
            Ok(info) => good.push(info),
            Err(e) => bad.push((p, e)),
        }
    }
    Ok((good, bad))
}
