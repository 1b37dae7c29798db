//! Skip logic over a filled-in interview: which questions are shown, in which group instance,
//! and which required ones are still unanswered. The desktop app and the CLI both ask this;
//! neither decides it on its own.

use std::collections::HashMap;

use serde_json::Value;

use crate::codebook::{Codebook, Question, QuestionType};
use crate::model::{Answer, GroupInstance};

pub struct Form<'a> {
    cb: &'a Codebook,
    top: HashMap<&'a str, &'a Value>,
    instances: HashMap<&'a str, &'a GroupInstance>,
    /// The live instances in the order given.
    live: Vec<&'a GroupInstance>,
    by_instance: HashMap<&'a str, HashMap<&'a str, &'a Value>>,
}

impl<'a> Form<'a> {
    pub fn new(
        cb: &'a Codebook,
        answers: &'a [Answer],
        instances: &'a [GroupInstance],
    ) -> Form<'a> {
        let live: Vec<&GroupInstance> = instances.iter().filter(|i| !i.deleted).collect();
        let instances: HashMap<&str, &GroupInstance> =
            live.iter().map(|i| (i.meta.id.as_str(), *i)).collect();
        let mut top = HashMap::new();
        let mut by_instance: HashMap<&str, HashMap<&str, &Value>> = HashMap::new();
        for a in answers {
            match a.instance_id.as_deref() {
                None => {
                    top.insert(a.question_id.as_str(), &a.value);
                }
                Some(i) if instances.contains_key(i) => {
                    by_instance
                        .entry(i)
                        .or_default()
                        .insert(a.question_id.as_str(), &a.value);
                }
                Some(_) => {} // answers in a removed instance are kept but not shown
            }
        }
        Form {
            cb,
            top,
            instances,
            live,
            by_instance,
        }
    }

    /// The answer `name` refers to from inside `context` (an instance id, or None at top level).
    pub fn lookup(&self, context: Option<&str>, name: &str) -> Option<Value> {
        let target = self.cb.question(name)?;
        let Some(group) = target.group.as_deref() else {
            return self.top.get(name).map(|v| (*v).clone());
        };
        let mut cur = context;
        while let Some(id) = cur {
            let inst = self.instances.get(id)?;
            if inst.group_id == group {
                return self
                    .by_instance
                    .get(id)
                    .and_then(|m| m.get(name))
                    .map(|v| (*v).clone());
            }
            cur = inst.parent_id.as_deref();
        }
        None
    }

    fn eval(&self, expr: &Option<crate::codebook::Expr>, context: Option<&str>) -> bool {
        expr.as_ref()
            .is_none_or(|e| e.eval(&|n| self.lookup(context, n)))
    }

    /// Whether `q` is shown in `context` (the instance of q's group; None for top-level questions).
    pub fn is_visible(&self, q: &Question, context: Option<&str>) -> bool {
        let Some(section) = self.cb.section(&q.section) else {
            return false;
        };
        if !self.eval(&section.show_if_expr, None) {
            return false;
        }
        if let Some(g) = q.group.as_deref() {
            let Some(inst) = context.and_then(|c| self.instances.get(c)) else {
                return false;
            };
            if inst.group_id != g {
                return false;
            }
            let Some(gq) = self.cb.question(g) else {
                return false;
            };
            if !self.is_visible(gq, inst.parent_id.as_deref()) {
                return false;
            }
        }
        self.eval(&q.show_if_expr, context)
    }

    /// Ids of the sections shown (their `show_if` holds at top level), in codebook order.
    pub fn visible_sections(&self) -> Vec<String> {
        self.cb
            .sections
            .iter()
            .filter(|s| self.eval(&s.show_if_expr, None))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Every question shown, in codebook order: `question` at top level, `question@instance`
    /// for each live instance of its group (in the order given to [`Form::new`]) where it is
    /// shown.
    pub fn visible_questions(&self) -> Vec<String> {
        let mut visible = Vec::new();
        for q in &self.cb.questions {
            match q.group.as_deref() {
                None => {
                    if self.is_visible(q, None) {
                        visible.push(q.id.clone());
                    }
                }
                Some(g) => {
                    for inst in self.live.iter().filter(|i| i.group_id == g) {
                        if self.is_visible(q, Some(&inst.meta.id)) {
                            visible.push(format!("{}@{}", q.id, inst.meta.id));
                        }
                    }
                }
            }
        }
        visible
    }

    /// Live instances of `group` under `parent` (None: top level), in order.
    pub fn instances_of(&self, group: &str, parent: Option<&str>) -> Vec<&'a GroupInstance> {
        let mut v: Vec<&GroupInstance> = self
            .instances
            .values()
            .copied()
            .filter(|i| i.group_id == group && i.parent_id.as_deref() == parent)
            .collect();
        v.sort_by_key(|i| i.ordinal);
        v
    }

    /// Required questions that are shown but unanswered, as readable paths such as
    /// `detention_episode#2.facility_type`.
    pub fn missing_required(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(None, None, "", &mut out);
        out
    }

    fn walk(
        &self,
        group: Option<&str>,
        context: Option<&str>,
        prefix: &str,
        out: &mut Vec<String>,
    ) {
        for q in self.cb.children(group) {
            if !self.is_visible(q, context) {
                continue;
            }
            if q.kind == QuestionType::Group {
                let insts = self.instances_of(&q.id, context);
                if q.required && insts.is_empty() {
                    out.push(format!("{prefix}{}", q.id));
                }
                for i in insts {
                    self.walk(
                        Some(&q.id),
                        Some(&i.meta.id),
                        &format!("{prefix}{}#{}.", q.id, i.ordinal),
                        out,
                    );
                }
            } else if q.required && self.lookup(context, &q.id).is_none() {
                out.push(format!("{prefix}{}", q.id));
            }
        }
    }
}
