use super::*;

const SMALL: &str = include_str!("../../../../assets/fixtures/small-codebook.toml");

fn errors(src: &str) -> Vec<CodebookError> {
    Codebook::parse(src, "t.toml")
        .expect_err("should be rejected")
        .errors
}

/// Line (1-based) of the first line containing `needle` in `src`.
fn line_of(src: &str, needle: &str) -> usize {
    src.lines()
        .position(|l| l.contains(needle))
        .expect("needle present")
        + 1
}

#[test]
fn default_codebook_loads_and_is_bilingual() {
    let cb = Codebook::default_codebook();
    assert!(
        cb.questions.len() >= 40,
        "default codebook covers the domain"
    );
    for q in &cb.questions {
        assert!(!q.label.ko.is_empty() && !q.label.en.is_empty(), "{}", q.id);
    }
    for id in ["kyohwaso", "kwalliso", "jipkyulso", "rodong_danryeondae"] {
        assert!(
            cb.vocabs.iter().any(|v| v.term(id).is_some()),
            "facility type {id}"
        );
    }
}

#[test]
fn small_fixture_loads() {
    let cb = Codebook::parse(SMALL, "small.toml").unwrap();
    assert_eq!(
        cb.question("facility").unwrap().group.as_deref(),
        Some("episode")
    );
    assert_eq!(
        cb.ancestors(cb.question("incident_detail").unwrap()).len(),
        2
    );
}

#[test]
fn syntax_error_names_the_line() {
    let src = SMALL.replace("id = \"story\"", "id = \"story");
    let e = errors(&src);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, line_of(SMALL, "id = \"story\""));
}

#[test]
fn unknown_field_is_rejected_with_its_line() {
    let src = SMALL.replace("id = \"story\"", "id = \"story\"\nrequird = true");
    let e = errors(&src);
    assert_eq!(e[0].line, line_of(&src, "requird"));
    assert!(e[0].message.contains("requird"), "{:?}", e);
}

#[test]
fn semantic_errors_name_line_and_field() {
    let src = SMALL.replace("vocab = \"labor\"", "vocab = \"labour\"");
    let e = errors(&src);
    assert_eq!(e[0].field, "question.vocab");
    assert_eq!(e[0].line, line_of(&src, "vocab = \"labour\""));
    assert!(e[0].message.contains("unknown vocabulary 'labour'"));
}

#[test]
fn all_errors_are_reported_not_just_the_first() {
    let src = SMALL
        .replace("vocab = \"labor\"", "vocab = \"labour\"")
        .replace("ko = \"진술\"", "ko = \"\"")
        .replace("min = 0", "min = 200");
    let e = errors(&src);
    assert!(e.len() >= 3, "{e:?}");
    assert!(e.iter().any(|x| x.field == "question.label.ko"));
    assert!(
        e.windows(2).all(|w| w[0].line <= w[1].line),
        "sorted by line"
    );
}

#[test]
fn skip_logic_is_checked_against_the_codebook() {
    let cases = [
        (
            "labor has 'coal_mining'",
            "labor has 'gold'",
            "not a code of vocabulary",
        ),
        ("labor has 'coal_mining'", "labor == 'wigs'", "use 'has'"),
        (
            "labor has 'coal_mining'",
            "incident_date == '1999'",
            "not a question that comes earlier",
        ),
        ("labor has 'coal_mining'", "detained == 'maybe'", "yes_no"),
        (
            "labor has 'coal_mining'",
            "facility_name > 3",
            "not a number",
        ),
        ("labor has 'coal_mining'", "labor has", "column"),
    ];
    for (from, to, msg) in cases {
        let src = SMALL.replace(from, to);
        let e = errors(&src);
        assert!(
            e.iter()
                .any(|x| x.field == "question.show_if" && x.message.contains(msg)),
            "{to}: {e:?}"
        );
        assert_eq!(e[0].line, line_of(&src, to));
    }
}

#[test]
fn structural_errors() {
    let dup = SMALL.replace("id = \"story\"", "id = \"detained\"");
    assert!(
        errors(&dup)
            .iter()
            .any(|e| e.message.contains("duplicate question id 'detained'"))
    );
    let bad_group = SMALL.replace("group = \"incident\"", "group = \"facility\"");
    assert!(
        errors(&bad_group)
            .iter()
            .any(|e| e.field == "question.group")
    );
    let newer = SMALL.replace("format = 1", "format = 2");
    assert!(errors(&newer)[0].message.contains("newer"));
    let no_vocab = SMALL.replace("vocab = \"facility\"\n", "");
    assert!(
        errors(&no_vocab)
            .iter()
            .any(|e| e.field == "question.vocab")
    );
    let bad_type = SMALL.replace("type = \"yes_no\"", "type = \"yesno\"");
    assert!(errors(&bad_type)[0].message.contains("yesno"));
}

#[test]
fn display_lists_file_line_field() {
    let src = SMALL.replace("vocab = \"labor\"", "vocab = \"labour\"");
    let text = Codebook::parse(&src, "my.toml").unwrap_err().to_string();
    assert!(
        text.contains(&format!(
            "my.toml:{}: question.vocab:",
            line_of(&src, "labour")
        )),
        "{text}"
    );
}
