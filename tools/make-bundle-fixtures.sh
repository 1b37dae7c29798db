#!/usr/bin/env bash
# Writes a set of bundle fixtures with today's `testimony` binary: an archive directory (created,
# with the field device trusted, before any import), a field vault, a full bundle, an
# incremental bundle, a return bundle from the archive to the device, and expected.json, which
# says what crates/archive/tests/fixtures.rs must find after importing them.
#
#   tools/make-bundle-fixtures.sh OUTDIR
#
# OUTDIR must not exist (or be empty). Committed fixtures live in
# assets/fixtures/bundles/<folder>/ and are NEVER regenerated in place: they prove that bundles
# written by an older Testimony still import. When the format changes, write a NEW folder next
# to the old ones and keep those (see assets/fixtures/bundles/README.md).
#
# FICTIONAL DATA ONLY, fixed test passphrases (below, also in expected.json and the README).
# Uses target/debug/testimony (built with cargo if missing) or $TESTIMONY_BIN.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$1"
if [[ -e "$OUT" && -n "$(ls -A "$OUT")" ]]; then
    echo "$OUT exists and is not empty: fixtures are never overwritten; pick a new folder" >&2
    exit 1
fi
BIN="${TESTIMONY_BIN:-$ROOT/target/debug/testimony}"
if [[ ! -x "$BIN" ]]; then
    (cd "$ROOT" && cargo build -p testimony-cli)
fi
command -v python3 >/dev/null || {
    echo "python3 is needed to write expected.json" >&2
    exit 1
}

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Test passphrases for fictional fixtures: printed on purpose.
VAULT_PASS="fixture vault passphrase (fictional data only)"
ARCHIVE_PASS="fixture archive passphrase (fictional data only)"
INTERVIEWER="Fixture Interviewer (fictional)"

export TESTIMONY_VAULT="$WORK/vault"
export TESTIMONY_ARCHIVE="$WORK/archive"
export TESTIMONY_PASSPHRASE="$VAULT_PASS"
export TESTIMONY_ARCHIVE_PASSPHRASE="$ARCHIVE_PASS"
unset TESTIMONY_ARCHIVE_POSTGRES TESTIMONY_NEW_PASSPHRASE

t() { "$BIN" --json "$@"; }
# A field of the JSON on stdin: jq-like path "a.b" (dots only).
field() {
    python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}

# --- The archive: created and the device trusted, then copied as it is (before any import).
t archive init >"$WORK/archive-init.json"
t archive id >"$WORK/archive-id.json"
RECIPIENT="$(field recipient <"$WORK/archive-id.json")"
SIGNING_KEY="$(field signing_key <"$WORK/archive-id.json")"

t init --interviewer "$INTERVIEWER" >"$WORK/vault-init.json"
t device id >"$WORK/device.json"
DEVICE_KEY="$(field public_key <"$WORK/device.json")"

t archive device trust "$DEVICE_KEY" --name "fixture laptop (fictional)" >/dev/null
mkdir "$OUT/archive"
for f in archive.json archive.db archive.lock; do
    cp "$WORK/archive/$f" "$OUT/archive/$f"
done
leftover="$(cd "$WORK/archive" && ls -A | grep -v -x -e archive.json -e archive.db -e archive.lock -e quarantine || true)"
if [[ -n "$leftover" ]]; then
    echo "unexpected files in the archive directory: $leftover" >&2
    exit 1
fi

# --- The field vault: fictional witnesses and an interview in Korean and English.
t recipient set "$RECIPIENT" >/dev/null
add_witness() { t witness add "$@" | field code; }
W_SHARED="$(add_witness --gender female --birth-year 1979 --home-province north_hamgyong \
    --year-left 2011 --repatriations 1 --real-name "Fictional Name One")"
W_PRIVATE="$(add_witness --gender male --birth-year 1968)"
W_WITHDRAWN="$(add_witness --gender undisclosed)"
t consent set "$W_SHARED" --scopes record_audio,transcribe,share_archive --taken-by "$INTERVIEWER" --method oral >/dev/null
t consent set "$W_PRIVATE" --scopes record_audio,transcribe --taken-by "$INTERVIEWER" --method written >/dev/null
t consent set "$W_WITHDRAWN" --scopes share_archive --taken-by "$INTERVIEWER" >/dev/null

INTERVIEW="$(t interview new --witness "$W_SHARED" --languages ko,en --place "Seoul" | field id)"
answer() { printf '%s' "$3" | t interview answer "$1" "$2" - "${@:4}" >/dev/null; }
answer "$INTERVIEW" ever_detained yes
EPISODE="$(t interview add-group "$INTERVIEW" detention_episode | field id)"
answer "$INTERVIEW" det_facility_type kyohwaso --instance "$EPISODE"
answer "$INTERVIEW" det_facility_name "전거리 교화소 (가상의 시설)" --instance "$EPISODE"
answer "$INTERVIEW" det_hours 12 --instance "$EPISODE"
answer "$INTERVIEW" cl_anything_else "가상의 증언입니다: 매일 열두 시간 가발을 만들었다."
answer "$INTERVIEW" bg_workplace "A fictional shoe factory in Chongjin"
printf '%s' "증언자가 피곤해 보였다 (fictional note)" | t interview note "$INTERVIEW" - >/dev/null

# One second of a 440 Hz tone, 16 kHz mono 16-bit.
if command -v sox >/dev/null; then
    sox -q -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/tone.wav" synth 1 sine 440 vol 0.25
else
    python3 - "$WORK/tone.wav" <<'PY'
import math, struct, sys, wave
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(16000)))
PY
fi
RECORDING="$(t record "$INTERVIEW" --from-wav "$WORK/tone.wav" | field id)"
t recording marker "$RECORDING" --at 500 --label "감시탑 guard tower (fictional)" --question cl_anything_else >/dev/null

PRIVATE_INTERVIEW="$(t interview new --witness "$W_PRIVATE" --languages ko | field id)"
answer "$PRIVATE_INTERVIEW" cl_anything_else "WITHHELD-FICTIONAL-ANSWER must never reach the archive"
WITHDRAWN_INTERVIEW="$(t interview new --witness "$W_WITHDRAWN" --languages en | field id)"
answer "$WITHDRAWN_INTERVIEW" cl_anything_else "WITHDRAWN-FICTIONAL-ANSWER removed by bundle 2"

t interview show "$INTERVIEW" >"$WORK/interview-1.json"
t export --full --out "$OUT/bundle-1-full.tbundle" >"$WORK/export-1.json"

# --- Changes after bundle 1: a new answer, an edited answer, a withdrawal of consent.
answer "$INTERVIEW" dep_route "두만강을 건너 중국으로 (fictional route)"
answer "$INTERVIEW" cl_anything_else "가상의 증언입니다: 매일 열두 시간 가발과 속눈썹을 만들었다. (edited)"
t consent withdraw "$W_WITHDRAWN" >/dev/null
t interview show "$INTERVIEW" >"$WORK/interview-2.json"
t export --out "$OUT/bundle-2-incremental.tbundle" >"$WORK/export-2.json"

# (It warns on stderr that the WAV is plaintext: kept quiet unless the command fails.)
t recording export-wav "$RECORDING" --out "$WORK/recording.wav" >/dev/null 2>"$WORK/export-wav.err" ||
    { cat "$WORK/export-wav.err" >&2 && exit 1; }
t recording show "$RECORDING" >"$WORK/recording.json"

# --- The archive side, on the working copy: import both, publish a codebook, write a return
# bundle for the device. The committed archive stays as it was before any import.
t archive import "$OUT/bundle-1-full.tbundle" "$OUT/bundle-2-incremental.tbundle" >"$WORK/imports.json"
t archive codebook add "$ROOT/assets/fixtures/small-codebook.toml" >"$WORK/codebook.json"
t archive return --device "$DEVICE_KEY" --out "$OUT/return-1.tbundle" >"$WORK/return.json"
t archive show "$INTERVIEW" >"$WORK/archive-interview.json"

# The device accepts returns from this archive; the vault is copied as it is now (before the
# return bundle is applied).
t trust-archive "$SIGNING_KEY" >/dev/null
mkdir "$OUT/vault"
for f in "$WORK/vault"/*; do
    case "$(basename "$f")" in
    *-wal | *-shm) echo "unexpected $f after the last command ended" >&2 && exit 1 ;;
    esac
    cp -r "$f" "$OUT/vault/"
done

COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git -C "$ROOT" status --porcelain -- crates 2>/dev/null | head -1)"
VERSION="$("$BIN" --version | awk '{print $2}')"

python3 - "$WORK" "$OUT" <<PY
import hashlib, json, os, sys
work, out = sys.argv[1], sys.argv[2]
def load(name):
    with open(os.path.join(work, name), encoding="utf-8") as f:
        return json.load(f)
def answers(detail):
    return {f"{a['question_id']}#{a.get('instance_id') or ''}": a["value"] for a in detail["answers"]}
def bundle(name, report):
    return {
        "file": name,
        "sequence": report["sequence"],
        "kind": report["kind"],
        "bundle_hash": report["bundle_hash"],
        "bytes": os.path.getsize(os.path.join(out, name)),
        "counts": report["counts"],
    }
i1, i2 = load("interview-1.json"), load("interview-2.json")
wav = open(os.path.join(work, "recording.wav"), "rb").read()
rec = load("recording.json")
rec = rec.get("recording", rec)
ret = load("return.json")
cb = load("codebook.json")
imports = load("imports.json")
# Sanity check at writing time: the archive (working copy) holds what the vault holds.
if answers(load("archive-interview.json")) != answers(i2):
    sys.exit("the archive's answers differ from the vault's after importing both bundles")
if [r["outcome"] for r in imports] != ["imported", "imported"]:
    sys.exit(f"unexpected import outcomes: {[r['outcome'] for r in imports]}")
expected = {
    "comment": "Fixtures with FICTIONAL data and test passphrases, written by tools/make-bundle-fixtures.sh. Never regenerate in place.",
    "written_by": {"testimony_version": "$VERSION", "commit": "$COMMIT", "uncommitted_changes_in_crates": bool("$DIRTY")},
    "bundle_format_version": 1,
    "archive_dir": "archive",
    "archive_passphrase": os.environ["TESTIMONY_ARCHIVE_PASSPHRASE"],
    "archive_recipient": "$RECIPIENT",
    "archive_signing_key": "$SIGNING_KEY",
    "vault_dir": "vault",
    "vault_passphrase": os.environ["TESTIMONY_PASSPHRASE"],
    "device_public_key": "$DEVICE_KEY",
    "bundles": [bundle("bundle-1-full.tbundle", load("export-1.json")), bundle("bundle-2-incremental.tbundle", load("export-2.json"))],
    "import_reports": [{k: r[k] for k in ("outcome", "sequence", "kind", "added", "updated", "unchanged", "deleted", "conflicts", "purged_for_withdrawal", "recordings_audio")} for r in imports],
    "interview": {
        "id": "$INTERVIEW",
        "witness_code": "$W_SHARED",
        "languages": i2["interview"]["languages"],
        "answers_after_bundle_1": answers(i1),
        "answers_after_bundle_2": answers(i2),
        "notes": [n["text"] for n in i2["notes"]],
        "group_instances": ["$EPISODE"],
    },
    "withheld": {"witness_code": "$W_PRIVATE", "interview_id": "$PRIVATE_INTERVIEW", "text": "WITHHELD-FICTIONAL-ANSWER"},
    "withdrawn": {"witness_code": "$W_WITHDRAWN", "interview_id": "$WITHDRAWN_INTERVIEW", "text": "WITHDRAWN-FICTIONAL-ANSWER"},
    "recording": {
        "id": "$RECORDING",
        "interview_id": "$INTERVIEW",
        "duration_ms": rec["duration_ms"],
        "sample_rate": rec["sample_rate"],
        "channels": rec["channels"],
        "wav_bytes": len(wav),
        "wav_sha256": hashlib.sha256(wav).hexdigest(),
        "marker_label": "감시탑 guard tower (fictional)",
    },
    "return_bundle": {
        "file": "return-1.tbundle",
        "sequence": ret["sequence"],
        "bytes": os.path.getsize(os.path.join(out, "return-1.tbundle")),
        "codebook": {"id": cb["id"], "version": cb["version"]},
    },
}
with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
    json.dump(expected, f, ensure_ascii=False, indent=2, sort_keys=True)
    f.write("\n")
PY

echo "Wrote fixtures to $OUT (commit $COMMIT${DIRTY:+, with uncommitted changes in crates/}):"
(cd "$OUT" && find . -type f | sort | xargs ls -l)
du -sh "$OUT"
