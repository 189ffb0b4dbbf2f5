//! Who is who: people, groups, the manager chain and platform ids, read from directory.toml.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use super::ids::{GroupId, PersonId};

/// A chat platform a person can be reached on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Slack,
    Discord,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub email: Option<String>,
    pub manager: Option<PersonId>,
    pub department: Option<String>,
    pub title: Option<String>,
    /// Every group the person is in, whether listed on the person or on the group.
    pub groups: BTreeSet<GroupId>,
    pub slack: Option<String>,
    pub discord: Option<String>,
    /// Where the person receives cards and DMs.
    pub notify: Vec<Platform>,
    /// false = a leaver: grants revoked, pending requests cancelled.
    pub active: bool,
    /// The person's accounts at other systems, by a name connectors refer to
    /// (`github` → `octocat`): ids that do not follow from the email.
    pub accounts: Accounts,
}

/// A person's accounts at other systems, by name (`github` → `octocat`), as directory.toml
/// or LDAP give them. Names are lowercase words, so that a connector's template can say
/// `{{ accounts.github }}`; values are never blank.
pub type Accounts = BTreeMap<String, String>;

/// Whether `name` may name an account: a lowercase letter, then lowercase letters, digits or
/// `_` (what a template can write after `accounts.`).
pub fn is_account_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Person {
    /// The person's id on `platform`, if they have one.
    pub fn id_on(&self, platform: Platform) -> Option<&str> {
        match platform {
            Platform::Slack => self.slack.as_deref(),
            Platform::Discord => self.discord.as_deref(),
        }
    }

    /// Whether this person's cards and DMs go to `platform`, given the platforms that are
    /// running: to each of their `notify` platforms that runs and knows them; when none of
    /// those runs, to every running platform that knows them, so that nobody misses a
    /// card because the platform they chose is switched off.
    pub fn reached_on(&self, platform: Platform, running: &[Platform]) -> bool {
        let known = |p: &Platform| running.contains(p) && self.id_on(*p).is_some();
        if !known(&platform) {
            return false;
        }
        let chosen = self.notify.iter().any(known);
        !chosen || self.notify.contains(&platform)
    }

    pub fn in_group(&self, group: &GroupId) -> bool {
        self.groups.contains(group)
    }

    pub fn in_department(&self, department: &str) -> bool {
        self.department
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(department))
    }
}

/// The directory as loaded: every lookup the rest of Gatehouse needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    people: BTreeMap<PersonId, Person>,
    groups: BTreeMap<GroupId, BTreeSet<PersonId>>,
    /// Chat platform ids → people, so that mapping the sender of every Slack or Discord
    /// request does not walk the whole directory. Built from `people` once it is complete.
    slack_ids: BTreeMap<String, PersonId>,
    discord_ids: BTreeMap<String, PersonId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    #[serde(default)]
    people: Vec<RawPerson>,
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    id: Spanned<String>,
    name: Option<String>,
    email: Option<String>,
    manager: Option<Spanned<String>>,
    department: Option<String>,
    title: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    slack: Option<String>,
    discord: Option<String>,
    notify: Option<Vec<Platform>>,
    #[serde(default = "yes")]
    active: bool,
    accounts: Option<Spanned<BTreeMap<String, String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: Spanned<String>,
    #[serde(default)]
    members: Vec<Spanned<String>>,
}

fn yes() -> bool {
    true
}

/// A person's `accounts` table, each value trimmed; a name a template cannot write or a
/// blank value is a problem at the table's line.
fn accounts(
    source: &Source<'_>,
    person: &PersonId,
    table: Option<&Spanned<BTreeMap<String, String>>>,
    problems: &mut Vec<Diagnostic>,
) -> Accounts {
    let Some(table) = table else {
        return Accounts::new();
    };
    let mut accounts = Accounts::new();
    for (name, value) in table.get_ref() {
        let problem = if !is_account_name(name) {
            Some((
                format!("`{person}` has an account named `{name}`"),
                "name accounts with lowercase letters, digits and _ (github, okta_id), as templates write them: {{ accounts.github }}",
            ))
        } else if value.trim().is_empty() {
            Some((
                format!("`{person}` has an empty `{name}` account"),
                "give the id they have there, or leave the account out",
            ))
        } else {
            None
        };
        match problem {
            Some((message, help)) => problems
                .push(Diagnostic::error(source, Some(table.span()), message).with_help(help)),
            None => {
                accounts.insert(name.clone(), value.trim().to_owned());
            }
        }
    }
    accounts
}

/// Every table directory.toml may hold and the keys each accepts, read from the types that
/// parse it (see [`crate::domain::keys`]); docs/configuration.md is checked against it.
pub fn accepted_tables() -> Vec<crate::domain::keys::Table> {
    crate::domain::keys::tables_of::<RawDirectory>()
}

impl Directory {
    /// Reads directory.toml, reporting every problem at once.
    pub fn parse(source: &Source<'_>) -> Result<Self, Diagnostics> {
        let raw: RawDirectory =
            toml::from_str(source.text).map_err(|e| Diagnostics(vec![source.toml_error(&e)]))?;
        let mut problems = Vec::new();
        let mut directory = Directory::default();

        for p in &raw.people {
            let id = PersonId::new(p.id.get_ref().trim());
            if id.as_str().is_empty() {
                problems.push(Diagnostic::error(
                    source,
                    Some(p.id.span()),
                    "a person has an empty id",
                ));
                continue;
            }
            if directory.people.contains_key(&id) {
                problems.push(
                    Diagnostic::error(
                        source,
                        Some(p.id.span()),
                        format!("person `{id}` is listed twice"),
                    )
                    .with_help("keep one [[people]] entry per id"),
                );
                continue;
            }
            let notify = p.notify.clone().unwrap_or_else(|| {
                let mut platforms = Vec::new();
                if p.slack.is_some() {
                    platforms.push(Platform::Slack);
                }
                if p.discord.is_some() {
                    platforms.push(Platform::Discord);
                }
                platforms
            });
            let person = Person {
                name: p.name.clone().unwrap_or_else(|| id.to_string()),
                email: p.email.as_ref().map(|e| e.trim().to_owned()),
                manager: p
                    .manager
                    .as_ref()
                    .map(|m| PersonId::new(m.get_ref().trim())),
                department: p.department.clone(),
                title: p.title.clone(),
                groups: p.groups.iter().map(|g| GroupId::new(g.trim())).collect(),
                slack: p.slack.clone(),
                discord: p.discord.clone(),
                notify,
                active: p.active,
                accounts: accounts(source, &id, p.accounts.as_ref(), &mut problems),
                id: id.clone(),
            };
            directory.people.insert(id, person);
        }

        for g in &raw.groups {
            let group = GroupId::new(g.id.get_ref().trim());
            let mut members = BTreeSet::new();
            for m in &g.members {
                let person = PersonId::new(m.get_ref().trim());
                if directory.people.contains_key(&person) {
                    members.insert(person);
                } else {
                    let mut d = Diagnostic::error(
                        source,
                        Some(m.span()),
                        format!("group `{group}` lists `{person}`, who is not in [[people]]"),
                    );
                    if let Some(help) = did_you_mean(
                        person.as_str(),
                        directory.people.keys().map(PersonId::as_str),
                    ) {
                        d = d.with_help(help);
                    }
                    problems.push(d);
                }
            }
            directory.groups.entry(group).or_default().extend(members);
        }
        let memberships: Vec<(GroupId, PersonId)> = directory
            .people
            .values()
            .flat_map(|p| p.groups.iter().map(|g| (g.clone(), p.id.clone())))
            .collect();
        for (group, person) in memberships {
            directory.groups.entry(group).or_default().insert(person);
        }
        let declared: Vec<(GroupId, PersonId)> = directory
            .groups
            .iter()
            .flat_map(|(g, members)| members.iter().map(|m| (g.clone(), m.clone())))
            .collect();
        for (group, person) in declared {
            if let Some(p) = directory.people.get_mut(&person) {
                p.groups.insert(group);
            }
        }

        let raw_managers: BTreeMap<&str, &Spanned<String>> = raw
            .people
            .iter()
            .filter_map(|p| p.manager.as_ref().map(|m| (p.id.get_ref().trim(), m)))
            .collect();
        for person in directory.people.values() {
            let Some(manager) = &person.manager else {
                continue;
            };
            let span = raw_managers.get(person.id.as_str()).map(|m| m.span());
            if !directory.people.contains_key(manager) {
                let mut d = Diagnostic::error(
                    source,
                    span.clone(),
                    format!(
                        "`{}` has manager `{manager}`, who is not in [[people]]",
                        person.id
                    ),
                );
                if let Some(help) = did_you_mean(
                    manager.as_str(),
                    directory.people.keys().map(PersonId::as_str),
                ) {
                    d = d.with_help(help);
                }
                problems.push(d);
            } else if directory.chain_loops(&person.id) {
                problems.push(
                    Diagnostic::error(
                        source,
                        span,
                        format!("the manager chain of `{}` loops back on itself", person.id),
                    )
                    .with_help("a manager chain must end with someone who has no manager"),
                );
            }
        }

        if problems.is_empty() {
            directory.index_platform_ids();
            Ok(directory)
        } else {
            Err(Diagnostics(problems))
        }
    }

    /// Builds a directory from people and extra group members, for tests and other sources.
    pub fn from_people(people: impl IntoIterator<Item = Person>) -> Self {
        let mut directory = Directory::default();
        for person in people {
            for g in &person.groups {
                directory
                    .groups
                    .entry(g.clone())
                    .or_default()
                    .insert(person.id.clone());
            }
            directory.people.insert(person.id.clone(), person);
        }
        directory.index_platform_ids();
        directory
    }

    /// Fills the platform id indexes; like a walk in id order, the first person wins when two
    /// share an id.
    fn index_platform_ids(&mut self) {
        for person in self.people.values() {
            if let Some(slack) = &person.slack {
                self.slack_ids
                    .entry(slack.clone())
                    .or_insert_with(|| person.id.clone());
            }
            if let Some(discord) = &person.discord {
                self.discord_ids
                    .entry(discord.clone())
                    .or_insert_with(|| person.id.clone());
            }
        }
    }

    fn chain_loops(&self, start: &PersonId) -> bool {
        let mut seen = BTreeSet::new();
        let mut current = Some(start);
        while let Some(id) = current {
            if !seen.insert(id) {
                return true;
            }
            current = self.people.get(id).and_then(|p| p.manager.as_ref());
        }
        false
    }

    pub fn person(&self, id: &PersonId) -> Option<&Person> {
        self.people.get(id)
    }

    /// The active person with this id, or nobody.
    pub fn active_person(&self, id: &PersonId) -> Option<&Person> {
        self.people.get(id).filter(|p| p.active)
    }

    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.people.values()
    }

    pub fn person_ids(&self) -> impl Iterator<Item = &str> {
        self.people.keys().map(PersonId::as_str)
    }

    pub fn group_exists(&self, group: &GroupId) -> bool {
        self.groups.contains_key(group)
    }

    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(GroupId::as_str)
    }

    pub fn departments(&self) -> BTreeSet<&str> {
        self.people
            .values()
            .filter_map(|p| p.department.as_deref())
            .collect()
    }

    /// The active members of a group.
    pub fn members(&self, group: &GroupId) -> impl Iterator<Item = &Person> {
        self.groups
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|id| self.active_person(id))
    }

    /// The manager `levels` steps up the chain (1 = direct manager, 2 = skip level).
    /// Inactive managers are skipped over, so a leaver never blocks a route.
    pub fn manager_of(&self, person: &PersonId, levels: u8) -> Option<&Person> {
        let mut current = self.people.get(person)?;
        let mut climbed = 0;
        let mut hops = 0;
        while climbed < levels {
            let manager = self.people.get(current.manager.as_ref()?)?;
            hops += 1;
            if hops > self.people.len() {
                return None;
            }
            current = manager;
            if manager.active {
                climbed += 1;
            }
        }
        Some(current)
    }

    pub fn by_slack(&self, user: &str) -> Option<&Person> {
        self.slack_ids.get(user).and_then(|id| self.people.get(id))
    }

    pub fn by_discord(&self, user: &str) -> Option<&Person> {
        self.discord_ids
            .get(user)
            .and_then(|id| self.people.get(id))
    }

    pub fn by_email(&self, email: &str) -> Option<&Person> {
        self.people.values().find(|p| {
            p.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email.trim()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECTORY: &str = r#"
[[people]]
id = "alice"
name = "Alice Ng"
email = "alice@example.com"
manager = "bob"
department = "engineering"
groups = ["oncall"]
slack = "U01ALICE"

[[people]]
id = "bob"
manager = "carol"
discord = "42"

[[people]]
id = "carol"
active = true

[[people]]
id = "dave"
manager = "bob"
active = false

[[groups]]
id = "security"
members = ["carol", "dave"]
"#;

    fn directory() -> Directory {
        Directory::parse(&Source::new("directory.toml", DIRECTORY)).unwrap()
    }

    #[test]
    fn the_manager_chain_climbs_skip_levels() {
        let d = directory();
        let alice = PersonId::from("alice");
        assert_eq!(d.manager_of(&alice, 1).unwrap().id.as_str(), "bob");
        assert_eq!(d.manager_of(&alice, 2).unwrap().id.as_str(), "carol");
        assert!(d.manager_of(&alice, 3).is_none());
    }

    #[test]
    fn groups_join_members_listed_on_either_side() {
        let d = directory();
        let carol = d.person(&"carol".into()).unwrap();
        assert!(carol.in_group(&"security".into()));
        let oncall: Vec<_> = d.members(&"oncall".into()).map(|p| p.id.as_str()).collect();
        assert_eq!(oncall, ["alice"]);
    }

    #[test]
    fn leavers_are_not_members_of_anything() {
        let d = directory();
        let security: Vec<_> = d
            .members(&"security".into())
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(security, ["carol"]);
        assert!(d.active_person(&"dave".into()).is_none());
    }

    #[test]
    fn cards_go_where_the_person_chose_among_the_platforms_that_run() {
        let both = [Platform::Slack, Platform::Discord];
        let mut p = Person {
            id: "pat".into(),
            name: "Pat".into(),
            email: None,
            manager: None,
            department: None,
            title: None,
            groups: BTreeSet::new(),
            slack: Some("U1".into()),
            discord: Some("42".into()),
            notify: vec![Platform::Discord],
            active: true,
            accounts: Accounts::new(),
        };
        assert!(p.reached_on(Platform::Discord, &both));
        assert!(!p.reached_on(Platform::Slack, &both));
        // Discord is off: Slack, which knows Pat, takes over rather than nobody.
        assert!(p.reached_on(Platform::Slack, &[Platform::Slack]));
        p.notify = both.to_vec();
        assert!(p.reached_on(Platform::Slack, &both) && p.reached_on(Platform::Discord, &both));
        p.slack = None;
        assert!(!p.reached_on(Platform::Slack, &both), "no id, no message");
        assert_eq!(p.id_on(Platform::Discord), Some("42"));
    }

    #[test]
    fn notify_defaults_to_the_platforms_a_person_has_ids_on() {
        let d = directory();
        assert_eq!(d.person(&"alice".into()).unwrap().notify, [Platform::Slack]);
        assert_eq!(d.person(&"bob".into()).unwrap().notify, [Platform::Discord]);
    }

    #[test]
    fn people_are_found_by_platform_id_and_email() {
        let d = directory();
        assert_eq!(d.by_slack("U01ALICE").unwrap().id.as_str(), "alice");
        assert_eq!(d.by_discord("42").unwrap().id.as_str(), "bob");
        assert_eq!(
            d.by_email("ALICE@example.com").unwrap().id.as_str(),
            "alice"
        );
        assert!(d.by_slack("U0NOBODY").is_none() && d.by_discord("7").is_none());
    }

    #[test]
    fn a_platform_id_two_people_share_finds_the_first_by_id() {
        let d = directory();
        let mut people: Vec<Person> = ["zed", "amy"]
            .iter()
            .map(|id| {
                let mut p = d.person(&"alice".into()).unwrap().clone();
                p.id = PersonId::new(*id);
                p
            })
            .collect();
        people[1].slack = Some("U01ALICE".into());
        let shared = Directory::from_people(people);
        assert_eq!(shared.by_slack("U01ALICE").unwrap().id.as_str(), "amy");
    }

    #[test]
    fn an_unknown_manager_is_reported_at_its_line_with_a_suggestion() {
        let text = "[[people]]\nid = \"bob\"\n\n[[people]]\nid = \"alice\"\nmanager = \"bbo\"\n";
        let err = Directory::parse(&Source::new("directory.toml", text)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "directory.toml:6: error: `alice` has manager `bbo`, who is not in [[people]]\n  help: did you mean `bob`?"
        );
    }

    #[test]
    fn a_manager_loop_is_refused() {
        let text =
            "[[people]]\nid = \"a\"\nmanager = \"b\"\n[[people]]\nid = \"b\"\nmanager = \"a\"\n";
        let err = Directory::parse(&Source::new("directory.toml", text)).unwrap_err();
        assert!(err.to_string().contains("loops back"), "{err}");
    }

    #[test]
    fn malformed_toml_points_at_the_line() {
        let text = "[[people]]\nid = \"a\"\nname = \n";
        let err = Directory::parse(&Source::new("directory.toml", text)).unwrap_err();
        assert!(
            err.to_string().starts_with("directory.toml:3: error:"),
            "{err}"
        );
    }

    #[test]
    fn accounts_at_other_systems_are_read_by_name_and_trimmed() {
        let text =
            "[[people]]\nid = \"a\"\naccounts = { github = \" octocat \", okta_id = \"00u1\" }\n";
        let d = Directory::parse(&Source::new("directory.toml", text)).unwrap();
        let a = d.person(&"a".into()).unwrap();
        assert_eq!(a.accounts["github"], "octocat");
        assert_eq!(a.accounts["okta_id"], "00u1");
        assert!(d.person(&"a".into()).is_some_and(|p| p.accounts.len() == 2));
    }

    #[test]
    fn an_account_a_template_cannot_name_or_a_blank_one_is_refused_at_its_line() {
        let text = "[[people]]\nid = \"a\"\naccounts = { GitHub = \"octocat\" }\n\n[[people]]\nid = \"b\"\naccounts = { github = \" \" }\n";
        let err = Directory::parse(&Source::new("directory.toml", text))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("directory.toml:3: error: `a` has an account named `GitHub`"),
            "{err}"
        );
        assert!(err.contains("{{ accounts.github }}"), "{err}");
        assert!(
            err.contains("directory.toml:7: error: `b` has an empty `github` account"),
            "{err}"
        );
    }

    #[test]
    fn account_names_are_what_a_template_can_write() {
        for name in ["github", "okta_id", "g2"] {
            assert!(is_account_name(name), "{name}");
        }
        for name in ["", "GitHub", "2fa", "aws-sso", "_x", "git hub"] {
            assert!(!is_account_name(name), "{name}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_rather_than_ignored() {
        let text = "[[people]]\nid = \"a\"\nmanger = \"b\"\n";
        let err = Directory::parse(&Source::new("directory.toml", text)).unwrap_err();
        assert!(err.to_string().contains("manger"), "{err}");
    }
}
