//! The `ldap` connector: adds the person's entry to a group (`member` of a groupOfNames, or
//! `uniqueMember` of a groupOfUniqueNames: `member_attribute`) and removes it.
//!
//! **Which group.** The connector's `roles` table maps each Gatehouse role id to a group DN;
//! a role missing from it is a permanent failure. **Whose DN.** Either `user_dn`, a template
//! (`uid={{ email | split("@") | first }},ou=people,dc=example,dc=com`), or a search:
//! `user_filter` (`(mail={{ email }})`) under `user_base_dn`, which must find exactly one
//! entry. Values printed into either are escaped, so they cannot change the DN or the filter.
//! A grant needs the entry to exist — a server takes a member value that names nobody, and
//! whoever is created with that DN later would inherit the access — so a template's DN is
//! looked up before it is added. Undoing a failed grant ([`ConnectorCall::undo`]) for a
//! person with no entry succeeds: nothing can have been added for them.
//!
//! **Many at once.** Revocations due together go over one connection, and each group loses
//! all of its leaving members in one modify; when the server refuses that modify (one of
//! them was no longer a member, or the group would be left empty), that group's members are
//! removed one by one, each with its own answer.
//!
//! **Idempotent.** Adding a member already there (attributeOrValueExists) and removing one
//! not there (noSuchAttribute) are successes. Busy or unavailable servers, lost connections,
//! timeouts and refused credentials (a password being rotated) are transient; everything
//! else (no such group, no access, a schema that refuses removing a groupOfNames' last
//! member) is permanent.

use std::collections::{BTreeMap, HashSet};

use ldap3::{Mod, Scope};

use super::template::{Escape, PersonTemplate};
use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
    check_action,
};
use crate::config::ConnectorConfig;
use crate::domain::ids::{ConnectorId, RoleId};
use crate::ldap::client::{LdapFailure, LdapServer};

const ATTRIBUTE_OR_VALUE_EXISTS: u32 = 20;
const NO_SUCH_ATTRIBUTE: u32 = 16;
const OBJECT_CLASS_VIOLATION: u32 = 65;
const NO_SUCH_OBJECT: u32 = 32;
/// How many revocations one connection takes, removed from each group in one modify.
const REVOKE_BATCH: usize = 64;

/// How the person's DN is found.
enum UserDn {
    Template(PersonTemplate),
    Search {
        base: String,
        filter: PersonTemplate,
    },
}

pub struct LdapConnector {
    id: ConnectorId,
    server: LdapServer,
    member_attribute: String,
    roles: BTreeMap<RoleId, String>,
    user: UserDn,
}

impl LdapConnector {
    pub(super) fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorSetupError> {
        let id = config.id.clone();
        let missing = |key, example| ConnectorSetupError::MissingKey {
            id: id.clone(),
            kind: "ldap",
            key,
            example,
        };
        let invalid = |key, reason: String| ConnectorSetupError::Invalid {
            id: id.clone(),
            key,
            reason,
        };
        let url = config
            .url
            .clone()
            .ok_or_else(|| missing("url", "url = \"ldaps://ldap.example.com\""))?;
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            return Err(invalid(
                "url",
                format!("`{url}` is not ldap:// or ldaps://"),
            ));
        }
        if config.roles.is_empty() {
            return Err(missing(
                "roles",
                "roles = { member = \"cn=vpn,ou=groups,dc=example,dc=com\" } (role id = group DN)",
            ));
        }
        let user = match (&config.user_dn, &config.user_base_dn, &config.user_filter) {
            (Some(dn), None, None) => UserDn::Template(
                PersonTemplate::parse(dn, Escape::Dn)
                    .map_err(|e| invalid("user_dn", format!("is not a template: {e}")))?,
            ),
            (None, Some(base), Some(filter)) => UserDn::Search {
                base: base.clone(),
                filter: PersonTemplate::parse(filter, Escape::Filter)
                    .map_err(|e| invalid("user_filter", format!("is not a template: {e}")))?,
            },
            _ => {
                return Err(missing(
                    "way to find the person's DN",
                    "either user_dn = \"uid={{ id }},ou=people,dc=example,dc=com\", or user_base_dn and user_filter = \"(mail={{ email }})\"",
                ));
            }
        };
        Ok(Self {
            server: LdapServer {
                url,
                starttls: config.starttls,
                ca: config.ca.clone(),
                bind_dn: config.bind_dn.clone(),
                bind_password: config.bind_password.clone(),
                timeout: config.timeout.to_std(),
            },
            member_attribute: config
                .member_attribute
                .clone()
                .unwrap_or_else(|| "member".to_owned()),
            roles: config.roles.clone(),
            user,
            id,
        })
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        check_action(&self.id, call, method)?;
        let what = format!("the {} of {}", call.action, call.grant);
        self.server
            .within(self.change(call), &what)
            .await
            .map_err(|failure| self.failed(failure))
    }

    fn failed(&self, failure: LdapFailure) -> ConnectorError {
        let text = format!("ldap `{}`: {failure}", self.id);
        if failure.transient {
            ConnectorError::Transient(format!("{text} (will retry)"))
        } else {
            ConnectorError::Permanent(text)
        }
    }

    /// Revokes `calls` over one connection, with one modify per group that removes all of
    /// its members at once. A modify is all or nothing, and the server refuses all of it when
    /// one value is not there (or the group would be left empty): that group's members are
    /// then removed one by one, so that each gets its own answer.
    async fn revoke_all(
        &self,
        calls: &[ConnectorCall],
    ) -> Result<Vec<Result<Outcome, ConnectorError>>, LdapFailure> {
        let mut results: Vec<Option<Result<Outcome, ConnectorError>>> =
            calls.iter().map(|_| None).collect();
        let mut ldap = self.server.connect().await?;
        // Group DN → (call, member DN).
        let mut by_group: BTreeMap<&str, Vec<(usize, String)>> = BTreeMap::new();
        for (at, call) in calls.iter().enumerate() {
            if let Err(refused) = check_action(&self.id, call, Action::Revoke) {
                results[at] = Some(Err(refused));
                continue;
            }
            let Some(group) = self.roles.get(&call.role) else {
                let failure = LdapFailure::permanent(format!(
                    "role `{}` has no group; add it to this connector's roles table",
                    call.role
                ));
                results[at] = Some(Err(self.failed(failure)));
                continue;
            };
            match self.person_dn(&mut ldap, call).await {
                Ok(Some(dn)) => by_group.entry(group).or_default().push((at, dn)),
                Ok(None) => results[at] = Some(Ok(nothing_to_undo(call, group))),
                Err(failure) => results[at] = Some(Err(self.failed(failure))),
            }
        }
        let attribute = self.member_attribute.as_str();
        for (group, members) in by_group {
            let values: HashSet<&str> = members.iter().map(|(_, dn)| dn.as_str()).collect();
            let together = ldap
                .modify(group, vec![Mod::Delete(attribute, values)])
                .await
                .map_err(|e| LdapFailure::from_ldap(&format!("changing {group}"), e));
            let one_by_one = match together {
                Ok(result) if result.rc == 0 => {
                    for (at, dn) in &members {
                        let detail = format!("removed {dn} from {group}");
                        results[*at] = Some(Ok(Outcome { detail }));
                    }
                    false
                }
                Ok(result) => matches!(result.rc, NO_SUCH_ATTRIBUTE | OBJECT_CLASS_VIOLATION),
                Err(failure) => {
                    let error = self.failed(failure);
                    for (at, _) in &members {
                        results[*at] = Some(Err(error.clone()));
                    }
                    false
                }
            };
            if one_by_one {
                for (at, dn) in &members {
                    let removed = self.modify(&mut ldap, Action::Revoke, group, dn).await;
                    results[*at] = Some(removed.map_err(|failure| self.failed(failure)));
                }
            }
        }
        let _ = ldap.unbind().await;
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(ConnectorError::Transient(format!(
                        "ldap `{}`: a revocation made with others had no answer (will retry)",
                        self.id
                    )))
                })
            })
            .collect())
    }

    async fn change(&self, call: &ConnectorCall) -> Result<Outcome, LdapFailure> {
        let group = self.roles.get(&call.role).ok_or_else(|| {
            LdapFailure::permanent(format!(
                "role `{}` has no group; add it to this connector's roles table",
                call.role
            ))
        })?;
        let mut ldap = self.server.connect().await?;
        let Some(dn) = self.person_dn(&mut ldap, call).await? else {
            let _ = ldap.unbind().await;
            return Ok(nothing_to_undo(call, group));
        };
        let outcome = self.modify(&mut ldap, call.action, group, &dn).await;
        let _ = ldap.unbind().await;
        outcome
    }

    /// Adds `dn` to `group` or removes it, as `action` says.
    async fn modify(
        &self,
        ldap: &mut ldap3::Ldap,
        action: Action,
        group: &str,
        dn: &str,
    ) -> Result<Outcome, LdapFailure> {
        let values = HashSet::from([dn]);
        let attribute = self.member_attribute.as_str();
        let (change, ignored, done) = match action {
            Action::Grant => (
                Mod::Add(attribute, values),
                ATTRIBUTE_OR_VALUE_EXISTS,
                format!("added {dn} to {group}"),
            ),
            Action::Revoke => (
                Mod::Delete(attribute, values),
                NO_SUCH_ATTRIBUTE,
                format!("removed {dn} from {group}"),
            ),
        };
        let result = ldap
            .modify(group, vec![change])
            .await
            .map_err(|e| LdapFailure::from_ldap(&format!("changing {group}"), e))?;
        match result.rc {
            0 => Ok(Outcome { detail: done }),
            rc if rc == ignored => Ok(Outcome {
                detail: format!("{done} (it already was)"),
            }),
            OBJECT_CLASS_VIOLATION if action == Action::Revoke => {
                Err(LdapFailure::permanent(format!(
                    "{group} refused to lose {dn}: {} (a groupOfNames must keep one member; add a placeholder member)",
                    result.text
                )))
            }
            _ => Err(LdapFailure::from_ldap(
                &format!("changing {group}"),
                ldap3::LdapError::LdapResult { result },
            )),
        }
    }

    /// The person's DN; `None` when undoing a failed grant for a person the directory does
    /// not have (nothing can have been added for them).
    async fn person_dn(
        &self,
        ldap: &mut ldap3::Ldap,
        call: &ConnectorCall,
    ) -> Result<Option<String>, LdapFailure> {
        let person = &call.person.id;
        let unnamed =
            |e: String| LdapFailure::permanent(format!("cannot name the entry of {person}: {e}"));
        match &self.user {
            UserDn::Template(template) => {
                let dn = template.render(&call.person).map_err(unnamed)?;
                // A server takes a member value that names no entry, and whoever is created
                // with that DN later would inherit the access: a grant needs the entry. Taking
                // a value away needs no entry (a deleted person's DN is still removed).
                if call.action == Action::Grant {
                    self.entry_exists(ldap, &dn, person).await?;
                }
                Ok(Some(dn))
            }
            UserDn::Search { base, filter } => {
                let filter = filter.render(&call.person).map_err(unnamed)?;
                let (entries, _) = ldap
                    .search(base, Scope::Subtree, &filter, vec!["1.1"])
                    .await
                    .and_then(ldap3::SearchResult::success)
                    .map_err(|e| {
                        LdapFailure::from_ldap(&format!("searching {base} for {filter}"), e)
                    })?;
                match entries.as_slice() {
                    [entry] => Ok(Some(ldap3::SearchEntry::construct(entry.clone()).dn)),
                    [] if call.undo => Ok(None),
                    [] => Err(LdapFailure::permanent(format!(
                        "no entry under {base} matches {filter} (the entry of {person})"
                    ))),
                    more => Err(LdapFailure::permanent(format!(
                        "{} entries under {base} match {filter}; the filter must find only {person}",
                        more.len()
                    ))),
                }
            }
        }
    }

    /// Fails for good unless the entry `dn` exists.
    async fn entry_exists(
        &self,
        ldap: &mut ldap3::Ldap,
        dn: &str,
        person: &crate::domain::ids::PersonId,
    ) -> Result<(), LdapFailure> {
        let what = format!("looking up {dn}");
        let result = ldap
            .search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| LdapFailure::from_ldap(&what, e))?;
        match result.1.rc {
            0 if !result.0.is_empty() => Ok(()),
            0 | NO_SUCH_OBJECT => Err(LdapFailure::permanent(format!(
                "there is no entry {dn} (the entry of {person}); nothing was added, since whoever is created with that DN later would get the access. Create the entry first, or fix the connector's user_dn"
            ))),
            _ => Err(LdapFailure::from_ldap(
                &what,
                ldap3::LdapError::LdapResult { result: result.1 },
            )),
        }
    }
}

/// The outcome of undoing a failed grant for a person with no entry.
fn nothing_to_undo(call: &ConnectorCall, group: &str) -> Outcome {
    Outcome {
        detail: format!(
            "no entry for {}, so nothing was added to {group}: nothing to undo",
            call.person.id
        ),
    }
}

impl Connector for LdapConnector {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Grant))
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Revoke))
    }

    fn revoke_batch(&self) -> usize {
        REVOKE_BATCH
    }

    fn revoke_many<'a>(
        &'a self,
        calls: &'a [ConnectorCall],
    ) -> BoxFuture<'a, Vec<Result<Outcome, ConnectorError>>> {
        Box::pin(async move {
            let what = format!("{} revocations", calls.len());
            match self.server.within(self.revoke_all(calls), &what).await {
                Ok(results) => results,
                Err(failure) => {
                    let error = self.failed(failure);
                    calls.iter().map(|_| Err(error.clone())).collect()
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
