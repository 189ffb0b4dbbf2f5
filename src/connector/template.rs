//! Templates that turn the person of a call into a name at the target: a database login
//! (`{{ email | split("@") | first }}`), an LDAP DN or search filter, a GitHub login
//! (`{{ accounts.github }}`). They see the fields of [`PersonRef`]: `id`, `email`, `slack`,
//! `discord`, and `accounts`, the person's accounts at other systems by name.
//!
//! Every value a template prints is escaped for where it goes (a DN, a search filter), so a
//! person's email cannot change the structure of a DN or widen a filter. A value that is
//! missing (a person without an email) is an error, never the text `none`.
//!
//! A render has a budget of work ([`FUEL`]) and of output ([`MAX_OUTPUT`]), far above what
//! a name needs, so that no template can hang a grant or fill memory; `gatehouse check`
//! renders each one for a sample person to find one that goes over.

use minijinja::{Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value};

use super::PersonRef;

/// How printed values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// As they are: the caller quotes the result (a PostgreSQL identifier).
    Plain,
    /// For a distinguished name (RFC 4514).
    Dn,
    /// For a search filter (RFC 4515).
    Filter,
}

/// A compiled template.
pub struct PersonTemplate {
    env: Environment<'static>,
    /// The accounts it names (`github` for `{{ accounts.github }}`), to say which one a
    /// person lacks.
    accounts: Vec<String>,
}

const NAME: &str = "template";

/// The work one render may do, in minijinja fuel (about one per instruction and one per 64
/// bytes of text made): `{{ email | split("@") | first }}` takes about ten.
pub const FUEL: u64 = 100_000;

/// The longest name a template may print: logins and DNs are far shorter.
pub const MAX_OUTPUT: usize = 16 * 1024;

/// Why a template could not make a name.
enum Failure {
    /// It went over [`FUEL`] or [`MAX_OUTPUT`]: wrong for every person.
    OverBudget(String),
    /// It cannot make a name for this person (a value missing, say).
    Other(String),
}

impl Failure {
    fn text(self) -> String {
        match self {
            Failure::OverBudget(text) | Failure::Other(text) => text,
        }
    }
}

impl PersonTemplate {
    /// Compiles `source`; the error says what is wrong with it.
    pub fn parse(source: &str, escape: Escape) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(
            move |out: &mut Output<'_>, _: &mut State<'_, '_>, value: &Value| {
                if value.is_none() || value.is_undefined() {
                    return Err(Error::new(
                        ErrorKind::UndefinedError,
                        "a value the template prints is missing for this person",
                    ));
                }
                let text = value.to_string();
                let escaped = match escape {
                    Escape::Plain => text,
                    Escape::Dn => ldap3::dn_escape(text.as_str()).into_owned(),
                    Escape::Filter => ldap3::ldap_escape(text.as_str()).into_owned(),
                };
                out.write_str(&escaped).map_err(Error::from)
            },
        );
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| describe(&e))?;
        let mut accounts: Vec<String> = env
            .get_template(NAME)
            .map_err(|e| describe(&e))?
            .undeclared_variables(true)
            .into_iter()
            .filter_map(|path| {
                let name = path.strip_prefix("accounts.")?;
                Some(name.split('.').next().unwrap_or(name).to_owned())
            })
            .collect();
        accounts.sort();
        accounts.dedup();
        Ok(Self { env, accounts })
    }

    /// The template's text for `person`, trimmed; empty output is an error.
    pub fn render(&self, person: &PersonRef) -> Result<String, String> {
        self.try_render(person).map_err(Failure::text)
    }

    /// Renders for a sample person with every value, for `gatehouse check`: an error when
    /// the template goes over its budget, which it would for every person.
    pub fn check_budget(&self) -> Result<(), String> {
        let sample = PersonRef {
            id: "sample".into(),
            email: Some("sample.person@example.com".to_owned()),
            slack: Some("U0SAMPLE".to_owned()),
            discord: Some("100000000000000001".to_owned()),
            accounts: self
                .accounts
                .iter()
                .map(|name| (name.clone(), format!("sample-{name}")))
                .collect(),
        };
        match self.try_render(&sample) {
            Err(Failure::OverBudget(problem)) => Err(problem),
            _ => Ok(()),
        }
    }

    fn try_render(&self, person: &PersonRef) -> Result<String, Failure> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| Failure::Other(describe(&e)))?;
        let rendered = template
            .render(minijinja::context! {
                id => person.id.as_str(),
                email => person.email.as_deref(),
                slack => person.slack.as_deref(),
                discord => person.discord.as_deref(),
                accounts => &person.accounts,
            })
            .map_err(|e| match e.kind() {
                ErrorKind::OutOfFuel => Failure::OverBudget(format!(
                    "the template used up its budget of {FUEL} steps; look for a loop that runs too long"
                )),
                ErrorKind::UndefinedError => match self.missing_account(person) {
                    Some(name) => Failure::Other(format!(
                        "{} has no `{name}` account in the directory (accounts = {{ {name} = \"…\" }} on their [[people]] entry, or [directory.attributes] accounts from LDAP)",
                        person.id
                    )),
                    None => Failure::Other(describe(&e)),
                },
                _ => Failure::Other(describe(&e)),
            })?;
        if rendered.len() > MAX_OUTPUT {
            return Err(Failure::OverBudget(format!(
                "the template printed more than {} KiB; a login or a DN is far shorter",
                MAX_OUTPUT / 1024
            )));
        }
        let rendered = rendered.trim();
        if rendered.is_empty() {
            return Err(Failure::Other(
                "the template printed nothing for this person".to_owned(),
            ));
        }
        Ok(rendered.to_owned())
    }
}

impl PersonTemplate {
    /// The first account the template names that `person` does not have.
    fn missing_account(&self, person: &PersonRef) -> Option<&str> {
        self.accounts
            .iter()
            .find(|name| !person.accounts.contains_key(*name))
            .map(String::as_str)
    }
}

/// minijinja's error with its detail, on one line.
fn describe(error: &Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> PersonRef {
        PersonRef {
            id: "alice".into(),
            email: Some("alice.ng@example.com".to_owned()),
            slack: None,
            discord: None,
            accounts: [("github".to_owned(), "alice-ng".to_owned())].into(),
        }
    }

    #[test]
    fn an_account_is_named_by_its_name_and_one_missing_is_said_by_name() {
        let t = PersonTemplate::parse("{{ accounts.github }}", Escape::Plain).unwrap();
        assert_eq!(t.render(&alice()).unwrap(), "alice-ng");
        let mut bob = alice();
        bob.id = "bob".into();
        bob.accounts.clear();
        assert_eq!(
            t.render(&bob).unwrap_err(),
            "bob has no `github` account in the directory (accounts = { github = \"…\" } on their [[people]] entry, or [directory.attributes] accounts from LDAP)"
        );
        let fallback =
            PersonTemplate::parse("{{ accounts.okta | default(email) }}", Escape::Plain).unwrap();
        assert_eq!(fallback.render(&bob).unwrap(), "alice.ng@example.com");
    }

    #[test]
    fn check_renders_a_template_over_accounts_with_a_sample_account() {
        let long = "{% for i in range(100) %}{{ accounts.github }}{{ '-' * 200 }}{% endfor %}";
        let t = PersonTemplate::parse(long, Escape::Plain).unwrap();
        assert!(
            t.check_budget().unwrap_err().contains("more than 16 KiB"),
            "the sample person has a github account, so the loop runs"
        );
    }

    #[test]
    fn a_login_is_the_local_part_of_the_email() {
        let t = PersonTemplate::parse(r#"{{ email | split("@") | first }}"#, Escape::Plain);
        assert_eq!(t.unwrap().render(&alice()).unwrap(), "alice.ng");
    }

    #[test]
    fn a_missing_value_is_an_error_not_the_word_none() {
        let t = PersonTemplate::parse("u_{{ slack }}", Escape::Plain).unwrap();
        let err = t.render(&alice()).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        let t = PersonTemplate::parse("{{ nickname }}", Escape::Plain).unwrap();
        assert!(t.render(&alice()).is_err());
    }

    #[test]
    fn values_are_escaped_for_dns_and_filters_but_the_template_text_is_not() {
        let mut person = alice();
        person.id = "x,ou=admins".into();
        let dn = PersonTemplate::parse("uid={{ id }},ou=people,dc=example", Escape::Dn).unwrap();
        assert_eq!(
            dn.render(&person).unwrap(),
            r"uid=x\2cou\3dadmins,ou=people,dc=example"
        );
        person.email = Some("*)(uid=*".to_owned());
        let filter = PersonTemplate::parse("(mail={{ email }})", Escape::Filter).unwrap();
        assert_eq!(filter.render(&person).unwrap(), r"(mail=\2a\29\28uid=\2a)");
    }

    #[test]
    fn a_template_that_loops_too_long_stops_at_its_budget_and_check_finds_it() {
        let looping = "{% for i in range(100000) %}{% for j in range(100) %}{% endfor %}\
                       {% endfor %}{{ id }}";
        let t = PersonTemplate::parse(looping, Escape::Plain).unwrap();
        let expected = "the template used up its budget of 100000 steps; look for a loop that \
                        runs too long";
        assert_eq!(t.render(&alice()).unwrap_err(), expected);
        assert_eq!(t.check_budget().unwrap_err(), expected);
    }

    #[test]
    fn a_template_that_prints_too_much_is_refused_and_check_finds_it() {
        let long = "{% for i in range(100) %}{{ id }}{{ '-' * 200 }}{% endfor %}";
        let t = PersonTemplate::parse(long, Escape::Plain).unwrap();
        let expected = "the template printed more than 16 KiB; a login or a DN is far shorter";
        assert_eq!(t.render(&alice()).unwrap_err(), expected);
        assert_eq!(t.check_budget().unwrap_err(), expected);
    }

    #[test]
    fn check_passes_a_template_that_only_lacks_a_value_for_some_people() {
        let t = PersonTemplate::parse("u_{{ slack }}", Escape::Plain).unwrap();
        assert!(t.check_budget().is_ok());
    }

    #[test]
    fn a_template_that_does_not_compile_says_why() {
        let err = PersonTemplate::parse("{{ email | split(", Escape::Plain)
            .err()
            .unwrap();
        assert!(err.contains("syntax"), "{err}");
    }
}
