//! What a `github` connector's role stands for, as its `roles` table writes it:
//!
//! - `"@acme/platform"` — membership of team `platform` of organization `acme` (GitHub writes
//!   teams that way in CODEOWNERS and mentions), as a member; `"@acme/platform:maintainer"`
//!   as a maintainer;
//! - `"acme/api:push"` — a direct collaborator of repository `acme/api` with one of the
//!   permissions `pull`, `triage`, `push`, `maintain` or `admin` (no default: the level is
//!   said).
//!
//! Parsed once when the connector is built, and by `gatehouse check`, so a typo shows at its
//! line.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// A role of a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TeamRole {
    Member,
    Maintainer,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Maintainer => "maintainer",
        }
    }

    /// As GitHub answers it; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(TeamRole::Member),
            "maintainer" => Some(TeamRole::Maintainer),
            _ => None,
        }
    }
}

/// A repository permission, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    Pull,
    Triage,
    Push,
    Maintain,
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 5] = [
        Permission::Pull,
        Permission::Triage,
        Permission::Push,
        Permission::Maintain,
        Permission::Admin,
    ];

    /// The name a `PUT …/collaborators/{username}` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Pull => "pull",
            Permission::Triage => "triage",
            Permission::Push => "push",
            Permission::Maintain => "maintain",
            Permission::Admin => "admin",
        }
    }

    /// A permission as a request or an answer names it: the names a PUT takes, or the role
    /// names GitHub answers with (`read` for pull, `write` for push). `None` for `none` and
    /// for custom roles.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pull" | "read" => Some(Permission::Pull),
            "triage" => Some(Permission::Triage),
            "push" | "write" => Some(Permission::Push),
            "maintain" => Some(Permission::Maintain),
            "admin" => Some(Permission::Admin),
            _ => None,
        }
    }
}

/// What one role gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Team {
        org: String,
        slug: String,
        role: TeamRole,
    },
    Repository {
        owner: String,
        repo: String,
        permission: Permission,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Team { org, slug, .. } => write!(f, "team @{org}/{slug}"),
            Target::Repository { owner, repo, .. } => write!(f, "repository {owner}/{repo}"),
        }
    }
}

/// An organization or user login: letters, digits and hyphens, not first, at most 39
/// characters. (GitHub refuses new names with a double or a trailing hyphen, but some old
/// accounts have one.)
static LOGIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$").unwrap());
/// A team slug: lowercase letters, digits, `-` and `_`.
static SLUG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9_-]{1,255}$").unwrap());
/// A repository name: letters, digits, `.`, `-` and `_`, at most 100 characters.
static REPO: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._-]{1,100}$").unwrap());

/// Whether `name` can be a GitHub login (a user's or an organization's).
pub fn is_login(name: &str) -> bool {
    LOGIN.is_match(name)
}

const HOW: &str = "write a team as \"@org/team-slug\" (or \"@org/team-slug:maintainer\") and a repository as \"owner/repo:permission\" with pull, triage, push, maintain or admin";

/// The target `value` writes; the error completes "role `x` …".
pub fn parse(value: &str) -> Result<Target, String> {
    let value = value.trim();
    let (path, level) = match value.split_once(':') {
        Some((path, level)) => (path, Some(level)),
        None => (value, None),
    };
    let Some((owner, name)) = path.trim_start_matches('@').split_once('/') else {
        return Err(format!(
            "`{value}` is neither a team nor a repository; {HOW}"
        ));
    };
    if !is_login(owner) {
        return Err(format!(
            "`{value}`: `{owner}` is not a GitHub organization or user name; {HOW}"
        ));
    }
    if path.starts_with('@') {
        if !SLUG.is_match(name) {
            return Err(format!(
                "`{value}`: `{name}` is not a team slug (lowercase letters, digits, - and _, as in the team's URL); {HOW}"
            ));
        }
        let role = match level {
            None => TeamRole::Member,
            Some(level) => TeamRole::parse(level).ok_or_else(|| {
                format!("`{value}`: a team role is member or maintainer, not `{level}`")
            })?,
        };
        return Ok(Target::Team {
            org: owner.to_owned(),
            slug: name.to_owned(),
            role,
        });
    }
    if !REPO.is_match(name) || name == "." || name == ".." {
        return Err(format!(
            "`{value}`: `{name}` is not a repository name; {HOW}"
        ));
    }
    let Some(level) = level else {
        return Err(format!(
            "`{value}` names a repository without a permission: add one, as in \"{path}:push\" (pull, triage, push, maintain or admin); a team is written \"@org/team-slug\""
        ));
    };
    let permission = Permission::ALL
        .into_iter()
        .find(|p| p.as_str() == level)
        .ok_or_else(|| {
            format!(
                "`{value}`: `{level}` is not a repository permission; use pull, triage, push, maintain or admin"
            )
        })?;
    Ok(Target::Repository {
        owner: owner.to_owned(),
        repo: name.to_owned(),
        permission,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_is_written_at_org_slash_slug_with_an_optional_role() {
        assert_eq!(
            parse("@acme/platform").unwrap(),
            Target::Team {
                org: "acme".into(),
                slug: "platform".into(),
                role: TeamRole::Member
            }
        );
        assert_eq!(
            parse("@acme/on-call_2:maintainer").unwrap(),
            Target::Team {
                org: "acme".into(),
                slug: "on-call_2".into(),
                role: TeamRole::Maintainer
            }
        );
        assert!(
            parse("@acme/platform:owner")
                .unwrap_err()
                .contains("a team role is member or maintainer, not `owner`")
        );
    }

    #[test]
    fn a_repository_is_written_owner_slash_name_with_its_permission() {
        assert_eq!(
            parse("acme/api.rs:maintain").unwrap(),
            Target::Repository {
                owner: "acme".into(),
                repo: "api.rs".into(),
                permission: Permission::Maintain
            }
        );
        let err = parse("acme/api").unwrap_err();
        assert!(err.contains("without a permission"), "{err}");
        assert!(err.contains("\"acme/api:push\""), "{err}");
        assert!(
            parse("acme/api:write")
                .unwrap_err()
                .contains("`write` is not a repository permission")
        );
    }

    #[test]
    fn what_is_neither_is_refused_with_how_to_write_each() {
        for value in [
            "platform",
            "@acme",
            "-acme/api:push",
            "acme/a b:push",
            "@acme/Platform",
        ] {
            let err = parse(value).unwrap_err();
            assert!(err.contains("\"@org/team-slug\""), "{value}: {err}");
        }
        assert!(parse("acme/..:pull").is_err());
    }

    #[test]
    fn logins_are_letters_digits_and_hyphens() {
        for login in ["octocat", "a", "mona-lisa", "x1-2-3", "old--name-"] {
            assert!(is_login(login), "{login}");
        }
        for login in ["", "-a", "alice@example.com", "a/b", "a b", &"a".repeat(40)] {
            assert!(!is_login(login), "{login}");
        }
    }

    #[test]
    fn permissions_are_read_under_their_request_and_answer_names() {
        assert_eq!(Permission::parse("read"), Some(Permission::Pull));
        assert_eq!(Permission::parse("write"), Some(Permission::Push));
        assert_eq!(Permission::parse("none"), None);
        assert!(Permission::Admin > Permission::Maintain);
        assert!(Permission::Triage > Permission::Pull);
    }
}
