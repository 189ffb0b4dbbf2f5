//! Template fields typed inline. People who type fast put the ticket into the sentence
//! (`INC-4211 fixing replica lag`) instead of filling a form; this module takes such words
//! apart into the values of the role's request template and the justification that is left.
//! It only sorts words: whatever it fills is checked afterwards by validation, like an answer
//! given in a form, so a wrong `ticket=JIRA-1` is refused there with the pattern to follow.

use std::collections::BTreeMap;

use super::policy::{RequestTemplate, TemplateField};

/// Words sorted into template field values and the justification left over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filled {
    /// Field id → value.
    pub fields: BTreeMap<String, String>,
    /// The words no field took, in the order typed, separated by single spaces.
    pub justification: String,
}

/// Sorts `words` into the fields of `template` and the justification.
///
/// A `key=value` word whose key is a field id (any case) fills that field, first one wins.
/// Then each remaining word fills the first not-yet-filled field, in template order, whose
/// pattern it matches; fields without a pattern are filled only by name. Everything else,
/// in order, is the justification. Without a template, every word is justification.
pub fn fill_fields(template: Option<&RequestTemplate>, words: &str) -> Filled {
    let fields_of_template = template.map(|t| t.fields.as_slice()).unwrap_or_default();
    let mut fields = BTreeMap::new();

    // Named values first, so that a value the person labelled is never claimed by a
    // pattern of another field, and the labelled field is not filled twice.
    let mut unnamed: Vec<&str> = Vec::new();
    for word in words.split_whitespace() {
        match named(fields_of_template, word) {
            Some((field, value)) if !fields.contains_key(&field.id) => {
                fields.insert(field.id.clone(), value.to_owned());
            }
            _ => unnamed.push(word),
        }
    }

    let mut justification: Vec<&str> = Vec::new();
    for word in unnamed {
        let found = fields_of_template
            .iter()
            .filter(|field| !fields.contains_key(&field.id))
            .find_map(|field| matching(field, word).map(|value| (field, value)));
        match found {
            Some((field, value)) => {
                fields.insert(field.id.clone(), value.to_owned());
            }
            None => justification.push(word),
        }
    }

    Filled {
        fields,
        justification: justification.join(" "),
    }
}

/// `ticket=INC-1` → the field `ticket` and `INC-1`, when `ticket` is a field of the template.
fn named<'f, 'w>(
    fields: &'f [TemplateField],
    word: &'w str,
) -> Option<(&'f TemplateField, &'w str)> {
    let (key, value) = word.split_once('=')?;
    if value.is_empty() {
        return None;
    }
    let field = fields.iter().find(|f| f.id.eq_ignore_ascii_case(key))?;
    Some((field, value))
}

/// The value `word` gives `field`, if it matches its pattern. Trailing punctuation is let go
/// when that is what stops a match, because people write `INC-4211: fixing replica lag`.
fn matching<'w>(field: &TemplateField, word: &'w str) -> Option<&'w str> {
    let pattern = field.pattern.as_ref()?;
    if pattern.is_match(word) {
        return Some(word);
    }
    let trimmed = word.trim_end_matches([',', ';', ':', '.']);
    (!trimmed.is_empty() && trimmed != word && pattern.is_match(trimmed)).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;
    use crate::domain::ids::TemplateId;

    fn field(id: &str, pattern: Option<&str>) -> TemplateField {
        TemplateField {
            id: id.to_owned(),
            label: id.to_owned(),
            pattern: pattern.map(|p| Regex::new(p).unwrap()),
            required: true,
        }
    }

    fn template(fields: Vec<TemplateField>) -> RequestTemplate {
        RequestTemplate {
            id: TemplateId::new("incident"),
            fields,
        }
    }

    fn ticket_template() -> RequestTemplate {
        template(vec![field("ticket", Some("^(INC|CHG)-[0-9]+$"))])
    }

    fn filled(pairs: &[(&str, &str)], justification: &str) -> Filled {
        Filled {
            fields: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            justification: justification.to_owned(),
        }
    }

    #[test]
    fn a_ticket_typed_inline_fills_the_template_field() {
        let t = ticket_template();
        assert_eq!(
            fill_fields(Some(&t), "INC-4211 fixing replica lag"),
            filled(&[("ticket", "INC-4211")], "fixing replica lag")
        );
    }

    #[test]
    fn the_ticket_may_stand_anywhere_in_the_sentence() {
        let t = ticket_template();
        assert_eq!(
            fill_fields(Some(&t), "fixing  replica lag, see CHG-7 for details"),
            filled(
                &[("ticket", "CHG-7")],
                "fixing replica lag, see for details"
            )
        );
    }

    #[test]
    fn trailing_punctuation_does_not_hide_a_ticket() {
        let t = ticket_template();
        assert_eq!(
            fill_fields(Some(&t), "INC-4211: fixing replica lag"),
            filled(&[("ticket", "INC-4211")], "fixing replica lag")
        );
    }

    #[test]
    fn without_a_template_everything_is_justification() {
        assert_eq!(
            fill_fields(None, " INC-4211  fixing replica lag "),
            filled(&[], "INC-4211 fixing replica lag")
        );
    }

    #[test]
    fn a_key_value_word_fills_the_field_it_names_even_against_its_pattern() {
        let t = ticket_template();
        // Validation, not this module, tells the person that JIRA-1 is not a ticket.
        assert_eq!(
            fill_fields(Some(&t), "Ticket=JIRA-1 fixing lag"),
            filled(&[("ticket", "JIRA-1")], "fixing lag")
        );
    }

    #[test]
    fn a_named_field_is_not_filled_again_by_its_pattern() {
        let t = ticket_template();
        assert_eq!(
            fill_fields(Some(&t), "INC-1 fixing lag ticket=INC-2 ticket=INC-3"),
            filled(&[("ticket", "INC-2")], "INC-1 fixing lag ticket=INC-3")
        );
    }

    #[test]
    fn a_key_that_is_not_a_field_stays_in_the_justification() {
        let t = ticket_template();
        assert_eq!(
            fill_fields(Some(&t), "lag=30s on replica INC-9"),
            filled(&[("ticket", "INC-9")], "lag=30s on replica")
        );
    }

    #[test]
    fn each_field_takes_one_word_in_template_order() {
        let t = template(vec![
            field("incident", Some("^INC-[0-9]+$")),
            field("change", Some("^(INC|CHG)-[0-9]+$")),
        ]);
        assert_eq!(
            fill_fields(Some(&t), "INC-1 INC-2 INC-3 rollback"),
            filled(
                &[("incident", "INC-1"), ("change", "INC-2")],
                "INC-3 rollback"
            )
        );
    }

    #[test]
    fn fields_without_a_pattern_are_filled_only_by_name() {
        let t = template(vec![
            field("customer", None),
            field("ticket", Some("^INC-[0-9]+$")),
        ]);
        assert_eq!(
            fill_fields(Some(&t), "acme INC-5 customer=globex debugging"),
            filled(
                &[("customer", "globex"), ("ticket", "INC-5")],
                "acme debugging"
            )
        );
    }

    #[test]
    fn nothing_typed_fills_nothing() {
        let t = ticket_template();
        assert_eq!(fill_fields(Some(&t), "   "), Filled::default());
    }
}
