//! `[directory]`: where the people come from. By default from `files.directory`; with
//! `source = "ldap"` from an LDAP server, read again every `sync_every`, each read going
//! through the same joiners / movers / leavers handling as a reload. The LDAP keys are flat
//! so that `GATEHOUSE_DIRECTORY__URL` and friends can override them; only the attribute
//! names live in the nested `[directory.attributes]` table.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::secret::Secret;
use crate::domain::duration::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectorySource {
    /// `files.directory` is the directory.
    #[default]
    File,
    /// LDAP is the directory; `files.directory` is only what Gatehouse starts with.
    Ldap,
}

/// How many people one LDAP read may make leavers at once, unless `max_leavers` says.
pub const DEFAULT_MAX_LEAVERS: usize = 100;
/// What share of the active people (percent) one LDAP read may make leavers at once, unless
/// `max_leavers_percent` says.
pub const DEFAULT_MAX_LEAVERS_PERCENT: u8 = 10;

/// `[directory]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    pub source: DirectorySource,
    /// How often LDAP is read again.
    pub sync_every: Duration,
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    /// Extra CA certificates to trust, as PEM text; usually `ca_file = "…/ca.pem"`.
    pub ca: Option<String>,
    /// Who Gatehouse binds as; anonymous when absent.
    pub bind_dn: Option<String>,
    pub bind_password: Option<Secret>,
    /// Where people are searched (whole subtree).
    pub base_dn: Option<String>,
    /// Which entries under `base_dn` are people.
    pub filter: String,
    /// Where groups are searched; without it, groups come from each person's `memberOf`.
    pub group_base_dn: Option<String>,
    pub group_filter: String,
    /// A person whose entry has this attribute (with one of `inactive_values`, when any are
    /// given) is a leaver. People no longer found at all are leavers too.
    pub inactive_attribute: Option<String>,
    pub inactive_values: Vec<String>,
    /// Bounds connecting, binding and each search.
    pub timeout: Duration,
    /// A read that would make more people leavers at once than this is not applied (and is
    /// logged as an error at every sync until the limit is raised); 0: no limit.
    pub max_leavers: usize,
    /// Nor one that would make more than this share (percent) of the active people leavers,
    /// unless only one person leaves; 0: no limit.
    pub max_leavers_percent: u8,
    pub attributes: LdapAttributes,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            source: DirectorySource::File,
            sync_every: Duration::from_mins(5),
            url: None,
            starttls: false,
            ca: None,
            bind_dn: None,
            bind_password: None,
            base_dn: None,
            filter: "(objectClass=inetOrgPerson)".to_owned(),
            group_base_dn: None,
            group_filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
                .to_owned(),
            inactive_attribute: None,
            inactive_values: Vec::new(),
            timeout: Duration::from_secs(10),
            max_leavers: DEFAULT_MAX_LEAVERS,
            max_leavers_percent: DEFAULT_MAX_LEAVERS_PERCENT,
            attributes: LdapAttributes::default(),
        }
    }
}

/// Whether a reload changed `[directory]`. Every field is named, so that a new one cannot be
/// forgotten here; the password is compared with [`Secret::eq_str`], as every secret is.
impl PartialEq for DirectoryConfig {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            source,
            sync_every,
            url,
            starttls,
            ca,
            bind_dn,
            bind_password,
            base_dn,
            filter,
            group_base_dn,
            group_filter,
            inactive_attribute,
            inactive_values,
            timeout,
            max_leavers,
            max_leavers_percent,
            attributes,
        } = self;
        let same_password = match (bind_password, &other.bind_password) {
            (None, None) => true,
            (Some(mine), Some(theirs)) => mine.eq_str(theirs.expose()),
            _ => false,
        };
        same_password
            && *source == other.source
            && *sync_every == other.sync_every
            && *url == other.url
            && *starttls == other.starttls
            && *ca == other.ca
            && *bind_dn == other.bind_dn
            && *base_dn == other.base_dn
            && *filter == other.filter
            && *group_base_dn == other.group_base_dn
            && *group_filter == other.group_filter
            && *inactive_attribute == other.inactive_attribute
            && *inactive_values == other.inactive_values
            && *timeout == other.timeout
            && *max_leavers == other.max_leavers
            && *max_leavers_percent == other.max_leavers_percent
            && *attributes == other.attributes
    }
}

/// `[directory.attributes]`: which LDAP attribute holds which field of a person.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapAttributes {
    pub id: String,
    pub name: String,
    pub email: String,
    /// A DN, as the standard `manager` attribute holds.
    pub manager: String,
    pub department: String,
    pub title: String,
    pub slack: Option<String>,
    pub discord: Option<String>,
    /// On a person: the DNs of their groups (used without `group_base_dn`).
    pub member_of: String,
    /// On a group: its id.
    pub group_id: String,
    /// On a group: its members' DNs (`member` and `uniqueMember` are both read by default).
    pub group_members: Vec<String>,
    /// A person's accounts at other systems: account name (`github`) → the attribute that
    /// holds it (`githubLogin`).
    pub accounts: BTreeMap<String, String>,
}

impl Default for LdapAttributes {
    fn default() -> Self {
        Self {
            id: "uid".to_owned(),
            name: "cn".to_owned(),
            email: "mail".to_owned(),
            manager: "manager".to_owned(),
            department: "departmentNumber".to_owned(),
            title: "title".to_owned(),
            slack: None,
            discord: None,
            member_of: "memberOf".to_owned(),
            group_id: "cn".to_owned(),
            group_members: vec!["member".to_owned(), "uniqueMember".to_owned()],
            accounts: BTreeMap::new(),
        }
    }
}
