//! Skip logic and required questions over real group instances, using the small test codebook.

mod common;

use std::collections::HashMap;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use testimony_core::codebook::Codebook;
use testimony_core::form::Form;
use testimony_core::model::*;
use testimony_core::{Error, Reason, Vault};

const SMALL: &str = include_str!("../../../assets/fixtures/small-codebook.toml");

fn setup(dir: &std::path::Path) -> (Vault, String) {
    let mut v = new_vault(dir);
    let cb = v.add_codebook(SMALL, "small.toml").unwrap();
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    let i = v
        .new_interview(NewInterview {
            witness: w.code,
            languages: vec!["ko".into()],
            codebook: Some((cb.id.clone(), cb.version.clone())),
            ..Default::default()
        })
        .unwrap();
    (v, i.meta.id)
}

fn missing(v: &mut Vault, id: &str) -> String {
    match v.complete_interview(id) {
        Err(Error::Incomplete(Reason::RequiredUnanswered { count, questions })) => {
            assert_eq!(count, questions.split(", ").count());
            questions
        }
        Ok(_) => String::new(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn required_questions_follow_skip_logic_through_nested_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, id) = setup(&tmp.path().join("v"));
    assert_eq!(missing(&mut v, &id), "detained");
    v.set_answer(&id, None, "detained", &json!("yes")).unwrap();
    assert_eq!(
        missing(&mut v, &id),
        "episode",
        "a required group needs an instance"
    );
    let ep = v.add_group_instance(&id, "episode", None).unwrap();
    assert_eq!(missing(&mut v, &id), "episode#1.facility");
    v.set_answer(&id, Some(&ep.meta.id), "facility", &json!("kyohwaso"))
        .unwrap();
    v.set_answer(&id, Some(&ep.meta.id), "labor", &json!(["coal_mining"]))
        .unwrap();
    assert_eq!(
        missing(&mut v, &id),
        "episode#1.mine_name",
        "shown by 'labor has coal_mining'"
    );
    v.set_answer(&id, Some(&ep.meta.id), "labor", &json!(["wigs"]))
        .unwrap();
    let inc = v
        .add_group_instance(&id, "incident", Some(&ep.meta.id))
        .unwrap();
    assert_eq!(
        missing(&mut v, &id),
        "",
        "incident_detail hidden: facility is not kwalliso"
    );
    v.reopen_interview(&id).unwrap();
    // The nested question sees the answer of its enclosing instance…
    v.set_answer(&id, Some(&ep.meta.id), "facility", &json!("kwalliso"))
        .unwrap();
    assert_eq!(missing(&mut v, &id), "episode#1.incident#1.incident_detail");
    // …and a top-level answer.
    v.set_answer(&id, Some(&ep.meta.id), "facility", &json!("kyohwaso"))
        .unwrap();
    v.set_answer(&id, None, "age_left", &json!(70)).unwrap();
    assert_eq!(missing(&mut v, &id), "episode#1.incident#1.incident_detail");
    v.set_answer(
        &id,
        Some(&inc.meta.id),
        "incident_detail",
        &json!("상세 내용"),
    )
    .unwrap();
    // A second episode is independent of the first.
    let ep2 = v.add_group_instance(&id, "episode", None).unwrap();
    assert_eq!(missing(&mut v, &id), "episode#2.facility");
    v.remove_group_instance(&ep2.meta.id).unwrap();
    assert_eq!(missing(&mut v, &id), "");
    let i = v.interview(&id).unwrap();
    assert_eq!(i.status, InterviewStatus::Complete);
    assert!(v.review_interview(&id).is_ok());
    // Answering "no" hides the whole section; hidden answers are kept, not deleted.
    v.reopen_interview(&id).unwrap();
    v.set_answer(&id, None, "detained", &json!("no")).unwrap();
    let d = v.interview_detail(&id).unwrap();
    assert!(d.answers.iter().any(|a| a.question_id == "facility"));
    assert_eq!(missing(&mut v, &id), "");
}

#[test]
fn group_instances_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, id) = setup(&tmp.path().join("v"));
    let ep = v.add_group_instance(&id, "episode", None).unwrap();
    // Each refusal is a reason code (the app translates it) that names codebook ids only.
    let reason = |r: Result<_, Error>| match r {
        Err(Error::Invalid(reason)) => reason,
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted"),
    };
    assert_eq!(
        reason(v.add_group_instance(&id, "incident", None).map(drop)),
        Reason::InstanceNeeded {
            group: "episode".into()
        },
        "nested group needs its parent"
    );
    assert_eq!(
        reason(v.add_group_instance(&id, "facility", None).map(drop)),
        Reason::NotAGroup {
            question: "facility".into()
        }
    );
    let inc = v
        .add_group_instance(&id, "incident", Some(&ep.meta.id))
        .unwrap();
    assert_eq!(
        reason(
            v.set_answer(&id, Some(&inc.meta.id), "facility", &json!("kyohwaso"))
                .map(drop)
        ),
        Reason::InstanceElsewhere {
            instance: inc.meta.id.clone(),
            group: "episode".into()
        },
        "wrong instance for the question"
    );
    let r = reason(
        v.set_answer(&id, Some(&ep.meta.id), "detained", &json!("yes"))
            .map(drop),
    );
    assert_eq!(
        r,
        Reason::InstanceNotExpected,
        "top-level question given an instance"
    );
    assert_eq!(
        r.to_string(),
        "this question is not inside a repeatable group; give no instance",
        "the CLI's English is unchanged"
    );
    v.remove_group_instance(&ep.meta.id).unwrap();
    assert_eq!(
        reason(
            v.set_answer(&id, Some(&ep.meta.id), "facility", &json!("kyohwaso"))
                .map(drop)
        ),
        Reason::InstanceRemoved {
            instance: ep.meta.id.clone()
        },
        "removed instance"
    );
    // Status changes out of order are refused with both status codes.
    match v.review_interview(&id) {
        Err(e @ Error::NotAllowed(Reason::StatusTransition { .. })) => {
            assert!(
                matches!(&e, Error::NotAllowed(Reason::StatusTransition { from, to }) if from == "draft" && to == "reviewed")
            );
            assert_eq!(
                e.to_string(),
                "not allowed: interview is draft, cannot become reviewed"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        v.reopen_interview(&id),
        Err(Error::NotAllowed(Reason::StatusTransition { .. }))
    ));
}

fn meta(id: &str) -> RecordMeta {
    RecordMeta {
        id: id.into(),
        device_id: "d".into(),
        created_at: String::new(),
        updated_at: String::new(),
        version: 1,
    }
}

fn answer(instance: Option<&str>, q: &str, v: Value) -> Answer {
    Answer {
        meta: meta(&format!("{q}-{instance:?}")),
        interview_id: "i".into(),
        instance_id: instance.map(str::to_string),
        question_id: q.into(),
        value: v,
    }
}

proptest! {
    /// Visibility of a question two groups deep equals the codebook's rule evaluated by hand.
    #[test]
    fn nested_visibility_matches_the_rule(
        detained in prop::option::of(prop::sample::select(vec!["yes", "no", "unknown"])),
        facility in prop::option::of(prop::sample::select(vec!["kyohwaso", "kwalliso"])),
        age in prop::option::of(0i64..120),
        labor in prop::option::of(prop::sample::subsequence(vec!["coal_mining", "wigs"], 0..=2)),
    ) {
        let cb = Codebook::parse(SMALL, "small.toml").unwrap();
        let mut answers = Vec::new();
        if let Some(d) = detained { answers.push(answer(None, "detained", json!(d))); }
        if let Some(a) = age { answers.push(answer(None, "age_left", json!(a))); }
        if let Some(f) = facility { answers.push(answer(Some("ep"), "facility", json!(f))); }
        if let Some(l) = &labor && !l.is_empty() { answers.push(answer(Some("ep"), "labor", json!(l))); }
        let instances = vec![
            GroupInstance { meta: meta("ep"), interview_id: "i".into(), group_id: "episode".into(), parent_id: None, ordinal: 1, deleted: false },
            GroupInstance { meta: meta("inc"), interview_id: "i".into(), group_id: "incident".into(), parent_id: Some("ep".into()), ordinal: 1, deleted: false },
        ];
        let form = Form::new(&cb, &answers, &instances);
        let section = detained == Some("yes");
        let detail = section && (facility == Some("kwalliso") || age.is_some_and(|a| a > 60));
        prop_assert_eq!(form.is_visible(cb.question("incident_detail").unwrap(), Some("inc")), detail);
        let mine = section && labor.as_ref().is_some_and(|l| l.contains(&"coal_mining"));
        prop_assert_eq!(form.is_visible(cb.question("mine_name").unwrap(), Some("ep")), mine);
        prop_assert_eq!(form.is_visible(cb.question("facility").unwrap(), Some("ep")), section);
        // A question never shows in an instance of another group.
        prop_assert!(!form.is_visible(cb.question("facility").unwrap(), Some("inc")));
        let expected: HashMap<&str, bool> = [("story", true)].into();
        prop_assert_eq!(form.is_visible(cb.question("story").unwrap(), None), expected["story"]);
    }
}

/// What the app shows: the sections and questions (per group instance) that skip logic
/// allows, both decided by the core's `Form`.
#[test]
fn visible_sections_and_questions_follow_the_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, id) = setup(&tmp.path().join("v"));
    let shown = |v: &Vault| {
        let d = v.interview_detail(&id).unwrap();
        let i = &d.interview;
        let cb = v.codebook(&i.codebook_id, &i.codebook_version).unwrap();
        let f = Form::new(&cb, &d.answers, &d.instances);
        (f.visible_sections(), f.visible_questions())
    };
    let (sections, questions) = shown(&v);
    assert_eq!(sections, ["main"]);
    assert!(questions.contains(&"detained".to_string()));
    assert!(!questions.iter().any(|q| q.starts_with("episode")));
    v.set_answer(&id, None, "detained", &json!("yes")).unwrap();
    let ep = v.add_group_instance(&id, "episode", None).unwrap();
    let (sections, questions) = shown(&v);
    assert_eq!(sections, ["main", "detention"]);
    let at = |q: &str| format!("{q}@{}", ep.meta.id);
    assert!(questions.contains(&at("facility")));
    assert!(!questions.contains(&at("mine_name")), "{questions:?}");
    v.set_answer(&id, Some(&ep.meta.id), "labor", &json!(["coal_mining"]))
        .unwrap();
    assert!(shown(&v).1.contains(&at("mine_name")));
    v.set_answer(&id, None, "detained", &json!("no")).unwrap();
    let (sections, questions) = shown(&v);
    assert_eq!(sections, ["main"]);
    assert!(!questions.iter().any(|q| q.contains('@')), "{questions:?}");
}
