//! Skip logic: the `show_if` expression language (grammar in docs/codebook.md).
//! Parsing is separate from checking names and types, which needs the whole codebook.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
}

impl Literal {
    fn matches(&self, v: &Value) -> bool {
        match (self, v) {
            (Literal::Str(s), Value::String(x)) => s == x,
            (Literal::Num(n), Value::Number(x)) => x.as_f64() == Some(*n),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A question name as written, with its byte offset inside the expression (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub id: String,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Answered(Name),
    Cmp(Name, CmpOp, Literal),
    In(Name, Vec<Literal>),
    Has(Name, Literal),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {col}: {msg}")]
pub struct ExprError {
    pub col: usize,
    pub msg: String,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut i = 0;
    let err = |at: usize, msg: String| ExprError {
        col: src[..at].chars().count() + 1,
        msg,
    };
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Tok::LParen, at));
                i += 1
            }
            ')' => {
                out.push((Tok::RParen, at));
                i += 1
            }
            '[' => {
                out.push((Tok::LBracket, at));
                i += 1
            }
            ']' => {
                out.push((Tok::RBracket, at));
                i += 1
            }
            ',' => {
                out.push((Tok::Comma, at));
                i += 1
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).map(|x| x.1);
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (CmpOp::Eq, 2),
                    ('!', Some('=')) => (CmpOp::Ne, 2),
                    ('<', Some('=')) => (CmpOp::Le, 2),
                    ('>', Some('=')) => (CmpOp::Ge, 2),
                    ('<', _) => (CmpOp::Lt, 1),
                    ('>', _) => (CmpOp::Gt, 1),
                    _ => {
                        return Err(err(
                            at,
                            format!("unexpected '{c}' (comparisons are ==, !=, <, <=, >, >=)"),
                        ));
                    }
                };
                out.push((Tok::Op(op), at));
                i += len;
            }
            '\'' | '"' => {
                let mut j = i + 1;
                let mut s = String::new();
                while j < chars.len() && chars[j].1 != c {
                    s.push(chars[j].1);
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(err(at, "unterminated string".into()));
                }
                out.push((Tok::Str(s), at));
                i = j + 1;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].1.is_ascii_digit() || chars[j].1 == '.') {
                    j += 1;
                }
                let end = chars.get(j).map_or(src.len(), |x| x.0);
                let n: f64 = src[at..end]
                    .parse()
                    .map_err(|_| err(at, format!("bad number '{}'", &src[at..end])))?;
                out.push((Tok::Num(n), at));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].1.is_ascii_alphanumeric() || chars[j].1 == '_') {
                    j += 1;
                }
                let end = chars.get(j).map_or(src.len(), |x| x.0);
                out.push((Tok::Ident(src[at..end].to_string()), at));
                i = j;
            }
            other => return Err(err(at, format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser<'_> {
    fn col(&self, at: usize) -> usize {
        self.src[..at].chars().count() + 1
    }
    fn err_here(&self, msg: impl Into<String>) -> ExprError {
        let at = self.toks.get(self.pos).map_or(self.src.len(), |t| t.1);
        ExprError {
            col: self.col(at),
            msg: msg.into(),
        }
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s == kw)
    }
    fn bump(&mut self) -> Option<(Tok, usize)> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, want: Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() == Some(&want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err_here(format!("expected {what}")))
        }
    }
    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut v = vec![self.and()?];
        while self.peek_kw("or") {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap()
        } else {
            Expr::Or(v)
        })
    }
    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut v = vec![self.unary()?];
        while self.peek_kw("and") {
            self.pos += 1;
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.pop().unwrap()
        } else {
            Expr::And(v)
        })
    }
    fn literal(&mut self) -> Result<Literal, ExprError> {
        match self.bump() {
            Some((Tok::Str(s), _)) => Ok(Literal::Str(s)),
            Some((Tok::Num(n), _)) => Ok(Literal::Num(n)),
            _ => {
                self.pos -= 1;
                Err(self.err_here("expected a quoted string or a number"))
            }
        }
    }
    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.peek_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::RParen, "')'")?;
            return Ok(e);
        }
        let (id, at) = match self.bump() {
            Some((Tok::Ident(id), at)) if !matches!(id.as_str(), "and" | "or" | "in" | "has") => {
                (id, at)
            }
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.err_here("expected a question id, 'not', 'answered(…)' or '('"));
            }
        };
        if id == "answered" && self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let name = match self.bump() {
                Some((Tok::Ident(q), at)) => Name { id: q, at },
                _ => {
                    self.pos -= 1;
                    return Err(self.err_here("expected a question id inside answered(…)"));
                }
            };
            self.expect(Tok::RParen, "')'")?;
            return Ok(Expr::Answered(name));
        }
        let name = Name { id, at };
        match self.bump() {
            Some((Tok::Op(op), _)) => Ok(Expr::Cmp(name, op, self.literal()?)),
            Some((Tok::Ident(k), _)) if k == "has" => Ok(Expr::Has(name, self.literal()?)),
            Some((Tok::Ident(k), _)) if k == "in" => {
                self.expect(Tok::LBracket, "'[' after 'in'")?;
                let mut lits = vec![self.literal()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    lits.push(self.literal()?);
                }
                self.expect(Tok::RBracket, "']'")?;
                Ok(Expr::In(name, lits))
            }
            _ => {
                self.pos = self.pos.saturating_sub(1);
                Err(self.err_here(format!(
                    "expected a comparison (==, !=, <, <=, >, >=, in, has) after '{}'",
                    name.id
                )))
            }
        }
    }
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let toks = lex(src)?;
        if toks.is_empty() {
            return Err(ExprError {
                col: 1,
                msg: "empty expression".into(),
            });
        }
        let mut p = Parser { src, toks, pos: 0 };
        let e = p.or()?;
        if p.pos < p.toks.len() {
            return Err(p.err_here("unexpected text after the end of the expression"));
        }
        Ok(e)
    }

    /// Evaluates with `lookup` giving the current answer to a question id, if any.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Expr::Or(v) => v.iter().any(|e| e.eval(lookup)),
            Expr::And(v) => v.iter().all(|e| e.eval(lookup)),
            Expr::Not(e) => !e.eval(lookup),
            Expr::Answered(n) => lookup(&n.id).is_some(),
            Expr::Cmp(n, op, lit) => {
                let Some(v) = lookup(&n.id) else { return false };
                match op {
                    CmpOp::Eq => lit.matches(&v),
                    CmpOp::Ne => !lit.matches(&v),
                    _ => {
                        let (Some(x), Literal::Num(y)) = (v.as_f64(), lit) else {
                            return false;
                        };
                        match op {
                            CmpOp::Lt => x < *y,
                            CmpOp::Le => x <= *y,
                            CmpOp::Gt => x > *y,
                            CmpOp::Ge => x >= *y,
                            _ => unreachable!(),
                        }
                    }
                }
            }
            Expr::In(n, lits) => lookup(&n.id).is_some_and(|v| lits.iter().any(|l| l.matches(&v))),
            Expr::Has(n, lit) => lookup(&n.id).is_some_and(|v| {
                v.as_array()
                    .is_some_and(|a| a.iter().any(|x| lit.matches(x)))
            }),
        }
    }

    /// Every question name the expression mentions, in order.
    pub fn names(&self) -> Vec<&Name> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }
    fn collect<'a>(&'a self, out: &mut Vec<&'a Name>) {
        match self {
            Expr::Or(v) | Expr::And(v) => v.iter().for_each(|e| e.collect(out)),
            Expr::Not(e) => e.collect(out),
            Expr::Answered(n) | Expr::Cmp(n, _, _) | Expr::In(n, _) | Expr::Has(n, _) => {
                out.push(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn eval(src: &str, answers: &HashMap<&str, Value>) -> bool {
        Expr::parse(src)
            .unwrap()
            .eval(&|id| answers.get(id).cloned())
    }

    #[test]
    fn evaluates_the_documented_forms() {
        let a: HashMap<&str, Value> = [
            ("detained", json!("yes")),
            ("labor", json!(["coal_mining", "wigs"])),
            ("years", json!(5)),
        ]
        .into();
        assert!(eval("detained == 'yes'", &a));
        assert!(!eval("detained != 'yes'", &a));
        assert!(eval("labor has 'wigs'", &a));
        assert!(!eval("labor has 'textiles'", &a));
        assert!(eval("years >= 5 and years < 10", &a));
        assert!(eval("detained in ['no', \"yes\"]", &a));
        assert!(eval("not answered(missing)", &a));
        assert!(
            !eval("missing != 'x'", &a),
            "comparisons on unanswered questions are false"
        );
        assert!(eval(
            "(missing == 'x' or detained == 'yes') and not years > 9",
            &a
        ));
    }

    #[test]
    fn reports_the_column_of_a_syntax_error() {
        let e = Expr::parse("detained == 'yes' and").unwrap_err();
        assert_eq!(e.col, 22);
        let e = Expr::parse("detained = 'yes'").unwrap_err();
        assert_eq!(e.col, 10);
        assert!(
            Expr::parse("a == 'x")
                .unwrap_err()
                .msg
                .contains("unterminated")
        );
        assert!(Expr::parse("").is_err());
        assert!(Expr::parse("a in []").is_err());
    }

    fn arb_expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            (0..3usize, 0..3usize).prop_map(|(q, v)| format!("q{q} == 'v{v}'")),
            (0..3usize, 0..3usize).prop_map(|(q, v)| format!("q{q} != 'v{v}'")),
            (0..3usize).prop_map(|q| format!("answered(q{q})")),
            (0..3usize, 0..3usize).prop_map(|(q, v)| format!("m{q} has 'v{v}'")),
            (0..3usize, -5..15i32).prop_map(|(q, n)| format!("n{q} > {n}")),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
                inner.prop_map(|a| format!("not ({a})")),
            ]
        })
    }

    fn arb_answers() -> impl Strategy<Value = HashMap<String, Value>> {
        proptest::collection::hash_map(
            prop_oneof![
                (0..3usize).prop_map(|q| format!("q{q}")),
                (0..3usize).prop_map(|q| format!("m{q}")),
                (0..3usize).prop_map(|q| format!("n{q}"))
            ],
            prop_oneof![
                (0..3usize).prop_map(|v| json!(format!("v{v}"))),
                proptest::collection::vec((0..3usize).prop_map(|v| format!("v{v}")), 0..3)
                    .prop_map(|v| json!(v)),
                (-5..15i32).prop_map(|n| json!(n)),
            ],
            0..9,
        )
    }

    proptest! {
        /// De Morgan and double negation hold: the evaluator is a real boolean algebra.
        #[test]
        fn boolean_laws(a in arb_expr(), b in arb_expr(), ans in arb_answers()) {
            let look = |id: &str| ans.get(id).cloned();
            let e = |s: String| Expr::parse(&s).unwrap().eval(&look);
            prop_assert_eq!(e(format!("not (({a}) and ({b}))")), e(format!("(not ({a})) or (not ({b}))")));
            prop_assert_eq!(e(format!("not (not ({a}))")), e(a.clone()));
            prop_assert_eq!(e(format!("({a}) or ({b})")), e(format!("({b}) or ({a})")));
        }

        /// Unanswered questions never satisfy a comparison.
        #[test]
        fn unanswered_is_false(q in 0..3usize, v in 0..3usize) {
            let empty = |_: &str| None;
            for src in [format!("q{q} == 'v{v}'"), format!("q{q} != 'v{v}'"), format!("m{q} has 'v{v}'"), format!("n{q} > {v}")] {
                prop_assert!(!Expr::parse(&src).unwrap().eval(&empty));
            }
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = Expr::parse(&s);
        }
    }
}
