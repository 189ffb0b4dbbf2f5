//! Who a policy line names: subjects (for eligibility, owners and admins) and approver
//! selectors (for stages), both written as short strings like `group:security`.

use std::fmt;

use serde::Serialize;

use crate::domain::directory::{Directory, Person};
use crate::domain::ids::{GroupId, PersonId};

/// A set of people named in policy: `person:carol` (or just `carol`), `group:dba`,
/// `department:engineering`, or `everyone`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Subject {
    Everyone,
    Person(PersonId),
    Group(GroupId),
    Department(String),
}

impl Subject {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let subject = match text.split_once(':') {
            None if text == "everyone" || text == "*" => Subject::Everyone,
            None => Subject::Person(PersonId::new(text)),
            Some(("person", id)) => Subject::Person(PersonId::new(id)),
            Some(("group", id)) => Subject::Group(GroupId::new(id)),
            Some(("department", id)) => Subject::Department(id.to_owned()),
            Some((kind, _)) => {
                return Err(format!(
                    "`{text}`: `{kind}:` is not a kind of subject; write person:ID, group:ID, department:NAME or everyone"
                ));
            }
        };
        if matches!(&subject, Subject::Person(p) if p.as_str().is_empty())
            || matches!(&subject, Subject::Group(g) if g.as_str().is_empty())
            || matches!(&subject, Subject::Department(d) if d.is_empty())
        {
            return Err(format!(
                "`{text}` names nobody; write person:ID, group:ID or department:NAME"
            ));
        }
        Ok(subject)
    }

    pub fn includes(&self, person: &Person) -> bool {
        match self {
            Subject::Everyone => true,
            Subject::Person(id) => &person.id == id,
            Subject::Group(group) => person.in_group(group),
            Subject::Department(department) => person.in_department(department),
        }
    }

    /// The active people this subject names.
    pub fn resolve<'d>(&self, directory: &'d Directory) -> Vec<&'d Person> {
        directory
            .people()
            .filter(|p| p.active && self.includes(p))
            .collect()
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Everyone => f.write_str("everyone"),
            Subject::Person(id) => write!(f, "person:{id}"),
            Subject::Group(id) => write!(f, "group:{id}"),
            Subject::Department(d) => write!(f, "department:{d}"),
        }
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> String {
        s.to_string()
    }
}

/// Who approves a stage: `manager`, `manager:2` (skip level), `owners`, `group:ID`, `person:ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum ApproverSelector {
    Manager { level: u8 },
    Owners,
    Group(GroupId),
    Person(PersonId),
}

impl ApproverSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text.split_once(':') {
            None if text == "manager" => Ok(ApproverSelector::Manager { level: 1 }),
            None if text == "owners" => Ok(ApproverSelector::Owners),
            Some(("manager", level)) => match level.parse::<u8>() {
                Ok(level @ 1..=9) => Ok(ApproverSelector::Manager { level }),
                _ => Err(format!(
                    "`{text}`: the manager level must be 1 to 9 (manager:2 is the skip-level manager)"
                )),
            },
            Some(("group", id)) if !id.is_empty() => Ok(ApproverSelector::Group(GroupId::new(id))),
            Some(("person", id)) if !id.is_empty() => {
                Ok(ApproverSelector::Person(PersonId::new(id)))
            }
            _ => Err(format!(
                "`{text}` is not an approver; write manager, manager:2, owners, group:ID or person:ID"
            )),
        }
    }

    /// A few words for messages: "the manager", "the owners", "group security".
    pub fn describe(&self) -> String {
        match self {
            ApproverSelector::Manager { level: 1 } => "the manager".to_owned(),
            ApproverSelector::Manager { level } => format!("the level-{level} manager"),
            ApproverSelector::Owners => "the resource owners".to_owned(),
            ApproverSelector::Group(g) => format!("group {g}"),
            ApproverSelector::Person(p) => p.to_string(),
        }
    }
}

impl fmt::Display for ApproverSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApproverSelector::Manager { level: 1 } => f.write_str("manager"),
            ApproverSelector::Manager { level } => write!(f, "manager:{level}"),
            ApproverSelector::Owners => f.write_str("owners"),
            ApproverSelector::Group(g) => write!(f, "group:{g}"),
            ApproverSelector::Person(p) => write!(f, "person:{p}"),
        }
    }
}

impl From<ApproverSelector> for String {
    fn from(s: ApproverSelector) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_read_as_written_in_policy() {
        assert_eq!(
            ApproverSelector::parse("manager"),
            Ok(ApproverSelector::Manager { level: 1 })
        );
        assert_eq!(
            ApproverSelector::parse("manager:2"),
            Ok(ApproverSelector::Manager { level: 2 })
        );
        assert_eq!(
            ApproverSelector::parse("owners"),
            Ok(ApproverSelector::Owners)
        );
        assert_eq!(
            ApproverSelector::parse("group:security"),
            Ok(ApproverSelector::Group("security".into()))
        );
        assert_eq!(
            ApproverSelector::parse("person:carol"),
            Ok(ApproverSelector::Person("carol".into()))
        );
        assert!(ApproverSelector::parse("managers").is_err());
        assert!(ApproverSelector::parse("manager:0").is_err());
        assert!(ApproverSelector::parse("group:").is_err());
    }

    #[test]
    fn a_bare_subject_is_a_person() {
        assert_eq!(Subject::parse("carol"), Ok(Subject::Person("carol".into())));
        assert_eq!(
            Subject::parse("department:engineering"),
            Ok(Subject::Department("engineering".into()))
        );
        assert!(Subject::parse("team:x").unwrap_err().contains("group:ID"));
    }
}
