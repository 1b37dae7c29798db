// The baseline for tools/bench-transcribe.sh: what whisper.cpp's own `whisper-cli` does with a
// file, as a minimal program over the same library. (The whisper.cpp sources that whisper-rs-sys
// vendors carry the library but not the examples, so whisper-cli itself cannot be built from
// them.) Like whisper-cli: the whole file in memory, one whisper_full call (whisper.cpp's own
// 30-second seek loop), segments printed to stdout. Same decoding settings as Testimony's
// pipeline (crates/transcribe/src/whisper.rs): greedy, best_of 1, no previous-call context.
//
//   whisper-baseline MODEL WAV THREADS LANGUAGE     (WAV: 16 kHz mono 16-bit PCM)
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "whisper.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)level; (void)text; (void)user;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL WAV THREADS LANGUAGE\n", argv[0]);
        return 2;
    }
    whisper_log_set(quiet, NULL);
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *bytes = malloc(len);
    if (!bytes || fread(bytes, 1, len, f) != (size_t)len) { fprintf(stderr, "read failed\n"); return 1; }
    fclose(f);
    // Find the "data" chunk of the RIFF file.
    long pos = 12, data = -1;
    uint32_t data_len = 0;
    while (pos + 8 <= len) {
        uint32_t n = bytes[pos + 4] | bytes[pos + 5] << 8 | bytes[pos + 6] << 16 | (uint32_t)bytes[pos + 7] << 24;
        if (memcmp(bytes + pos, "data", 4) == 0) { data = pos + 8; data_len = n; break; }
        pos += 8 + n + (n & 1);
    }
    if (data < 0) { fprintf(stderr, "no data chunk\n"); return 1; }
    if (data + (long)data_len > len) data_len = len - data;
    int n_samples = data_len / 2;
    float *pcm = malloc(sizeof(float) * n_samples);
    for (int i = 0; i < n_samples; i++) {
        int16_t s = (int16_t)(bytes[data + 2 * i] | bytes[data + 2 * i + 1] << 8);
        pcm[i] = s / 32768.0f;
    }
    free(bytes);

    struct whisper_context_params cp = whisper_context_default_params();
    struct whisper_context *ctx = whisper_init_from_file_with_params(argv[1], cp);
    if (!ctx) { fprintf(stderr, "cannot load the model\n"); return 1; }
    struct whisper_full_params p = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
    p.greedy.best_of = 1;
    p.n_threads = atoi(argv[3]);
    p.language = argv[4];
    p.translate = false;
    p.no_context = true;
    p.print_special = false;
    p.print_progress = false;
    p.print_realtime = false;
    p.print_timestamps = false;
    if (whisper_full(ctx, p, pcm, n_samples) != 0) { fprintf(stderr, "whisper_full failed\n"); return 1; }
    int n = whisper_full_n_segments(ctx);
    for (int i = 0; i < n; i++) {
        printf("[%lld %lld] %s\n", (long long)whisper_full_get_segment_t0(ctx, i) * 10, (long long)whisper_full_get_segment_t1(ctx, i) * 10,
               whisper_full_get_segment_text(ctx, i));
    }
    whisper_free(ctx);
    free(pcm);
    return 0;
}
