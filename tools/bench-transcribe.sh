#!/usr/bin/env bash
# Transcription benchmark (issue #5): Testimony's pipeline (`testimony transcribe-file`, release
# build) against whisper.cpp's own way of transcribing a file (tools/whisper-baseline.c: one
# whisper_full call over the whole file, as whisper-cli does), built with cmake from the very
# whisper.cpp sources that whisper-rs-sys vendors, with the same model, audio, thread count,
# priority and decoding settings, in one run. Results and how to read them: docs/performance.md
# ("Transcription").
#
#   tools/bench-transcribe.sh
#   TESTIMONY_BENCH_MINUTES=5 TESTIMONY_BENCH_RUNS=1 TESTIMONY_BENCH_MEMORY_HOURS=0 tools/bench-transcribe.sh   # quick
#
# Knobs: TESTIMONY_WHISPER_MODELS (default: the cache ./run test fills), TESTIMONY_BENCH_MODEL
# (ggml-tiny.en.bin), TESTIMONY_BENCH_MINUTES (speech for the speed runs, 10),
# TESTIMONY_BENCH_RUNS (alternating runs of each, 3; the median counts),
# TESTIMONY_BENCH_MEMORY_HOURS (the file for the peak-memory runs, 1; 0 skips them),
# TESTIMONY_BENCH_WINDOW_SECONDS (the pipeline's window; unset: its default).
# Needs cmake, a C/C++ compiler, espeak-ng, sox and /usr/bin/time (Debian: time). Builds in a
# temporary folder under /tmp, deleted at the end; nothing is committed or installed.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cmake cc c++ espeak-ng sox /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "needs $tool (Debian: cmake build-essential espeak-ng sox time)" >&2; exit 1; }
done
MODELS=${TESTIMONY_WHISPER_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/testimony/whisper-models}
MODEL="$MODELS/${TESTIMONY_BENCH_MODEL:-ggml-tiny.en.bin}"
[ -f "$MODEL" ] || { echo "no model at $MODEL (./run test builds the test models; or set TESTIMONY_WHISPER_MODELS)" >&2; exit 1; }
MINUTES=${TESTIMONY_BENCH_MINUTES:-10}
RUNS=${TESTIMONY_BENCH_RUNS:-3}
MEM_HOURS=${TESTIMONY_BENCH_MEMORY_HOURS:-1}
LANGUAGE=en
# The pipeline leaves a core for recording (crates/transcribe/src/priority.rs); the baseline
# gets the same number of threads, and runs at the same nice value as the pipeline's thread.
THREADS=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))
NICE=10

WORK=$(mktemp -d /tmp/testimony-bench-transcribe.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The whisper.cpp sources of the whisper-rs-sys version in Cargo.lock.
SYS_VERSION=$(grep -A1 '^name = "whisper-rs-sys"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
SRC=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/whisper-rs-sys-"$SYS_VERSION"/whisper.cpp 2>/dev/null | head -n1)
[ -d "$SRC" ] || { echo "whisper-rs-sys $SYS_VERSION sources not found: run cargo fetch first" >&2; exit 1; }
echo "== whisper.cpp from whisper-rs-sys $SYS_VERSION: $SRC"

echo "== building the baseline (cmake, Release, static, no OpenMP: as whisper-rs-sys builds it)"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DWHISPER_BUILD_EXAMPLES=OFF \
  -DWHISPER_BUILD_TESTS=OFF -DGGML_OPENMP=OFF >"$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log"; exit 1; }
cmake --build "$WORK/build" -j "$(nproc)" >>"$WORK/cmake.log" 2>&1 || { tail -50 "$WORK/cmake.log"; exit 1; }
c++ -O2 -x c tools/whisper-baseline.c -x none -I"$SRC/include" -I"$SRC/ggml/include" \
  "$WORK/build/src/libwhisper.a" $(find "$WORK/build/ggml" -name 'libggml*.a' | sort -r) -lpthread -lm -o "$WORK/whisper-baseline"

echo "== building testimony (release)"
cargo build --release --locked -q -p testimony-cli
TESTIMONY="${CARGO_TARGET_DIR:-target}/release/testimony"

# Speech-like audio: 30-second blocks of espeak-ng English (three sentences drawn from a pool,
# seeded, so consecutive blocks differ) padded with silence, about a third of it speech; 16 kHz
# mono 16-bit WAV (the baseline reads only that). The text must not repeat verbatim block after
# block: four identical segments in a row is what the pipeline's repetition-loop recovery looks
# for (crates/transcribe/src/repetition.rs), and it would re-transcribe the window (an earlier
# version of this script did exactly that and measured the pipeline at 2x the baseline).
SENTENCES=(
  "The guards took us to the mine before sunrise."
  "We worked for twelve hours without food."
  "In the winter many prisoners became sick, and nobody was allowed to see a doctor."
  "My brother was arrested by the security police in the spring of that year."
  "They told us that our family had a bad background."
  "The camp was surrounded by two fences and a guard tower."
  "Every evening we had to confess our mistakes in front of the group."
  "The women in our unit made wigs and false eyelashes for export."
  "I was sent back from China after the police found me at the border."
  "The interrogation room had no windows and only one chair."
  "We were given corn soup twice a day, and sometimes nothing at all."
  "A truck came every week to take the coal to the railway station."
  "The quota for each team was written on a board near the gate."
  "My mother tried to visit me, but the guards sent her away."
  "Nobody knew how long the sentence would be."
  "Some prisoners died in the mine when the tunnel collapsed."
  "I saw the officer beat an old man because he was too slow."
  "The factory manager said the products were sold to buyers abroad."
  "At night we slept on the floor, thirty people in one room."
  "I escaped across the river in the summer, when the water was low."
  "They made us sing songs of praise before every meal."
  "The doctor at the holding center never examined anyone."
  "My friend was taken away one morning and never came back."
  "We were forbidden to speak about religion or to pray."
)
make_audio() { # OUT SECONDS
  local blocks i text
  blocks=$(python3 -c "print(max(1, round($2 / 30)))")
  mkdir -p "$WORK/blocks"
  # One line per block: three distinct sentences, seeded so every run gets the same audio.
  python3 -c "
import random, sys
r = random.Random(7); n = int(sys.argv[1]); k = int(sys.argv[2])
for _ in range(n): print(' '.join(str(i) for i in r.sample(range(k), 3)))" "$blocks" "${#SENTENCES[@]}" >"$WORK/blocks/plan"
  i=0
  while read -r a b c; do
    text="${SENTENCES[$a]} ${SENTENCES[$b]} ${SENTENCES[$c]}"
    espeak-ng -v en-us -s 150 -w "$WORK/blocks/s.wav" "$text"
    # Each block exactly 30 s: half a second of silence, the speech, silence to fill.
    sox -V1 "$WORK/blocks/s.wav" -r 16000 -c 1 -b 16 "$WORK/blocks/$(printf %05d $i).wav" pad 0.5 30 trim 0 30
    i=$((i + 1))
  done <"$WORK/blocks/plan"
  sox "$WORK"/blocks/0*.wav "$1"
  rm -rf "$WORK/blocks"
}

measure() { # LABEL AUDIO -> "seconds peak_kB"
  local label=$1 audio=$2
  if [ "$label" = testimony ]; then
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$TESTIMONY" transcribe-file "$audio" --model "$MODEL" --language "$LANGUAGE" \
      ${TESTIMONY_BENCH_WINDOW_SECONDS:+--window-seconds "$TESTIMONY_BENCH_WINDOW_SECONDS"} >"$WORK/out-$label.txt" 2>"$WORK/err-$label.txt"
  else
    /usr/bin/time -f "%e %M" -o "$WORK/time" nice -n "$NICE" "$WORK/whisper-baseline" "$MODEL" "$audio" "$THREADS" "$LANGUAGE" >"$WORK/out-$label.txt" 2>"$WORK/err-$label.txt"
  fi
  cat "$WORK/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

make_audio "$WORK/speed.wav" $((MINUTES * 60))
AUDIO_S=$(soxi -D "$WORK/speed.wav")
echo "== speed: $(basename "$MODEL"), ${AUDIO_S%.*} s of audio, $THREADS thread(s), nice $NICE, $RUNS run(s) each, alternating"
: >"$WORK/t-testimony"; : >"$WORK/t-baseline"
for r in $(seq "$RUNS"); do
  for who in baseline testimony; do
    read -r secs kb < <(measure "$who" "$WORK/speed.wav")
    echo "$secs" >>"$WORK/t-$who"
    printf '   run %d %-10s %8.1f s  RTF %.3f  peak %d MiB  %d segments\n' "$r" "$who" "$secs" "$(python3 -c "print($secs / $AUDIO_S)")" $((kb / 1024)) "$(wc -l <"$WORK/out-$who.txt")"
  done
done
B=$(median <"$WORK/t-baseline"); T=$(median <"$WORK/t-testimony")
printf '   median: baseline %.1f s (RTF %.3f), testimony %.1f s (RTF %.3f): testimony/baseline = %.3f (target <= 1.05)\n' \
  "$B" "$(python3 -c "print($B / $AUDIO_S)")" "$T" "$(python3 -c "print($T / $AUDIO_S)")" "$(python3 -c "print($T / $B)")"

if [ "$MEM_HOURS" != 0 ]; then
  make_audio "$WORK/long.wav" "$(python3 -c "print(int($MEM_HOURS * 3600))")"
  echo "== peak memory: $(soxi -d "$WORK/long.wav") of audio (one run each)"
  for who in baseline testimony; do
    read -r secs kb < <(measure "$who" "$WORK/long.wav")
    printf '   %-10s peak %d MiB  %8.1f s  %d segments\n' "$who" $((kb / 1024)) "$secs" "$(wc -l <"$WORK/out-$who.txt")"
  done
fi
