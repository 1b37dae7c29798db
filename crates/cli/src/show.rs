//! Human-readable output.

use testimony_core::codebook::{Codebook, QuestionType, display_value};
use testimony_core::form::Form;
use testimony_core::model::*;

pub fn witness_table(ws: &[Witness]) -> String {
    if ws.is_empty() {
        return "No witnesses.".into();
    }
    let mut s = format!(
        "{:<13} {:<12} {:<6} {:<16} {:<9} {}\n",
        "CODE", "GENDER", "BORN", "PROVINCE", "LEFT", "REPATRIATED"
    );
    for w in ws {
        let p = &w.profile;
        s += &format!(
            "{:<13} {:<12} {:<6} {:<16} {:<9} {}\n",
            w.code,
            p.gender.as_deref().unwrap_or("-"),
            p.birth_year.map_or("-".into(), |y| y.to_string()),
            p.home_province.as_deref().unwrap_or("-"),
            p.year_left.map_or("-".into(), |y| y.to_string()),
            p.repatriations.map_or("-".into(), |y| y.to_string())
        );
    }
    s.trim_end().to_string()
}

pub fn consent(c: Option<&Consent>) -> String {
    let Some(c) = c else {
        return "No consent recorded: nothing may be recorded, transcribed or shared.".into();
    };
    let mut s = format!(
        "Consent ({:?}) taken by {} at {}",
        c.method, c.taken_by, c.taken_at
    );
    if let Some(w) = &c.withdrawn_at {
        s += &format!("\nWITHDRAWN at {w}: no scope applies any more");
    }
    for sc in ConsentScope::ALL {
        s += &format!(
            "\n  [{}] {}",
            if c.scopes.get(sc) { "x" } else { " " },
            sc.code()
        );
    }
    s
}

pub fn witness(
    w: &Witness,
    c: Option<&Consent>,
    ident: Option<&WitnessIdentity>,
    interviews: &[Interview],
) -> String {
    let mut s = format!(
        "{}\n{}",
        w.code,
        witness_table(std::slice::from_ref(w))
            .lines()
            .nth(1)
            .unwrap_or("")
    );
    if let Some(i) = ident {
        s += &format!(
            "\nIDENTIFYING DETAILS (do not share): name {}, contact {}",
            i.real_name.as_deref().unwrap_or("-"),
            i.contact.as_deref().unwrap_or("-")
        );
    }
    s += &format!("\n{}", consent(c));
    s += &format!(
        "\nInterviews: {}",
        if interviews.is_empty() {
            "none".into()
        } else {
            interviews
                .iter()
                .map(|i| i.meta.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    s
}

pub fn interview_table(list: &[Interview]) -> String {
    if list.is_empty() {
        return "No interviews.".into();
    }
    let mut s = format!(
        "{:<36} {:<13} {:<9} {:<10} {}\n",
        "ID", "WITNESS", "STATUS", "STARTED", "LANGUAGES"
    );
    for i in list {
        s += &format!(
            "{:<36} {:<13} {:<9} {:<10} {}\n",
            i.meta.id,
            i.witness_code,
            i.status.code(),
            i.started_at
                .as_deref()
                .map_or("-", |d| &d[..d.len().min(10)]),
            i.languages.join(",")
        );
    }
    s.trim_end().to_string()
}

pub fn interview(cb: &Codebook, d: &InterviewDetail, lang: &str) -> String {
    let i = &d.interview;
    let mut s = format!(
        "Interview {}\nWitness {}  status {}  codebook {} {}\nInterviewer {}  languages {}  place {}\n",
        i.meta.id,
        i.witness_code,
        i.status.code(),
        i.codebook_id,
        i.codebook_version,
        i.interviewer,
        i.languages.join(","),
        i.place.as_deref().unwrap_or("-")
    );
    let form = Form::new(cb, &d.answers, &d.instances);
    for sec in &cb.sections {
        let mut body = String::new();
        render(cb, &form, None, None, &sec.id, lang, 1, &mut body);
        if !body.is_empty() {
            s += &format!("\n== {} ==\n{body}", sec.title.get(lang));
        }
    }
    let missing = form.missing_required();
    if !missing.is_empty() {
        s += &format!("\nRequired and unanswered: {}\n", missing.join(", "));
    }
    for n in &d.notes {
        s += &format!("\nNote ({}): {}", n.meta.created_at, n.text);
    }
    for a in &d.attachments {
        s += &format!("\nAttachment {} {} ({} bytes)", a.meta.id, a.name, a.size);
    }
    s.trim_end().to_string()
}

#[allow(clippy::too_many_arguments)]
fn render(
    cb: &Codebook,
    form: &Form,
    group: Option<&str>,
    context: Option<&str>,
    section: &str,
    lang: &str,
    depth: usize,
    out: &mut String,
) {
    let pad = "  ".repeat(depth);
    for q in cb.children(group).filter(|q| q.section == section) {
        if !form.is_visible(q, context) {
            continue;
        }
        if q.kind == QuestionType::Group {
            for inst in form.instances_of(&q.id, context) {
                out.push_str(&format!(
                    "{pad}[{} #{}] instance {}\n",
                    q.label.get(lang),
                    inst.ordinal,
                    inst.meta.id
                ));
                render(
                    cb,
                    form,
                    Some(&q.id),
                    Some(&inst.meta.id),
                    section,
                    lang,
                    depth + 1,
                    out,
                );
            }
        } else if let Some(v) = form.lookup(context, &q.id) {
            out.push_str(&format!(
                "{pad}{} ({}): {}\n",
                q.label.get(lang),
                q.id,
                display_value(cb, q, &v, lang)
            ));
        }
    }
}
