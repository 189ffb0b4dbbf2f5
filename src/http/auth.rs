//! Bearer tokens for the admin API, from `[admin]` in gatehouse.toml. Every route under
//! `/api/v1` goes through [`require_token`]; a handler learns who called from the
//! [`Operator`] it leaves in the request's extensions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;
use crate::config::{AdminConfig, AdminToken};
use crate::domain::audit::Actor;
use crate::domain::ids::PersonId;
use crate::store::Store;

const MISSING: &str = "missing bearer token; pass Authorization: Bearer <token> (the CLI reads it from gatehouse.toml [admin])";

/// Who called: the name of the admin token, and the person it acts for by default.
#[derive(Clone, Debug)]
pub struct Operator {
    pub token: String,
    pub operator: Option<PersonId>,
}

impl Operator {
    /// The audit actor of a call made "as" `person` (or as the token's `operator`).
    pub fn acting_as(&self, person: Option<PersonId>) -> Result<Actor, ApiError> {
        let for_person = person
            .filter(|p| !p.as_str().trim().is_empty())
            .or_else(|| self.operator.clone())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "say who this is done for: add \"as\": \"PERSON\" (the CLI's --as), or set \
                     `operator` on the admin token `{}` in gatehouse.toml",
                    self.token
                ))
            })?;
        Ok(Actor::Operator {
            token: self.token.clone(),
            for_person,
        })
    }
}

/// Middleware: refuses the call unless it carries a known, unexpired admin token.
pub async fn require_token<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
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
    let operator = authenticate(&admin, presented, state.engine.now())?;
    request.extensions_mut().insert(operator);
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn token(name: &str, secret: &str, expires: Option<DateTime<Utc>>) -> AdminToken {
        AdminToken {
            name: name.to_owned(),
            token: Secret::new(secret),
            expires,
            operator: None,
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
        let now = Utc::now();
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
    fn the_operator_is_who_the_call_is_for_unless_told_otherwise() {
        let op = Operator {
            token: "ops".into(),
            operator: Some("sue".into()),
        };
        assert_eq!(
            op.acting_as(None).unwrap().person_id(),
            Some(&PersonId::from("sue"))
        );
        assert_eq!(
            op.acting_as(Some("bob".into())).unwrap().person_id(),
            Some(&PersonId::from("bob"))
        );
        let anonymous = Operator {
            token: "ops".into(),
            operator: None,
        };
        assert!(anonymous.acting_as(None).is_err());
    }
}
