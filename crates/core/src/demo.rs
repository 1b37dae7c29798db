//! Demo data: realistic but clearly fictional witnesses and interviews, made by walking the
//! default codebook. Text answers come from `assets/demo/pools.toml` (Korean and English);
//! every witness's identity record says FICTIONAL so demo data can never pass for real.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::codebook::{Codebook, Question, QuestionType};
use crate::error::{Error, Result};
use crate::form::Form;
use crate::model::*;
use crate::vault::Vault;

pub const POOLS_SOURCE: &str = include_str!("../../../assets/demo/pools.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pools {
    localities: HashMap<String, Vec<String>>,
    #[serde(rename = "pool")]
    pools: Vec<Pool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pool {
    questions: Vec<String>,
    ko: Vec<String>,
    en: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoSummary {
    pub witnesses: usize,
    pub interviews: usize,
    pub answers: usize,
    pub withheld_consent: usize,
}

struct Gen<'a> {
    rng: StdRng,
    cb: &'a Codebook,
    text: HashMap<&'a str, &'a Pool>,
    fallback: &'a Pool,
    localities: &'a HashMap<String, Vec<String>>,
    korean: bool,
}

impl Gen<'_> {
    fn value(&mut self, q: &Question) -> Option<Value> {
        let r = &mut self.rng;
        Some(match q.kind {
            QuestionType::YesNo => json!(
                *[("yes", 6), ("no", 3), ("unknown", 1)]
                    .iter()
                    .flat_map(|(v, n)| std::iter::repeat_n(*v, *n))
                    .collect::<Vec<_>>()
                    .choose(r)?
            ),
            QuestionType::SingleChoice => {
                let v = self.cb.vocab(q.vocab.as_deref()?)?;
                json!(v.terms.choose(r)?.code)
            }
            QuestionType::MultiChoice => {
                let v = self.cb.vocab(q.vocab.as_deref()?)?;
                let n = r.gen_range(1..=3.min(v.terms.len()));
                json!(
                    v.terms
                        .choose_multiple(r, n)
                        .map(|t| t.code.clone())
                        .collect::<Vec<_>>()
                )
            }
            QuestionType::Number => {
                let lo = q.min.unwrap_or(0.0).max(0.0) as i64;
                let hi = (q.max.unwrap_or(100.0) as i64).min(lo + 60).max(lo);
                json!(r.gen_range(lo..=hi))
            }
            QuestionType::PartialDate => {
                let y = r.gen_range(1996..=2022);
                let q = ["", "", "about ", "before ", "after "].choose(r)?;
                if r.gen_bool(0.5) {
                    json!(format!("{q}{y}"))
                } else {
                    json!(format!("{q}{y}-{:02}", r.gen_range(1..=12)))
                }
            }
            QuestionType::DateRange => {
                let a = r.gen_range(1996..=2018);
                let b = a + r.gen_range(0..=5);
                json!({"from": format!("about {a}"), "to": format!("{b}-{:02}", r.gen_range(1..=12))})
            }
            QuestionType::Place => {
                // A region of the question's vocabulary that has demo localities, and a town in it.
                let regions: Vec<&str> = q
                    .vocab
                    .as_deref()
                    .and_then(|v| self.cb.vocab(v))
                    .map(|v| {
                        v.terms
                            .iter()
                            .map(|t| t.code.as_str())
                            .filter(|c| self.localities.contains_key(*c))
                            .collect()
                    })
                    .unwrap_or_default();
                let region = regions.choose(r)?;
                json!({"province": region, "locality": self.localities[*region].choose(r)?})
            }
            QuestionType::Text | QuestionType::LongText => {
                let pool = self
                    .text
                    .get(q.id.as_str())
                    .copied()
                    .unwrap_or(self.fallback);
                let list = if self.korean { &pool.ko } else { &pool.en };
                let mut s = list.choose(r)?.clone();
                if q.kind == QuestionType::Text {
                    s = s.lines().next().unwrap_or("").to_string();
                }
                json!(s)
            }
            QuestionType::Group => return None,
        })
    }
}

/// Adds `count` fictional witnesses, each with consent and one interview on the default
/// codebook. Deterministic for a given seed.
pub fn populate(vault: &mut Vault, count: usize, seed: u64) -> Result<DemoSummary> {
    let pools: Pools =
        toml::from_str(POOLS_SOURCE).map_err(|e| Error::invalid(format!("demo pools: {e}")))?;
    let cb = Codebook::default_codebook();
    let fallback = pools
        .pools
        .iter()
        .find(|p| p.questions.iter().any(|q| q == "*"))
        .ok_or_else(|| Error::invalid("demo pools: no '*' pool".into()))?;
    let mut text = HashMap::new();
    for p in &pools.pools {
        for q in &p.questions {
            text.insert(q.as_str(), p);
        }
    }
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        cb: &cb,
        text,
        fallback,
        localities: &pools.localities,
        korean: true,
    };
    let mut summary = DemoSummary {
        witnesses: 0,
        interviews: 0,
        answers: 0,
        withheld_consent: 0,
    };
    for n in 0..count {
        // One transaction per witness: a demo interrupted half-way leaves whole interviews.
        vault.batch(|v| {
            g.korean = n % 3 != 2; // two in three interviews answered in Korean
            let profile = WitnessProfile {
                gender: Some(
                    if g.rng.gen_bool(0.75) {
                        "female"
                    } else {
                        "male"
                    }
                    .into(),
                ),
                birth_year: Some(g.rng.gen_range(1955..=1998)),
                home_province: cb
                    .vocab("province")
                    .and_then(|v| v.terms.choose(&mut g.rng))
                    .map(|t| t.code.clone()),
                songbun: Some(
                    ["core", "wavering", "hostile", "unknown"]
                        .choose(&mut g.rng)
                        .unwrap()
                        .to_string(),
                ),
                year_left: Some(g.rng.gen_range(2005..=2023)),
                repatriations: Some(g.rng.gen_range(0..=3)),
            };
            let identity = WitnessIdentity {
                real_name: Some(format!(
                    "FICTIONAL DEMO PERSON {} / 가상 인물 {}",
                    n + 1,
                    n + 1
                )),
                contact: Some("none (demo data)".into()),
                notes: Some("Demo data generated by `testimony demo`; not a real person.".into()),
            };
            let w = v.add_witness(profile, Some(identity))?;
            summary.witnesses += 1;
            // Most witnesses consent to sharing; some do not, one in eight later withdraws.
            let share = n % 6 != 5;
            let scopes = ConsentScopes {
                record_audio: true,
                transcribe: true,
                share_archive: share,
                quote_anonymously: share && g.rng.gen_bool(0.7),
                publish_identified: false,
            };
            v.set_consent(
                &w.code,
                scopes,
                v.interviewer().to_string().as_str(),
                None,
                if n % 2 == 0 {
                    ConsentMethod::Oral
                } else {
                    ConsentMethod::Written
                },
            )?;
            if n % 8 == 7 {
                v.withdraw_consent(&w.code, None)?;
            }
            if !share || n % 8 == 7 {
                summary.withheld_consent += 1;
            }
            let lang = if g.korean {
                vec!["ko".to_string()]
            } else {
                vec!["ko".to_string(), "en".to_string()]
            };
            let interview = v.new_interview(NewInterview {
                witness: w.code.clone(),
                interpreter: (!g.korean).then(|| "demo interpreter".to_string()),
                languages: lang,
                place: Some(
                    ["Seoul", "Incheon", "Busan", "Bangkok (transit)"]
                        .choose(&mut g.rng)
                        .unwrap()
                        .to_string(),
                ),
                started_at: Some(format!(
                    "20{:02}-{:02}-{:02}T{:02}:00:00.000Z",
                    g.rng.gen_range(23..=25),
                    g.rng.gen_range(1..=12),
                    g.rng.gen_range(1..=28),
                    g.rng.gen_range(9..=16)
                )),
                codebook: None,
            })?;
            summary.interviews += 1;
            let mut answers: Vec<Answer> = Vec::new();
            let mut instances: Vec<GroupInstance> = Vec::new();
            fill(
                v,
                &mut g,
                &interview.meta.id,
                None,
                None,
                &mut answers,
                &mut instances,
            )?;
            summary.answers += answers.len();
            v.add_note(
                &interview.meta.id,
                None,
                None,
                if g.korean {
                    "데모 데이터: 실제 증언이 아닙니다."
                } else {
                    "Demo data: not a real testimony."
                },
            )?;
            match n % 4 {
                0 | 1 => {
                    v.complete_interview(&interview.meta.id)?;
                }
                2 => {
                    v.complete_interview(&interview.meta.id)?;
                    v.review_interview(&interview.meta.id)?;
                }
                _ => {} // left as a draft
            }

            Ok(())
        })?;
    }
    Ok(summary)
}

/// Answers the questions of `group` (None: top level) shown in `context`, adding instances
/// of nested groups as it goes.
fn fill(
    vault: &mut Vault,
    g: &mut Gen,
    interview: &str,
    group: Option<&str>,
    context: Option<&str>,
    answers: &mut Vec<Answer>,
    instances: &mut Vec<GroupInstance>,
) -> Result<()> {
    let cb = g.cb;
    for q in cb.children(group).collect::<Vec<_>>() {
        if !Form::new(cb, answers, instances).is_visible(q, context) {
            continue;
        }
        if q.kind == QuestionType::Group {
            let n = if q.required {
                g.rng.gen_range(1..=2)
            } else {
                g.rng.gen_range(0..=2)
            };
            for _ in 0..n {
                let inst = vault.add_group_instance(interview, &q.id, context)?;
                instances.push(inst.clone());
                fill(
                    vault,
                    g,
                    interview,
                    Some(&q.id),
                    Some(&inst.meta.id),
                    answers,
                    instances,
                )?;
            }
            continue;
        }
        if !q.required && g.rng.gen_bool(0.15) {
            continue; // witnesses do not answer everything
        }
        if let Some(v) = g.value(q) {
            answers.push(vault.set_answer(interview, context, &q.id, &v)?);
        }
    }
    Ok(())
}
