#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (faster-whisper's model.bin) to a whisper.cpp GGML file.

Usage: ct2_to_ggml.py MODEL.bin ASSETS_DIR OUT.bin
  MODEL.bin   CTranslate2 model with float16 or float32 weights
  ASSETS_DIR  whisper/assets from the openai-whisper sdist (mel filters and tokenizer vocabularies)

The output has the layout of whisper.cpp's models/convert-pt-to-ggml.py: 2-D and larger weights in
float16; biases, norms, conv biases and positional embeddings in float32. Python's standard library
only: every weight is float16 already, so it is copied as bytes, and the few float32 tensors are
small; no numpy wheel (platform-specific, hard to pin by hash) is needed.
"""
import base64
import os
import re
import struct
import sys
import zipfile

# CTranslate2's DataType ids (include/ctranslate2/types.h) and their struct codes.
CT2_TYPES = {0: "f", 1: "b", 2: "h", 3: "i", 4: "e"}
FLOAT16, FLOAT32 = 4, 0
GGML_FTYPE = {FLOAT32: 0, FLOAT16: 1}  # ggml's own type numbers in each tensor header


class Tensor:
    """A CTranslate2 variable: shape, type id and its little-endian bytes (a view, not a copy)."""

    def __init__(self, shape, type_id, data):
        self.shape, self.type_id, self.data = tuple(shape), type_id, data

    def values(self):
        code = CT2_TYPES[self.type_id]
        return struct.unpack(f"<{len(self.data) // struct.calcsize(code)}{code}", self.data)

    def rows(self, start, stop):
        """Rows start..stop of the first axis (weights are row-major, so this is a byte slice)."""
        row = len(self.data) // self.shape[0]
        return Tensor((stop - start,) + self.shape[1:], self.type_id, self.data[start * row:stop * row])


def read_ct2(path):
    """Parse model.bin (header, variables, then aliases) into {name: Tensor}."""
    with open(path, "rb") as f:
        buf = memoryview(f.read())
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal pos
        (n,) = take("H")  # length includes the trailing NUL
        s = bytes(buf[pos:pos + n]).rstrip(b"\0").decode()
        pos += n
        return s

    (version,) = take("I")
    if version < 5:
        sys.exit(f"{path}: CTranslate2 format version {version} is not supported (need 5 or newer)")
    spec = string()
    if spec != "WhisperSpec":
        sys.exit(f"{path}: a {spec} model, not Whisper")
    take("I")  # spec revision
    (count,) = take("I")
    tensors = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        shape = take(f"{rank}I") if rank else ()
        type_id, nbytes = take("B") + take("I")
        if type_id not in CT2_TYPES:
            sys.exit(f"{path}: {name} has CTranslate2 type {type_id}, which this converter cannot read")
        tensors[name] = Tensor(shape, type_id, buf[pos:pos + nbytes])
        pos += nbytes
    return tensors  # aliases (decoder/projection -> embeddings) are not needed by whisper.cpp


def layer_count(tensors, side):
    return len({m.group(1) for k in tensors if (m := re.match(side + r"/layer_(\d+)/", k))})


def mel_filters(assets, n_mels):
    """The mel_N array of mel_filters.npz as (shape, float32 bytes); .npy is a tiny header + raw data."""
    with zipfile.ZipFile(os.path.join(assets, "mel_filters.npz")) as z:
        raw = z.read(f"mel_{n_mels}.npy")
    if raw[:6] != b"\x93NUMPY":
        sys.exit("mel_filters.npz: not a .npy member")
    major = raw[6]
    hlen, start = (struct.unpack_from("<H", raw, 8)[0], 10) if major == 1 else (struct.unpack_from("<I", raw, 8)[0], 12)
    header = raw[start:start + hlen].decode("latin1")
    shape = tuple(int(d) for d in re.search(r"'shape':\s*\(([^)]*)\)", header).group(1).split(",") if d.strip())
    if "'descr': '<f4'" not in header or "'fortran_order': False" not in header or len(shape) != 2:
        sys.exit(f"mel_filters.npz: unexpected array header {header.strip()}")
    return shape, raw[start + hlen:]


def vocabulary(assets, multilingual):
    """Token byte strings in rank order, from the tiktoken file ("base64 rank" per line)."""
    name = "multilingual.tiktoken" if multilingual else "gpt2.tiktoken"
    with open(os.path.join(assets, name), "rb") as f:
        return [base64.b64decode(line.split()[0]) for line in f.read().splitlines() if line]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, assets, out = sys.argv[1:]
    V = read_ct2(src)
    scalar = lambda name: int(V[name].values()[0])

    n_vocab, n_text_state = V["decoder/embeddings/weight"].shape
    n_audio_ctx, n_audio_state = V["encoder/position_encodings/encodings"].shape
    n_text_ctx = V["decoder/position_encodings/encodings"].shape[0]
    n_mels = V["encoder/conv1/weight"].shape[1]
    # whisper.cpp's header order; the last field (ftype 1) says the weights are mostly float16.
    hparams = [n_vocab, n_audio_ctx, n_audio_state, scalar("encoder/num_heads"), layer_count(V, "encoder"),
               n_text_ctx, n_text_state, scalar("decoder/num_heads"), layer_count(V, "decoder"), n_mels, 1]

    # OpenAI parameter names (which whisper.cpp looks up) -> CTranslate2 tensors, in the order
    # convert-pt-to-ggml.py writes them so the files are comparable byte for byte.
    T = {
        "encoder.conv1.weight": V["encoder/conv1/weight"],
        "encoder.conv1.bias": V["encoder/conv1/bias"],
        "encoder.conv2.weight": V["encoder/conv2/weight"],
        "encoder.conv2.bias": V["encoder/conv2/bias"],
        "encoder.positional_embedding": V["encoder/position_encodings/encodings"],
        "decoder.token_embedding.weight": V["decoder/embeddings/weight"],
        "decoder.positional_embedding": V["decoder/position_encodings/encodings"],
    }

    def linear(dst, src):
        T[dst + ".weight"], T[dst + ".bias"] = V[src + "/weight"], V[src + "/bias"]

    def norm(dst, src):
        T[dst + ".weight"], T[dst + ".bias"] = V[src + "/gamma"], V[src + "/beta"]

    for side in ("encoder", "decoder"):
        for i in range(layer_count(V, side)):
            s, d = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            norm(d + ".attn_ln", s + "/self_attention/layer_norm")
            # CTranslate2 fuses query, key and value into one [3n, n] projection; Whisper's key
            # projection has no bias (CTranslate2 stores zeros there), so it is left out.
            w, b = V[s + "/self_attention/linear_0/weight"], V[s + "/self_attention/linear_0/bias"]
            n = w.shape[1]
            T[d + ".attn.query.weight"], T[d + ".attn.key.weight"], T[d + ".attn.value.weight"] = (
                w.rows(0, n), w.rows(n, 2 * n), w.rows(2 * n, 3 * n))
            T[d + ".attn.query.bias"], T[d + ".attn.value.bias"] = b.rows(0, n), b.rows(2 * n, 3 * n)
            linear(d + ".attn.out", s + "/self_attention/linear_1")
            if side == "decoder":
                norm(d + ".cross_attn_ln", s + "/attention/layer_norm")
                linear(d + ".cross_attn.query", s + "/attention/linear_0")
                # Cross-attention fuses key and value into one [2n, n] projection (key: no bias).
                w, b = V[s + "/attention/linear_1/weight"], V[s + "/attention/linear_1/bias"]
                n = w.shape[1]
                T[d + ".cross_attn.key.weight"], T[d + ".cross_attn.value.weight"] = w.rows(0, n), w.rows(n, 2 * n)
                T[d + ".cross_attn.value.bias"] = b.rows(n, 2 * n)
                linear(d + ".cross_attn.out", s + "/attention/linear_2")
            norm(d + ".mlp_ln", s + "/ffn/layer_norm")
            linear(d + ".mlp.0", s + "/ffn/linear_0")
            linear(d + ".mlp.2", s + "/ffn/linear_1")
    norm("encoder.ln_post", "encoder/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")

    multilingual = n_vocab >= 51865  # English-only models have one token fewer
    (mel_rows, mel_cols), mel = mel_filters(assets, n_mels)
    tokens = vocabulary(assets, multilingual)
    # whisper.cpp keeps these in float32 (conv biases are added as [n, 1] columns).
    keep_f32 = {"encoder.conv1.bias", "encoder.conv2.bias",
                "encoder.positional_embedding", "decoder.positional_embedding"}

    with open(out, "wb") as f:
        f.write(struct.pack("<i", 0x67676D6C))  # "ggml"
        f.write(struct.pack("<11i", *hparams))
        f.write(struct.pack("<ii", mel_rows, mel_cols))
        f.write(mel)
        f.write(struct.pack("<i", len(tokens)))
        for t in tokens:
            f.write(struct.pack("<i", len(t)) + t)
        for name, t in T.items():
            shape = t.shape + (1,) if name in ("encoder.conv1.bias", "encoder.conv2.bias") else t.shape
            want = FLOAT32 if len(shape) < 2 or name in keep_f32 else FLOAT16
            if t.type_id not in (FLOAT16, FLOAT32):
                sys.exit(f"{src}: {name} is quantized (CTranslate2 type {t.type_id}); use a float16 model")
            if t.type_id == want:
                data = t.data  # already the right type: copy the bytes as they are
            else:  # float16 <-> float32 through Python floats: exact one way, round-to-nearest-even the other
                vals = t.values()
                data = struct.pack(f"<{len(vals)}{CT2_TYPES[want]}", *vals)
            encoded = name.encode()
            f.write(struct.pack("<iii", len(shape), len(encoded), GGML_FTYPE[want]))
            f.write(struct.pack(f"<{len(shape)}i", *reversed(shape)))  # ggml lists dimensions innermost first
            f.write(encoded)
            f.write(data)
    print(f"{os.path.basename(out)}: {len(T)} tensors, vocabulary {len(tokens)}, "
          f"{'multilingual' if multilingual else 'English only'}, hparams {hparams}")


if __name__ == "__main__":
    main()
