//! Bearer tokens for the admin API, from `[admin]` in gatehouse.toml, and what each may do.
//! Every route under `/api/v1` goes through [`require_token`], which leaves the caller's
//! [`Operator`] in the request's extensions, then through [`require_power`] for the
//! [`Power`] the route needs. A handler that acts "as" a person asks
//! [`Operator::acting_as`], which lets a token act as its own `operator` only, or as
//! anyone with the `impersonate` power, recorded as an impersonation.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;
use crate::config::{AdminConfig, AdminToken, Power};
use crate::domain::audit::Actor;
use crate::domain::ids::PersonId;

const MISSING: &str = "missing bearer token; pass Authorization: Bearer <token> (the CLI reads it from gatehouse.toml [admin])";

/// Who called: the name of the admin token, the person it acts for by default, and what
/// it may do.
#[derive(Clone, Debug)]
pub struct Operator {
    pub token: String,
    pub operator: Option<PersonId>,
    pub powers: BTreeSet<Power>,
}

impl Operator {
    /// Refuses the call unless the token has `power`.
    pub fn may(&self, power: Power) -> Result<(), ApiError> {
        if self.powers.contains(&power) {
            return Ok(());
        }
        let has: Vec<&str> = self.powers.iter().map(|p| p.name()).collect();
        let has = if has.is_empty() {
            "none".to_owned()
        } else {
            has.join(", ")
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the admin token `{}` does not have the `{power}` power (it has: {has}); \
                 add it to the token's `powers` in gatehouse.toml [admin] and reload, or use \
                 a token that has it",
                self.token
            ),
        ))
    }

    /// The audit actor of a call made "as" `person`, or as the token's `operator` when no
    /// one is named. Acting as anyone else is an impersonation: it needs the `impersonate`
    /// power, and the actor says so.
    pub fn acting_as(&self, person: Option<PersonId>) -> Result<Actor, ApiError> {
        let named = person.filter(|p| !p.as_str().trim().is_empty());
        let for_person = match (named, &self.operator) {
            (Some(named), Some(own)) if &named == own => named,
            (Some(named), _) => {
                self.may_impersonate(&named)?;
                return Ok(Actor::Operator {
                    token: self.token.clone(),
                    for_person: named,
                    impersonated: true,
                });
            }
            (None, Some(own)) => own.clone(),
            (None, None) => {
                return Err(ApiError::bad_request(format!(
                    "say who this is done for: add \"as\": \"PERSON\" (the CLI's --as), or set \
                     `operator` on the admin token `{}` in gatehouse.toml",
                    self.token
                )));
            }
        };
        Ok(Actor::Operator {
            token: self.token.clone(),
            for_person,
            impersonated: false,
        })
    }

    fn may_impersonate(&self, named: &PersonId) -> Result<(), ApiError> {
        if self.powers.contains(&Power::Impersonate) {
            return Ok(());
        }
        let whose = match &self.operator {
            Some(own) => format!("acts as its operator `{own}` only"),
            None => "has no `operator`, so it acts as nobody".to_owned(),
        };
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the admin token `{}` {whose}; acting as `{named}` needs the `impersonate` \
                 power in gatehouse.toml [admin] (each use is audited as an impersonation and \
                 alerted to the security channel), or a token whose operator is `{named}`",
                self.token
            ),
        ))
    }
}

/// Middleware: refuses the call unless it carries a known, unexpired admin token.
pub async fn require_token(
    State(state): State<Arc<ApiState>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer)
        .ok_or_else(|| ApiError::unauthorized(MISSING))?;
    let admin = state.admin();
    let operator = authenticate(&admin, presented, state.facade.now())?;
    request.extensions_mut().insert(operator);
    Ok(next.run(request).await)
}

/// Middleware, inside [`require_token`]: refuses the call unless the token has the power
/// the route needs (the middleware's state).
pub async fn require_power(
    State(power): State<Power>,
    Extension(operator): Extension<Operator>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    operator.may(power)?;
    Ok(next.run(request).await)
}

fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Finds the token equal to `presented`. Both sides are hashed first and every token is
/// compared, so that timing reveals neither which token matched nor any token's length.
pub fn authenticate(
    admin: &AdminConfig,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Operator, ApiError> {
    let presented = Sha256::digest(presented.as_bytes());
    let mut found: Option<&AdminToken> = None;
    for token in &admin.tokens {
        let expected = Sha256::digest(token.token.expose().as_bytes());
        let equal: bool = expected.as_slice().ct_eq(presented.as_slice()).into();
        if equal && found.is_none() {
            found = Some(token);
        }
    }
    let token = found.ok_or_else(|| ApiError::unauthorized("invalid token"))?;
    if let Some(expires) = token.expires.filter(|_| token.is_expired_at(now)) {
        return Err(ApiError::unauthorized(format!(
            "the admin token `{}` expired at {}; give it a new `expires` in gatehouse.toml [admin] and reload",
            token.name,
            expires.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    Ok(Operator {
        token: token.name.clone(),
        operator: token.operator.clone(),
        powers: token.powers(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::engine::{Clock, SystemClock};

    fn token(name: &str, secret: &str, expires: Option<DateTime<Utc>>) -> AdminToken {
        AdminToken {
            name: name.to_owned(),
            token: Secret::new(secret),
            expires,
            operator: None,
            powers: None,
        }
    }

    fn operator(own: Option<&str>, powers: &[Power]) -> Operator {
        Operator {
            token: "ops".into(),
            operator: own.map(PersonId::from),
            powers: powers.iter().copied().collect(),
        }
    }

    #[test]
    fn the_scheme_is_bearer_in_any_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn an_expired_token_is_refused_with_its_name_and_date() {
        let now = SystemClock.now();
        let admin = AdminConfig {
            tokens: vec![
                token("ops", "a-token-that-is-long-enough", None),
                token(
                    "old",
                    "another-token-long-enough",
                    Some(now - chrono::TimeDelta::days(1)),
                ),
            ],
        };
        assert_eq!(
            authenticate(&admin, "a-token-that-is-long-enough", now)
                .unwrap()
                .token,
            "ops"
        );
        let err = authenticate(&admin, "another-token-long-enough", now).unwrap_err();
        assert!(
            err.body["error"]
                .as_str()
                .unwrap()
                .contains("`old` expired at")
        );
        let err = authenticate(&admin, "nope", now).unwrap_err();
        assert_eq!(err.body["error"], "invalid token");
    }

    #[test]
    fn a_token_without_powers_has_every_power_but_impersonation() {
        let admin = AdminConfig {
            tokens: vec![token("ops", "a-token-that-is-long-enough", None)],
        };
        let found = authenticate(&admin, "a-token-that-is-long-enough", SystemClock.now()).unwrap();
        assert_eq!(
            found.powers,
            [Power::Read, Power::Request, Power::Decide, Power::Admin].into()
        );
    }

    #[test]
    fn the_operator_is_who_the_call_is_for_unless_told_otherwise() {
        let op = operator(Some("sue"), &Power::ALL);
        let own = op.acting_as(None).unwrap();
        assert_eq!(own.person_id(), Some(&PersonId::from("sue")));
        assert_eq!(own.impersonating_token(), None);
        let named_self = op.acting_as(Some("sue".into())).unwrap();
        assert_eq!(named_self.impersonating_token(), None);
        let other = op.acting_as(Some("bob".into())).unwrap();
        assert_eq!(other.person_id(), Some(&PersonId::from("bob")));
        assert_eq!(other.impersonating_token(), Some("ops"));
        let anonymous = operator(None, &Power::ALL);
        assert!(anonymous.acting_as(None).is_err());
    }

    #[test]
    fn without_impersonate_a_token_acts_as_its_operator_only() {
        let sue = operator(Some("sue"), &Power::DEFAULT);
        assert_eq!(
            sue.acting_as(None).unwrap().person_id(),
            Some(&PersonId::from("sue"))
        );
        let err = sue.acting_as(Some("bob".into())).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert_eq!(
            err.body["error"],
            "the admin token `ops` acts as its operator `sue` only; acting as `bob` needs the \
             `impersonate` power in gatehouse.toml [admin] (each use is audited as an \
             impersonation and alerted to the security channel), or a token whose operator is \
             `bob`"
        );
        let nobody = operator(None, &Power::DEFAULT);
        let err = nobody.acting_as(Some("bob".into())).unwrap_err();
        assert!(
            err.body["error"]
                .as_str()
                .unwrap()
                .starts_with("the admin token `ops` has no `operator`, so it acts as nobody;"),
            "{}",
            err.body
        );
    }

    #[test]
    fn a_missing_power_is_refused_naming_it_and_the_powers_the_token_has() {
        let reader = operator(Some("sue"), &[Power::Read]);
        assert!(reader.may(Power::Read).is_ok());
        let err = reader.may(Power::Decide).unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert_eq!(
            err.body["error"],
            "the admin token `ops` does not have the `decide` power (it has: read); add it to \
             the token's `powers` in gatehouse.toml [admin] and reload, or use a token that has it"
        );
        let powerless = operator(None, &[]);
        let err = powerless.may(Power::Read).unwrap_err();
        assert!(
            err.body["error"]
                .as_str()
                .unwrap()
                .contains("(it has: none)"),
            "{}",
            err.body
        );
    }
}
