//! Codebooks: the declarative description of an interview (format in docs/codebook.md).
//! Loading validates everything and collects every error with its line and field; a codebook
//! with any error is never returned, so nothing downstream sees half a codebook.

pub mod expr;
mod values;

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

pub use expr::Expr;
pub use values::{YES_NO, display_value, parse_input, searchable_text, validate_value};

/// The codebook file format this build reads.
pub const FORMAT: u32 = 1;

/// The default codebook shipped in `assets/`.
pub const DEFAULT_SOURCE: &str = include_str!("../../../../assets/codebook/default.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub en: String,
    pub ko: String,
}

impl Label {
    pub fn get(&self, lang: &str) -> &str {
        if lang == "ko" { &self.ko } else { &self.en }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    Text,
    LongText,
    SingleChoice,
    MultiChoice,
    Number,
    PartialDate,
    DateRange,
    Place,
    YesNo,
    Group,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Term {
    pub code: String,
    pub label: Label,
    pub help: Option<Label>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Vocab {
    pub id: String,
    pub label: Label,
    pub terms: Vec<Term>,
}

impl Vocab {
    pub fn term(&self, code: &str) -> Option<&Term> {
        self.terms.iter().find(|t| t.code == code)
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Section {
    pub id: String,
    pub title: Label,
    pub help: Option<Label>,
    pub show_if: Option<String>,
    #[serde(skip)]
    pub show_if_expr: Option<Expr>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Question {
    pub id: String,
    pub section: String,
    pub group: Option<String>,
    #[serde(rename = "type")]
    pub kind: QuestionType,
    pub label: Label,
    pub help: Option<Label>,
    pub required: bool,
    pub vocab: Option<String>,
    pub show_if: Option<String>,
    #[serde(skip)]
    pub show_if_expr: Option<Expr>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub unit: Option<Label>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Codebook {
    pub id: String,
    pub version: String,
    pub title: Label,
    pub description: Option<Label>,
    pub vocabs: Vec<Vocab>,
    pub sections: Vec<Section>,
    pub questions: Vec<Question>,
    /// SHA-256 of the source text, so two files claiming the same version can be told apart.
    pub sha256: String,
    /// The file's text, kept so the vault can store exactly what an interview was taken with.
    #[serde(skip)]
    pub source: String,
    #[serde(skip)]
    question_index: HashMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodebookError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// All the errors found in one codebook file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodebookErrors {
    pub file: String,
    pub errors: Vec<CodebookError>,
}

impl fmt::Display for CodebookErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "codebook {} has {} error(s):",
            self.file,
            self.errors.len()
        )?;
        for e in &self.errors {
            write!(
                f,
                "\n  {}:{}: {}: {}",
                self.file, e.line, e.field, e.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for CodebookErrors {}

// ---- raw file shape ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodebook {
    format: Spanned<u32>,
    id: Spanned<String>,
    version: Spanned<String>,
    title: Spanned<Label>,
    description: Option<Spanned<Label>>,
    #[serde(default)]
    vocab: Vec<Spanned<RawVocab>>,
    #[serde(default)]
    section: Vec<Spanned<RawSection>>,
    #[serde(default)]
    question: Vec<Spanned<RawQuestion>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVocab {
    id: Spanned<String>,
    label: Spanned<Label>,
    terms: Spanned<Vec<Spanned<RawTerm>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTerm {
    code: Spanned<String>,
    en: String,
    ko: String,
    help: Option<Spanned<Label>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    id: Spanned<String>,
    title: Spanned<Label>,
    help: Option<Spanned<Label>>,
    show_if: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    id: Spanned<String>,
    section: Spanned<String>,
    group: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Spanned<QuestionType>,
    label: Spanned<Label>,
    help: Option<Spanned<Label>>,
    #[serde(default)]
    required: bool,
    vocab: Option<Spanned<String>>,
    show_if: Option<Spanned<String>>,
    min: Option<Spanned<f64>>,
    max: Option<Spanned<f64>>,
    unit: Option<Spanned<Label>>,
}

struct Ctx<'a> {
    src: &'a str,
    errors: Vec<CodebookError>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.src[..offset.min(self.src.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }
    fn err(&mut self, offset: usize, field: impl Into<String>, message: impl Into<String>) {
        let line = self.line(offset);
        self.errors.push(CodebookError {
            line,
            field: field.into(),
            message: message.into(),
        });
    }
    fn label(&mut self, l: &Spanned<Label>, field: &str) {
        for (lang, text) in [("en", &l.get_ref().en), ("ko", &l.get_ref().ko)] {
            if text.trim().is_empty() {
                self.err(
                    l.span().start,
                    format!("{field}.{lang}"),
                    "must not be empty",
                );
            }
        }
    }
    fn ident(&mut self, s: &Spanned<String>, field: &str, allow_dash: bool) {
        let v = s.get_ref();
        let ok = !v.is_empty()
            && v.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'_'
                    || (allow_dash && b == b'-')
            });
        if !ok {
            let allowed = if allow_dash {
                "a-z, 0-9, '_' and '-'"
            } else {
                "a-z, 0-9 and '_'"
            };
            self.err(
                s.span().start,
                field,
                format!("'{v}' is not a valid id (use {allowed})"),
            );
        }
    }
}

const RESERVED: [&str; 6] = ["and", "or", "not", "in", "has", "answered"];

impl Codebook {
    /// The codebook shipped with this build.
    pub fn default_codebook() -> Codebook {
        Codebook::parse(DEFAULT_SOURCE, "assets/codebook/default.toml")
            .expect("the shipped default codebook is valid")
    }

    /// Parses and validates; `file` names the source in error messages.
    pub fn parse(src: &str, file: &str) -> Result<Codebook, CodebookErrors> {
        let mut cx = Ctx {
            src,
            errors: Vec::new(),
        };
        let raw: RawCodebook = match toml::from_str(src) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map_or(1, |s| cx.line(s.start));
                let field = e.message().split('`').nth(1).unwrap_or("file").to_string();
                return Err(CodebookErrors {
                    file: file.into(),
                    errors: vec![CodebookError {
                        line,
                        field,
                        message: e.message().trim().to_string(),
                    }],
                });
            }
        };
        let cb = validate(&mut cx, raw, src);
        if cx.errors.is_empty() {
            Ok(cb)
        } else {
            cx.errors.sort_by_key(|e| e.line);
            Err(CodebookErrors {
                file: file.into(),
                errors: cx.errors,
            })
        }
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.question_index.get(id).map(|&i| &self.questions[i])
    }

    pub fn vocab(&self, id: &str) -> Option<&Vocab> {
        self.vocabs.iter().find(|v| v.id == id)
    }

    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// Questions directly inside `group` (None: top level), in file order.
    pub fn children<'a>(
        &'a self,
        group: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Question> + 'a {
        self.questions
            .iter()
            .filter(move |q| q.group.as_deref() == group)
    }

    /// The chain of groups enclosing `q`, innermost first.
    pub fn ancestors(&self, q: &Question) -> Vec<&Question> {
        let mut out = Vec::new();
        let mut cur = q.group.as_deref();
        while let Some(g) = cur.and_then(|g| self.question(g)) {
            out.push(g);
            cur = g.group.as_deref();
        }
        out
    }
}

fn validate(cx: &mut Ctx, raw: RawCodebook, src: &str) -> Codebook {
    if *raw.format.get_ref() > FORMAT {
        cx.err(
            raw.format.span().start,
            "format",
            format!(
                "format {} is newer than this Testimony reads ({FORMAT}); upgrade Testimony",
                raw.format.get_ref()
            ),
        );
    } else if *raw.format.get_ref() != FORMAT {
        cx.err(
            raw.format.span().start,
            "format",
            format!(
                "unknown format {} (expected {FORMAT})",
                raw.format.get_ref()
            ),
        );
    }
    cx.ident(&raw.id, "id", true);
    if raw.version.get_ref().trim().is_empty() {
        cx.err(raw.version.span().start, "version", "must not be empty");
    }
    cx.label(&raw.title, "title");
    if let Some(d) = &raw.description {
        cx.label(d, "description");
    }

    // Vocabularies.
    let mut vocabs = Vec::new();
    let mut vocab_ids = HashSet::new();
    for v in &raw.vocab {
        let v = v.get_ref();
        cx.ident(&v.id, "vocab.id", false);
        if !vocab_ids.insert(v.id.get_ref().clone()) {
            cx.err(
                v.id.span().start,
                "vocab.id",
                format!("duplicate vocabulary id '{}'", v.id.get_ref()),
            );
        }
        cx.label(&v.label, "vocab.label");
        if v.terms.get_ref().is_empty() {
            cx.err(
                v.terms.span().start,
                "vocab.terms",
                "a vocabulary needs at least one term",
            );
        }
        let mut codes = HashSet::new();
        let mut terms = Vec::new();
        for t in v.terms.get_ref() {
            let span = t.span().start;
            let t = t.get_ref();
            cx.ident(&t.code, "vocab.terms.code", false);
            if !codes.insert(t.code.get_ref().clone()) {
                cx.err(
                    t.code.span().start,
                    "vocab.terms.code",
                    format!(
                        "duplicate code '{}' in vocabulary '{}'",
                        t.code.get_ref(),
                        v.id.get_ref()
                    ),
                );
            }
            for (lang, text) in [("en", &t.en), ("ko", &t.ko)] {
                if text.trim().is_empty() {
                    cx.err(
                        span,
                        format!("vocab.terms.{lang}"),
                        format!("term '{}' needs a label", t.code.get_ref()),
                    );
                }
            }
            if let Some(h) = &t.help {
                cx.label(h, "vocab.terms.help");
            }
            terms.push(Term {
                code: t.code.get_ref().clone(),
                label: Label {
                    en: t.en.clone(),
                    ko: t.ko.clone(),
                },
                help: t.help.as_ref().map(|h| h.get_ref().clone()),
            });
        }
        vocabs.push(Vocab {
            id: v.id.get_ref().clone(),
            label: v.label.get_ref().clone(),
            terms,
        });
    }

    // Sections (their show_if is checked after the questions are known).
    let mut section_ids = HashSet::new();
    for s in &raw.section {
        let s = s.get_ref();
        cx.ident(&s.id, "section.id", false);
        if !section_ids.insert(s.id.get_ref().clone()) {
            cx.err(
                s.id.span().start,
                "section.id",
                format!("duplicate section id '{}'", s.id.get_ref()),
            );
        }
        cx.label(&s.title, "section.title");
        if let Some(h) = &s.help {
            cx.label(h, "section.help");
        }
    }

    // Questions, in file order: a show_if may only look back.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut questions: Vec<Question> = Vec::new();
    for q in &raw.question {
        let q = q.get_ref();
        let id = q.id.get_ref().clone();
        let at = q.id.span().start;
        cx.ident(&q.id, "question.id", false);
        if RESERVED.contains(&id.as_str()) {
            cx.err(
                at,
                "question.id",
                format!("'{id}' is a reserved word of the skip-logic language"),
            );
        }
        if seen.contains_key(&id) {
            cx.err(at, "question.id", format!("duplicate question id '{id}'"));
        }
        let kind = *q.kind.get_ref();
        if !section_ids.contains(q.section.get_ref()) {
            cx.err(
                q.section.span().start,
                "question.section",
                format!("question '{id}': unknown section '{}'", q.section.get_ref()),
            );
        }
        if let Some(g) = &q.group {
            match seen.get(g.get_ref()).map(|&i| &questions[i]) {
                None => cx.err(
                    g.span().start,
                    "question.group",
                    format!(
                        "question '{id}': group '{}' is not a group question defined earlier",
                        g.get_ref()
                    ),
                ),
                Some(gq) if gq.kind != QuestionType::Group => cx.err(
                    g.span().start,
                    "question.group",
                    format!("question '{id}': '{}' is not of type group", g.get_ref()),
                ),
                Some(gq) if gq.section != *q.section.get_ref() => cx.err(
                    q.section.span().start,
                    "question.section",
                    format!(
                        "question '{id}' must be in section '{}' like its group '{}'",
                        gq.section, gq.id
                    ),
                ),
                _ => {}
            }
        }
        cx.label(&q.label, "question.label");
        if let Some(h) = &q.help {
            cx.label(h, "question.help");
        }
        let is_choice = matches!(kind, QuestionType::SingleChoice | QuestionType::MultiChoice);
        match &q.vocab {
            Some(v) if !vocab_ids.contains(v.get_ref()) => {
                cx.err(v.span().start, "question.vocab", format!("question '{id}': unknown vocabulary '{}'", v.get_ref()))
            }
            Some(v) if !is_choice && kind != QuestionType::Place => cx.err(
                v.span().start,
                "question.vocab",
                format!("question '{id}': a vocabulary only applies to single_choice, multi_choice and place questions"),
            ),
            None if is_choice => cx.err(q.kind.span().start, "question.vocab", format!("question '{id}': a {kind:?} question needs a vocab")),
            _ => {}
        }
        for (name, v) in [("min", &q.min), ("max", &q.max)] {
            if let Some(v) = v
                && kind != QuestionType::Number
            {
                cx.err(
                    v.span().start,
                    format!("question.{name}"),
                    format!("question '{id}': {name} only applies to number questions"),
                );
            }
        }
        if let (Some(lo), Some(hi)) = (&q.min, &q.max)
            && lo.get_ref() > hi.get_ref()
        {
            cx.err(
                lo.span().start,
                "question.min",
                format!("question '{id}': min is greater than max"),
            );
        }
        if let Some(u) = &q.unit {
            if kind != QuestionType::Number {
                cx.err(
                    u.span().start,
                    "question.unit",
                    format!("question '{id}': unit only applies to number questions"),
                );
            }
            cx.label(u, "question.unit");
        }
        let show_if_expr = q.show_if.as_ref().and_then(|s| {
            check_expr(
                cx,
                s,
                "question.show_if",
                &id,
                &questions,
                &seen,
                &vocabs,
                q.group.as_ref().map(|g| g.get_ref().as_str()),
            )
        });
        seen.insert(id.clone(), questions.len());
        questions.push(Question {
            id,
            section: q.section.get_ref().clone(),
            group: q.group.as_ref().map(|g| g.get_ref().clone()),
            kind,
            label: q.label.get_ref().clone(),
            help: q.help.as_ref().map(|h| h.get_ref().clone()),
            required: q.required,
            vocab: q.vocab.as_ref().map(|v| v.get_ref().clone()),
            show_if: q.show_if.as_ref().map(|s| s.get_ref().clone()),
            show_if_expr,
            min: q.min.as_ref().map(|v| *v.get_ref()),
            max: q.max.as_ref().map(|v| *v.get_ref()),
            unit: q.unit.as_ref().map(|u| u.get_ref().clone()),
        });
    }

    // A section's show_if may refer to top-level questions of earlier sections.
    let mut sections = Vec::new();
    let mut earlier: HashMap<String, usize> = HashMap::new();
    for s in &raw.section {
        let s = s.get_ref();
        let show_if_expr = s.show_if.as_ref().and_then(|e| {
            check_expr(
                cx,
                e,
                "section.show_if",
                s.id.get_ref(),
                &questions,
                &earlier,
                &vocabs,
                None,
            )
        });
        for (i, q) in questions.iter().enumerate() {
            if q.section == *s.id.get_ref() {
                earlier.insert(q.id.clone(), i);
            }
        }
        sections.push(Section {
            id: s.id.get_ref().clone(),
            title: s.title.get_ref().clone(),
            help: s.help.as_ref().map(|h| h.get_ref().clone()),
            show_if: s.show_if.as_ref().map(|e| e.get_ref().clone()),
            show_if_expr,
        });
    }
    for s in &sections {
        if !questions.iter().any(|q| q.section == s.id) {
            let at = raw
                .section
                .iter()
                .find(|r| *r.get_ref().id.get_ref() == s.id)
                .map_or(0, |r| r.span().start);
            cx.err(
                at,
                "section",
                format!("section '{}' has no questions", s.id),
            );
        }
    }

    let question_index = questions
        .iter()
        .enumerate()
        .map(|(i, q)| (q.id.clone(), i))
        .collect();
    Codebook {
        id: raw.id.get_ref().clone(),
        version: raw.version.get_ref().clone(),
        title: raw.title.get_ref().clone(),
        description: raw.description.map(|d| d.into_inner()),
        vocabs,
        sections,
        questions,
        sha256: hex::encode(Sha256::digest(src.as_bytes())),
        source: src.to_string(),
        question_index,
    }
}

/// Parses a show_if and checks each name against the questions visible to it and each literal
/// against the referenced question's type.
#[allow(clippy::too_many_arguments)]
fn check_expr(
    cx: &mut Ctx,
    src: &Spanned<String>,
    field: &str,
    owner: &str,
    questions: &[Question],
    visible: &HashMap<String, usize>,
    vocabs: &[Vocab],
    own_group: Option<&str>,
) -> Option<Expr> {
    let at = src.span().start;
    let expr = match Expr::parse(src.get_ref()) {
        Ok(e) => e,
        Err(e) => {
            cx.err(at, field, format!("'{owner}': {e}"));
            return None;
        }
    };
    // Groups a reference may reach: the owner's own group and the groups around it.
    let mut scopes: Vec<Option<&str>> = vec![None];
    let mut g = own_group;
    while let Some(gid) = g {
        scopes.push(Some(gid));
        g = questions
            .iter()
            .find(|q| q.id == gid)
            .and_then(|q| q.group.as_deref());
    }
    let mut ok = true;
    let mut check = |name: &expr::Name, what: &dyn Fn(&Question) -> Result<(), String>| {
        match visible.get(&name.id).map(|&i| &questions[i]) {
            None => {
                ok = false;
                cx.err(
                    at,
                    field,
                    format!(
                        "'{owner}': '{}' is not a question that comes earlier",
                        name.id
                    ),
                );
            }
            Some(q) if !scopes.contains(&q.group.as_deref()) => {
                ok = false;
                cx.err(at, field, format!("'{owner}': '{}' is inside group '{}', which does not enclose this question", name.id, q.group.as_deref().unwrap_or("")));
            }
            Some(q) => {
                if let Err(m) = what(q) {
                    ok = false;
                    cx.err(at, field, format!("'{owner}': {m}"));
                }
            }
        }
    };
    let lit_ok = |q: &Question, lit: &expr::Literal| -> Result<(), String> {
        use expr::Literal::*;
        match (q.kind, lit) {
            (QuestionType::SingleChoice | QuestionType::MultiChoice, Str(s)) => {
                let v = q
                    .vocab
                    .as_deref()
                    .and_then(|v| vocabs.iter().find(|x| x.id == v));
                match v {
                    Some(v) if v.term(s).is_none() => Err(format!(
                        "'{s}' is not a code of vocabulary '{}' (question '{}')",
                        v.id, q.id
                    )),
                    _ => Ok(()),
                }
            }
            (QuestionType::YesNo, Str(s)) if !YES_NO.contains(&s.as_str()) => Err(format!(
                "'{}' is yes_no; compare with one of yes, no, unknown, refused (not '{s}')",
                q.id
            )),
            (QuestionType::YesNo | QuestionType::Text | QuestionType::LongText, Str(_)) => Ok(()),
            (QuestionType::Number, Num(_)) => Ok(()),
            (QuestionType::Number, Str(_)) => {
                Err(format!("'{}' is a number; compare it with a number", q.id))
            }
            (_, Num(_)) => Err(format!("'{}' is not a number question", q.id)),
            (k, _) => Err(format!(
                "'{}' ({k:?}) cannot be compared; use answered({})",
                q.id, q.id
            )),
        }
    };
    walk(&expr, &mut |e| match e {
        Expr::Answered(n) => check(n, &|_| Ok(())),
        Expr::Cmp(n, op, lit) => check(n, &|q| {
            if q.kind == QuestionType::MultiChoice {
                return Err(format!("'{}' is multi_choice; use 'has'", q.id));
            }
            if !matches!(op, expr::CmpOp::Eq | expr::CmpOp::Ne) && q.kind != QuestionType::Number {
                return Err(format!(
                    "'{}' is not a number; <, <=, >, >= need a number question",
                    q.id
                ));
            }
            lit_ok(q, lit)
        }),
        Expr::In(n, lits) => check(n, &|q| {
            if q.kind == QuestionType::MultiChoice {
                return Err(format!("'{}' is multi_choice; use 'has'", q.id));
            }
            lits.iter().try_for_each(|l| lit_ok(q, l))
        }),
        Expr::Has(n, lit) => check(n, &|q| {
            if q.kind != QuestionType::MultiChoice {
                return Err(format!(
                    "'has' needs a multi_choice question; '{}' is {:?}",
                    q.id, q.kind
                ));
            }
            lit_ok(q, lit)
        }),
        _ => {}
    });
    ok.then_some(expr)
}

fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Or(v) | Expr::And(v) => v.iter().for_each(|x| walk(x, f)),
        Expr::Not(x) => walk(x, f),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
