//! LDAP entries → the directory: a pure function, so that every rule of the mapping is
//! tested without a server.
//!
//! - A person's id is their `attributes.id` (`uid`); an entry without one is skipped.
//! - `manager` holds a DN: it becomes the id of the person with that DN, when that person was
//!   read too (else the person has no manager, with a note).
//! - Groups come from a group search (`group_base_dn`: each group's `attributes.group_id`,
//!   members by DN) or, without one, from each person's `memberOf` DNs (the group id is the
//!   value of the DN's first part: `cn=sre,ou=groups,…` → `sre`).
//! - Groups an `ldap` connector manages are left out ([`ManagedGroups`]): their members
//!   follow grants, so reading them back would make every grant and revoke a mover.
//! - A person's accounts at other systems (`[directory.attributes] accounts`) are the first
//!   non-blank value of each account's attribute; a person without one has no such account.
//! - A person is inactive (a leaver) when `inactive_attribute` is present — with one of
//!   `inactive_values`, when some are given. People no longer read at all are leavers too:
//!   [`keep_leavers`] carries them over, inactive, with what the connectors need to find them.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::DirectoryConfig;
use crate::domain::directory::{Directory, Person, Platform};
use crate::domain::ids::{GroupId, PersonId};

/// One entry as read: its DN and its attributes, names lowercased (LDAP names are not
/// case-sensitive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    attrs: BTreeMap<String, Vec<String>>,
}

impl Entry {
    pub fn new(
        dn: impl Into<String>,
        attrs: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> Self {
        let mut entry = Entry {
            dn: dn.into(),
            attrs: BTreeMap::new(),
        };
        for (name, values) in attrs {
            entry
                .attrs
                .entry(name.to_ascii_lowercase())
                .or_default()
                .extend(values);
        }
        entry
    }

    pub fn all(&self, attribute: &str) -> &[String] {
        self.attrs
            .get(&attribute.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// The first non-blank value, trimmed.
    pub fn first(&self, attribute: &str) -> Option<&str> {
        self.all(attribute)
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
    }
}

/// The groups Gatehouse's `ldap` connectors manage (their `roles` tables), by DN. They are
/// not directory groups: their members follow grants, and reading them back as groups would
/// make every grant and revoke a "mover", and let access grant eligibility for more access.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagedGroups(BTreeSet<String>);

impl ManagedGroups {
    pub fn new<D: AsRef<str>>(dns: impl IntoIterator<Item = D>) -> Self {
        Self(
            dns.into_iter()
                .map(|dn| normalize_dn(dn.as_ref()))
                .collect(),
        )
    }

    pub fn contains(&self, dn: &str) -> bool {
        self.0.contains(&normalize_dn(dn))
    }

    /// `groups` without the managed ones, and each person's `member_of` without them.
    pub fn leave_out(
        &self,
        people: &mut [Entry],
        groups: Option<&mut Vec<Entry>>,
        member_of: &str,
    ) {
        if self.0.is_empty() {
            return;
        }
        if let Some(groups) = groups {
            groups.retain(|group| !self.contains(&group.dn));
        }
        let member_of = member_of.to_ascii_lowercase();
        for person in people {
            if let Some(values) = person.attrs.get_mut(&member_of) {
                values.retain(|dn| !self.contains(dn));
            }
        }
    }
}

/// The directory read, and what was left out of it and why.
#[derive(Debug)]
pub struct Mapped {
    pub directory: Directory,
    pub notes: Vec<String>,
}

/// Why what was read cannot be the directory.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "the LDAP search found no people (base_dn {base}, filter {filter}); the old directory stays, since taking it would make everyone a leaver. Check base_dn and filter in [directory]"
    )]
    NoPeople { base: String, filter: String },
}

/// The directory that `people` (and, with a group search, `groups`) make.
pub fn directory_from_entries(
    people: &[Entry],
    groups: Option<&[Entry]>,
    config: &DirectoryConfig,
) -> Result<Mapped, MappingError> {
    let a = &config.attributes;
    let mut notes = Vec::new();
    let mut ids_by_dn: BTreeMap<String, PersonId> = BTreeMap::new();
    let mut kept: Vec<(&Entry, PersonId)> = Vec::new();
    for entry in people {
        let Some(id) = entry.first(&a.id) else {
            notes.push(format!("{} has no {}; skipped", entry.dn, a.id));
            continue;
        };
        let id = PersonId::new(id);
        if kept.iter().any(|(_, seen)| *seen == id) {
            notes.push(format!("{} repeats the id `{id}`; skipped", entry.dn));
            continue;
        }
        ids_by_dn.insert(normalize_dn(&entry.dn), id.clone());
        kept.push((entry, id));
    }
    if kept.is_empty() {
        return Err(MappingError::NoPeople {
            base: config.base_dn.clone().unwrap_or_default(),
            filter: config.filter.clone(),
        });
    }

    let mut members: BTreeMap<PersonId, BTreeSet<GroupId>> = BTreeMap::new();
    match groups {
        Some(groups) => {
            for group in groups {
                let id = group
                    .first(&a.group_id)
                    .map(str::to_owned)
                    .or_else(|| first_rdn_value(&group.dn));
                let Some(id) = id else {
                    notes.push(format!("group {} has no {}; skipped", group.dn, a.group_id));
                    continue;
                };
                for attribute in &a.group_members {
                    for dn in group.all(attribute) {
                        if let Some(person) = ids_by_dn.get(&normalize_dn(member_dn(dn))) {
                            members
                                .entry(person.clone())
                                .or_default()
                                .insert(GroupId::new(id.as_str()));
                        }
                    }
                }
            }
        }
        None => {
            for (entry, id) in &kept {
                let groups = entry
                    .all(&a.member_of)
                    .iter()
                    .filter_map(|dn| first_rdn_value(dn));
                members
                    .entry(id.clone())
                    .or_default()
                    .extend(groups.map(GroupId::new));
            }
        }
    }

    let mut directory = Vec::new();
    for (entry, id) in kept {
        let manager = entry.first(&a.manager).and_then(|dn| {
            let found = ids_by_dn.get(&normalize_dn(dn)).cloned();
            if found.is_none() {
                notes.push(format!(
                    "the manager of `{id}`, {dn}, is not among the people read; `{id}` has no manager"
                ));
            }
            found
        });
        let text = |attribute: &str| entry.first(attribute).map(str::to_owned);
        let slack = a.slack.as_deref().and_then(text);
        let discord = a.discord.as_deref().and_then(text);
        let notify = [(Platform::Slack, &slack), (Platform::Discord, &discord)]
            .into_iter()
            .filter(|(_, handle)| handle.is_some())
            .map(|(platform, _)| platform)
            .collect();
        directory.push(Person {
            name: text(&a.name).unwrap_or_else(|| id.to_string()),
            email: text(&a.email),
            manager,
            department: text(&a.department),
            title: text(&a.title),
            groups: members.remove(&id).unwrap_or_default(),
            slack,
            discord,
            notify,
            active: !is_inactive(entry, config),
            accounts: a
                .accounts
                .iter()
                .filter_map(|(name, attribute)| Some((name.clone(), text(attribute)?)))
                .collect(),
            id,
        });
    }
    Ok(Mapped {
        directory: Directory::from_people(directory),
        notes,
    })
}

/// `directory` plus, as inactive, everyone of `previous` it no longer has. A person deleted
/// from LDAP is then a leaver like a deactivated one, and the connectors still know their
/// email and chat ids when they take the access back. They keep no groups, so that a group
/// only leavers were in does not seem to exist.
pub fn keep_leavers(previous: &Directory, directory: Directory) -> Directory {
    let gone: Vec<Person> = previous
        .people()
        .filter(|p| directory.person(&p.id).is_none())
        .map(|p| Person {
            active: false,
            groups: BTreeSet::new(),
            ..p.clone()
        })
        .collect();
    if gone.is_empty() {
        return directory;
    }
    Directory::from_people(directory.people().cloned().chain(gone))
}

fn is_inactive(entry: &Entry, config: &DirectoryConfig) -> bool {
    let Some(attribute) = &config.inactive_attribute else {
        return false;
    };
    let values = entry.all(attribute);
    if config.inactive_values.is_empty() {
        return values.iter().any(|v| !v.trim().is_empty());
    }
    values.iter().any(|v| {
        config
            .inactive_values
            .iter()
            .any(|inactive| inactive.eq_ignore_ascii_case(v.trim()))
    })
}

/// A DN in one spelling: lowercase, no blanks around `,` and `=`, so that the `manager`
/// and `member` values servers and people write match the entries' own DNs.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// `uniqueMember` may carry an optional unique id after `#`: `uid=a,dc=x#'0101'B`.
fn member_dn(value: &str) -> &str {
    match value.rfind("#'") {
        Some(at) if value.ends_with("'B") => &value[..at],
        _ => value,
    }
}

/// `cn=sre,ou=groups,dc=example` → `sre`.
fn first_rdn_value(dn: &str) -> Option<String> {
    let first = dn.split(',').next()?;
    let (_, value) = first.split_once('=')?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests;
