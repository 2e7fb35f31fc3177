//! The forms of a call (docs/calls.md, "Survey and fields"): the survey a customer answers when
//! the call ends (rating 1 to 5, a choice, free text) and the extra fields an agent fills in
//! (text, number, choice, date), each required or not. An administrator defines them for every
//! app (scope `default`) or for one app (its name); a call uses its app's, else the default.
//! Here: their shape, their limits, and the checking of definitions, values and answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The scope of the forms every app uses unless it has its own.
pub const DEFAULT_SCOPE: &str = "default";
/// Questions in a survey at most.
pub const MAX_QUESTIONS: usize = 20;
/// Fields at most.
pub const MAX_FIELDS: usize = 30;
/// Choices of a question or field at most.
pub const MAX_CHOICES: usize = 20;
/// The longest label.
pub const MAX_LABEL_CHARS: usize = 200;
/// The longest choice.
pub const MAX_CHOICE_CHARS: usize = 100;
/// The longest value or answer.
pub const MAX_VALUE_CHARS: usize = 2000;
/// The most bytes a survey's or the fields' definitions take as JSON (a database TEXT).
pub const MAX_FORM_BYTES: usize = 60_000;

/// A survey question's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// 1 to 5.
    Rating,
    /// One of `choices`.
    Choice,
    /// Free text.
    Text,
}

/// A field's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Free text.
    Text,
    /// A number.
    Number,
    /// One of `choices`.
    Choice,
    /// `YYYY-MM-DD`.
    Date,
}

/// A survey question or a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item<K> {
    /// Its id: letters, digits, `_`, `-`; at most 32.
    pub id: String,
    /// What it is.
    pub kind: K,
    /// What people read.
    pub label: String,
    /// The choices (kind `choice` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Whether it must be answered.
    #[serde(default)]
    pub required: bool,
}

/// A survey question.
pub type Question = Item<QuestionKind>;
/// A field.
pub type Field = Item<FieldKind>;

/// The forms of a scope.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallForms {
    /// The survey.
    #[serde(default)]
    pub survey: Vec<Question>,
    /// The fields.
    #[serde(default)]
    pub fields: Vec<Field>,
}

fn valid_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `scope` can name forms: `default` or an app's name.
pub fn valid_scope(scope: &str) -> bool {
    (1..=64).contains(&scope.len())
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-. ".contains(&b))
}

fn check_items<K>(
    what: &str,
    items: &[Item<K>],
    max: usize,
    is_choice: impl Fn(&K) -> bool,
) -> Result<(), String> {
    if items.len() > max {
        return Err(format!("at most {max} {what}s"));
    }
    let mut seen = std::collections::HashSet::new();
    for item in items {
        if !valid_id(&item.id) {
            return Err(format!(
                "{what} id {:?}: 1 to 32 letters, digits, _ or -",
                item.id.chars().take(40).collect::<String>()
            ));
        }
        if !seen.insert(item.id.as_str()) {
            return Err(format!("{what} id {} twice", item.id));
        }
        let label = item.label.trim();
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
            return Err(format!(
                "{what} {}: a label of 1 to {MAX_LABEL_CHARS} characters",
                item.id
            ));
        }
        if is_choice(&item.kind) {
            if item.choices.is_empty() || item.choices.len() > MAX_CHOICES {
                return Err(format!("{what} {}: 1 to {MAX_CHOICES} choices", item.id));
            }
            if item
                .choices
                .iter()
                .any(|c| c.trim().is_empty() || c.chars().count() > MAX_CHOICE_CHARS)
            {
                return Err(format!(
                    "{what} {}: each choice 1 to {MAX_CHOICE_CHARS} characters",
                    item.id
                ));
            }
        } else if !item.choices.is_empty() {
            return Err(format!("{what} {}: choices are for kind choice", item.id));
        }
    }
    Ok(())
}

impl CallForms {
    /// `Err` says what is wrong with these definitions.
    pub fn check(&self) -> Result<(), String> {
        check_items("question", &self.survey, MAX_QUESTIONS, |k| {
            *k == QuestionKind::Choice
        })?;
        check_items("field", &self.fields, MAX_FIELDS, |k| {
            *k == FieldKind::Choice
        })
    }

    /// The field values `values` checked against the fields: each named field's value fits its
    /// kind, every required field has one. `Err` names the first that does not.
    pub fn check_values(&self, values: &BTreeMap<String, String>) -> Result<(), String> {
        for id in values.keys() {
            if !self.fields.iter().any(|f| &f.id == id) {
                return Err(format!("no field {id}"));
            }
        }
        for f in &self.fields {
            let value = values.get(&f.id).map(|v| v.trim()).unwrap_or("");
            if value.is_empty() {
                if f.required {
                    return Err(format!("{} is required", f.label));
                }
                continue;
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                return Err(format!("{}: at most {MAX_VALUE_CHARS} characters", f.label));
            }
            let fits = match f.kind {
                FieldKind::Text => true,
                FieldKind::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
                FieldKind::Choice => f.choices.iter().any(|c| c == value),
                FieldKind::Date => chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
            };
            if !fits {
                let kind = match f.kind {
                    FieldKind::Text => "text",
                    FieldKind::Number => "a number",
                    FieldKind::Choice => "one of its choices",
                    FieldKind::Date => "a date, YYYY-MM-DD",
                };
                return Err(format!("{} must be {kind}", f.label));
            }
        }
        Ok(())
    }

    /// The survey answers `answers` checked: each fits its question, every required one is
    /// there. Returns each answer with its rating (rating questions).
    pub fn check_answers(
        &self,
        answers: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String, Option<i64>)>, String> {
        for id in answers.keys() {
            if !self.survey.iter().any(|q| &q.id == id) {
                return Err(format!("no question {id}"));
            }
        }
        let mut out = Vec::new();
        for q in &self.survey {
            let value = answers.get(&q.id).map(|v| v.trim()).unwrap_or("");
            if value.is_empty() {
                if q.required {
                    return Err(format!("{} needs an answer", q.label));
                }
                continue;
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                return Err(format!("{}: at most {MAX_VALUE_CHARS} characters", q.label));
            }
            let rating = match q.kind {
                QuestionKind::Rating => match value.parse::<i64>() {
                    Ok(r @ 1..=5) => Some(r),
                    _ => return Err(format!("{}: a rating from 1 to 5", q.label)),
                },
                QuestionKind::Choice if !q.choices.iter().any(|c| c == value) => {
                    return Err(format!("{}: one of its choices", q.label))
                }
                _ => None,
            };
            out.push((q.id.clone(), value.to_string(), rating));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms() -> CallForms {
        serde_json::from_value(serde_json::json!({
            "survey": [
                {"id": "rating", "kind": "rating", "label": "How was the call?", "required": true},
                {"id": "again", "kind": "choice", "label": "Would you call again?", "choices": ["yes", "no"]},
                {"id": "words", "kind": "text", "label": "Anything to add?"}
            ],
            "fields": [
                {"id": "contract", "kind": "text", "label": "Contract number", "required": true},
                {"id": "amount", "kind": "number", "label": "Amount"},
                {"id": "visit", "kind": "date", "label": "Visit"},
                {"id": "outcome", "kind": "choice", "label": "Outcome", "choices": ["sold", "later"]}
            ]
        }))
        .unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn definitions_are_checked() {
        assert_eq!(forms().check(), Ok(()));
        let mut f = forms();
        f.fields[1].id = "amount!".into();
        assert!(f.check().unwrap_err().contains("letters, digits"));
        let mut f = forms();
        f.fields[1].id = "contract".into();
        assert!(f.check().unwrap_err().contains("twice"));
        let mut f = forms();
        f.survey[1].choices.clear();
        assert!(f.check().unwrap_err().contains("choices"));
        let mut f = forms();
        f.survey[0].choices = vec!["x".into()];
        assert!(f.check().unwrap_err().contains("for kind choice"));
        let mut f = forms();
        f.fields[0].label = " ".into();
        assert!(f.check().unwrap_err().contains("label"));
    }

    #[test]
    fn values_fit_their_fields() {
        let f = forms();
        assert_eq!(
            f.check_values(&map(&[
                ("contract", "A-17"),
                ("amount", "12.5"),
                ("visit", "2026-03-10"),
                ("outcome", "sold")
            ])),
            Ok(())
        );
        assert_eq!(
            f.check_values(&map(&[("amount", "3")])),
            Err("Contract number is required".into())
        );
        assert_eq!(
            f.check_values(&map(&[("contract", "A"), ("amount", "lots")])),
            Err("Amount must be a number".into())
        );
        assert!(f
            .check_values(&map(&[("contract", "A"), ("visit", "10.03.2026")]))
            .is_err());
        assert!(f
            .check_values(&map(&[("contract", "A"), ("outcome", "maybe")]))
            .is_err());
        assert_eq!(
            f.check_values(&map(&[("contract", "A"), ("colour", "red")])),
            Err("no field colour".into())
        );
    }

    #[test]
    fn answers_fit_their_questions() {
        let f = forms();
        assert_eq!(
            f.check_answers(&map(&[("rating", "4"), ("again", "yes")])),
            Ok(vec![
                ("rating".into(), "4".into(), Some(4)),
                ("again".into(), "yes".into(), None)
            ])
        );
        assert!(f
            .check_answers(&map(&[("again", "yes")]))
            .unwrap_err()
            .contains("needs an answer"));
        assert!(f.check_answers(&map(&[("rating", "6")])).is_err());
        assert!(f
            .check_answers(&map(&[("rating", "5"), ("again", "perhaps")]))
            .is_err());
    }
}
