//! Repetition loops: on long audio whisper can get stuck emitting the same phrase over and over
//! (conditioned on its own previous output, or on silence and noise). These are detected per
//! window, the window is retried from where the loop starts with other settings (see
//! `pipeline`), and a loop that persists is cut down to its first occurrence.
//!
//! What counts as a loop (thresholds chosen so that speech that really repeats a word or a
//! short answer a few times, "no, no, no", is left alone):
//! - the same segment text [`SEGMENT_REPEATS`] or more times in a row, or a cycle of two or
//!   three segments repeating that often;
//! - inside the text of a segment, or of consecutive segments, an n-gram of 1 to
//!   [`MAX_NGRAM`] words repeated back to back at least [`NGRAM_REPEATS`] times and covering at
//!   least [`NGRAM_MIN_WORDS`] words.

use crate::Segment;

pub const SEGMENT_REPEATS: usize = 4;
pub const MAX_NGRAM: usize = 8;
pub const NGRAM_REPEATS: usize = 4;
pub const NGRAM_MIN_WORDS: usize = 12;

/// Lower case, punctuation dropped, words split on whitespace.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn norm(text: &str) -> String {
    words(text).join(" ")
}

/// Where the first repeated n-gram run in `w` starts and ends (word indices, end exclusive,
/// the run's first occurrence included).
pub fn ngram_loop(w: &[String]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for n in 1..=MAX_NGRAM {
        let mut i = 0;
        while i + n * 2 <= w.len() {
            let mut k = 1;
            while i + (k + 1) * n <= w.len() && w[i + k * n..i + (k + 1) * n] == w[i..i + n] {
                k += 1;
            }
            if k >= NGRAM_REPEATS && k * n >= NGRAM_MIN_WORDS {
                let run = (i, i + k * n);
                if best.is_none_or(|b| run.0 < b.0) {
                    best = Some(run);
                }
                break;
            }
            i += 1;
        }
    }
    best
}

/// The index of the first segment of a loop in `segments`, if there is one.
pub fn find_loop(segments: &[Segment]) -> Option<usize> {
    find_loop_span(segments).map(|(first, _)| first)
}

/// The segments a loop covers, `(first, end)` with `end` exclusive: the run of repeated
/// segments (or cycles), or the segments holding a repeated n-gram run. The same loop
/// [`find_loop`] finds; `end` is where the text is past it.
pub fn find_loop_span(segments: &[Segment]) -> Option<(usize, usize)> {
    let texts: Vec<String> = segments.iter().map(|s| norm(&s.text)).collect();
    // Runs of identical segments, or cycles of 2–3 segments.
    for start in 0..texts.len() {
        if texts[start].is_empty() {
            continue;
        }
        for period in 1..=3 {
            let mut reps = 1;
            while start + (reps + 1) * period <= texts.len()
                && texts[start + reps * period..start + (reps + 1) * period]
                    == texts[start..start + period]
            {
                reps += 1;
            }
            if reps >= SEGMENT_REPEATS {
                return Some((start, start + reps * period));
            }
        }
    }
    // N-gram runs across the words of all segments; the loop starts in the segment that holds
    // the run's first word.
    let mut all = Vec::new();
    let mut owner = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        for w in words(&s.text) {
            all.push(w);
            owner.push(i);
        }
    }
    ngram_loop(&all).map(|(a, b)| (owner[a], owner[b - 1] + 1))
}

/// Cuts loops down to their first occurrence: repeated segments (and cycles) are dropped, and
/// repeated n-gram runs inside a segment's text are cut to one occurrence. Returns how many
/// segments were dropped or shortened.
pub fn collapse(segments: &mut Vec<Segment>) -> usize {
    let mut changed = 0;
    // Repeated segments and cycles.
    'again: loop {
        let texts: Vec<String> = segments.iter().map(|s| norm(&s.text)).collect();
        for start in 0..texts.len() {
            if texts[start].is_empty() {
                continue;
            }
            for period in 1..=3 {
                let mut reps = 1;
                while start + (reps + 1) * period <= texts.len()
                    && texts[start + reps * period..start + (reps + 1) * period]
                        == texts[start..start + period]
                {
                    reps += 1;
                }
                if reps >= SEGMENT_REPEATS {
                    let first_end = start + period;
                    let run_end = start + reps * period;
                    // The kept occurrence stretches over the time the loop took.
                    let end_ms = segments[run_end - 1].end_ms;
                    segments.drain(first_end..run_end);
                    segments[first_end - 1].end_ms = segments[first_end - 1].end_ms.max(end_ms);
                    changed += run_end - first_end;
                    continue 'again;
                }
            }
        }
        break;
    }
    // N-gram runs inside one segment.
    for s in segments.iter_mut() {
        loop {
            let raw: Vec<&str> = s.text.split_whitespace().collect();
            let w: Vec<String> = raw
                .iter()
                .map(|t| {
                    t.chars()
                        .filter(|c| c.is_alphanumeric())
                        .flat_map(char::to_lowercase)
                        .collect::<String>()
                })
                .collect();
            // Indices of raw tokens that are words (punctuation-only tokens are skipped).
            let idx: Vec<usize> = (0..w.len()).filter(|&i| !w[i].is_empty()).collect();
            let ws: Vec<String> = idx.iter().map(|&i| w[i].clone()).collect();
            let Some((a, b)) = ngram_loop(&ws) else { break };
            // The period of the run: the smallest n for which it repeats.
            let n = (1..=MAX_NGRAM)
                .find(|&n| (b - a) % n == 0 && (a + n..b).all(|j| ws[j] == ws[j - n]))
                .unwrap_or(b - a);
            let keep_to = idx[a + n - 1] + 1;
            let drop_to = if b < idx.len() { idx[b] } else { raw.len() };
            let mut out: Vec<&str> = raw[..keep_to].to_vec();
            out.extend_from_slice(&raw[drop_to..]);
            s.text = out.join(" ");
            changed += 1;
        }
    }
    segments.retain(|s| !s.text.trim().is_empty());
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(i: u64, t: &str) -> Segment {
        Segment {
            start_ms: i * 1000,
            end_ms: i * 1000 + 900,
            text: t.into(),
            language: None,
            confidence: None,
        }
    }

    #[test]
    fn real_repetition_in_speech_is_not_a_loop() {
        let s = vec![
            seg(0, "Did they beat you?"),
            seg(1, "No, no, no."),
            seg(2, "Yes."),
            seg(3, "Yes."),
            seg(4, "Yes. It was cold."),
        ];
        assert_eq!(find_loop(&s), None);
        let w = words("I said no no no no and then we left the camp at night");
        assert_eq!(ngram_loop(&w), None);
    }

    /// A sentence, then seven identical segments (indexes 1..8), then another sentence.
    fn thanks_loop() -> Vec<Segment> {
        let mut s = vec![seg(0, "We worked in the mine.")];
        for i in 1..8 {
            s.push(seg(i, "Thank you for watching."));
        }
        s.push(seg(8, "Then winter came."));
        s
    }

    #[test]
    fn repeated_segments_are_a_loop_and_collapse_to_one() {
        let mut s = thanks_loop();
        assert_eq!(find_loop(&s), Some(1));
        collapse(&mut s);
        let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "We worked in the mine.",
                "Thank you for watching.",
                "Then winter came."
            ]
        );
        assert_eq!(s[1].end_ms, 7900);
        assert_eq!(find_loop(&s), None);
    }

    #[test]
    fn a_cycle_of_two_segments_is_a_loop() {
        let mut s = vec![];
        for i in 0..10 {
            s.push(seg(
                i,
                if i % 2 == 0 {
                    "The guard came."
                } else {
                    "He shouted."
                },
            ));
        }
        assert_eq!(find_loop(&s), Some(0));
        collapse(&mut s);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn a_phrase_looping_inside_a_segment_is_cut_to_once() {
        let looped = format!(
            "We were taken to the camp. {}",
            "and then they came ".repeat(6)
        );
        let mut s = vec![seg(0, &looped), seg(1, "It was 1998.")];
        assert_eq!(find_loop(&s), Some(0));
        collapse(&mut s);
        assert_eq!(s[0].text, "We were taken to the camp. and then they came");
        assert_eq!(s[1].text, "It was 1998.");
        assert_eq!(find_loop(&s), None);
    }

    #[test]
    fn a_loops_span_ends_where_the_text_is_past_it() {
        let s = thanks_loop();
        assert_eq!(find_loop_span(&s), Some((1, 8)));
        let looped = format!(
            "We were taken to the camp. {}",
            "and then they came ".repeat(6)
        );
        let s = vec![seg(0, "Before."), seg(1, &looped), seg(2, "It was 1998.")];
        assert_eq!(find_loop_span(&s), Some((1, 2)));
        // A run of n-grams across segments covers every segment that holds part of it.
        let s = vec![
            seg(0, "Before."),
            seg(1, &"and then they came ".repeat(3)),
            seg(2, &"and then they came ".repeat(3)),
            seg(3, "After."),
        ];
        assert_eq!(find_loop_span(&s), Some((1, 3)));
    }

    #[test]
    fn korean_loops_are_found_too() {
        let s = vec![seg(0, &"감사합니다 여러분 ".repeat(8))];
        assert_eq!(find_loop(&s), Some(0));
    }
}
