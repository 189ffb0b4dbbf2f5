//! Identifiers. Directory and policy ids are short strings chosen by people; request and
//! grant ids are sequence numbers shown as `AR-1042` and `G-311`, because people type them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }
    };
}

name_id!(
    /// A person of the directory (`alice`).
    PersonId
);
name_id!(
    /// A group of the directory (`security`).
    GroupId
);
name_id!(
    /// A resource of the policy (`prod-db`).
    ResourceId
);
name_id!(
    /// A role of one resource (`admin`).
    RoleId
);
name_id!(
    /// A workflow of the policy.
    WorkflowId
);
name_id!(
    /// A request template of the policy.
    TemplateId
);
name_id!(
    /// A provisioning connector of the runtime config.
    ConnectorId
);

macro_rules! seq_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}-{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            /// Accepts `AR-12`, `ar-12` and a bare `12`, and nothing else that would name
            /// the same record (`AR-012`, `AR-+12`): one id, one spelling.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                let digits = match s.split_once('-') {
                    Some((prefix, digits)) if prefix.eq_ignore_ascii_case($prefix) => digits,
                    Some(_) => return Err(IdError { kind: $prefix, given: s.to_owned() }),
                    None => s,
                };
                sequence_number(digits)
                    .map($name)
                    .ok_or_else(|| IdError { kind: $prefix, given: s.to_owned() })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

seq_id!(
    /// An access request, shown as `AR-12`.
    RequestId,
    "AR"
);
seq_id!(
    /// A grant of access, shown as `G-7`.
    GrantId,
    "G"
);

seq_id!(
    /// An access-review campaign, shown as `RC-3`.
    CampaignId,
    "RC"
);

/// The number of an id as Gatehouse writes it: decimal digits only, without a sign or a
/// leading zero.
fn sequence_number(digits: &str) -> Option<u64> {
    let canonical = digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.is_empty()
        && (digits == "0" || !digits.starts_with('0'));
    if canonical { digits.parse().ok() } else { None }
}

/// A request or grant id that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a valid id; ids look like {kind}-12")]
pub struct IdError {
    kind: &'static str,
    given: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_read_the_way_people_type_them() {
        assert_eq!("AR-12".parse::<RequestId>().unwrap(), RequestId(12));
        assert_eq!("ar-12".parse::<RequestId>().unwrap(), RequestId(12));
        assert_eq!(" 12 ".parse::<RequestId>().unwrap(), RequestId(12));
        assert_eq!(RequestId(12).to_string(), "AR-12");
    }

    #[test]
    fn an_id_has_one_spelling_without_signs_or_leading_zeros() {
        for given in [
            "AR-01", "AR-+1", "+1", "01", "AR--1", "AR-1 2", "AR-", "AR-1e3", "AR-١",
        ] {
            let err = given.parse::<RequestId>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("`{given}` is not a valid id; ids look like AR-12"),
            );
        }
        for given in ["G-07", "G-+7", "007"] {
            assert!(given.parse::<GrantId>().is_err(), "{given}");
        }
        assert_eq!("G-7".parse::<GrantId>().unwrap(), GrantId(7));
        assert_eq!("AR-10".parse::<RequestId>().unwrap(), RequestId(10));
    }

    #[test]
    fn a_grant_id_is_not_a_request_id() {
        let err = "G-7".parse::<RequestId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`G-7` is not a valid id; ids look like AR-12"
        );
        assert_eq!("G-7".parse::<GrantId>().unwrap(), GrantId(7));
    }

    #[test]
    fn ids_serialize_as_their_display_form() {
        let json = serde_json::to_string(&GrantId(311)).unwrap();
        assert_eq!(json, "\"G-311\"");
        assert_eq!(
            serde_json::from_str::<GrantId>(&json).unwrap(),
            GrantId(311)
        );
    }
}
