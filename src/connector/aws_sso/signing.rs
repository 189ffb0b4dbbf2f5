//! AWS Signature Version 4 for a built `reqwest::Request`, by the `aws-sigv4` crate (the AWS
//! SDK's own signer): the method, URL, headers present and the whole body are signed, and
//! `Authorization`, `X-Amz-Date` (and `X-Amz-Security-Token` for temporary credentials) are
//! added.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign as sigv4};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::header::{HeaderName, HeaderValue};

use super::super::http_api::ApiError;
use super::credentials::Credentials;

/// Signs `request` for `service` (the signing name: `sso`, `identitystore`, `sts`) in
/// `region` at `time`.
pub fn sign(
    request: &mut reqwest::Request,
    credentials: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), ApiError> {
    let failed = |e: &dyn std::fmt::Display| {
        ApiError::Permanent(format!("cannot sign the {service} request: {e}"))
    };
    let identity: Identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        credentials.secret_access_key.expose(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_owned()),
        None,
        "gatehouse",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let body = request.body().and_then(|b| b.as_bytes()).unwrap_or(&[]);
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sigv4(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (headers, _params) = instructions.into_parts();
    for header in headers {
        let mut value = HeaderValue::from_str(header.value()).map_err(|e| failed(&e))?;
        // Kept out of debug output: the token is a credential, the signature proves one.
        value.set_sensitive(
            header.sensitive() || matches!(header.name(), "authorization" | "x-amz-security-token"),
        );
        request
            .headers_mut()
            .insert(HeaderName::from_static(header.name()), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Two vectors of the AWS signing test suite (from aws-c-auth, Apache-2.0, as shipped
    //! in the aws-sigv4 crate under aws-signing-test-suite/v4): `post-vanilla` and
    //! `get-vanilla-with-session-token`. They check that the glue above hands the crate the
    //! request as it is and puts its answer on the request; the crate runs the whole suite.
    //! Requests with bodies are checked by moto, which recomputes every signature
    //! (tests/it/aws_sso.rs).

    use super::*;
    use crate::config::Secret;

    fn credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: token.map(Secret::new),
            expires: None,
            source: "the test suite".to_owned(),
        }
    }

    /// 2015-08-30T12:36:00Z, the suite's time.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
    }

    fn signed(method: reqwest::Method, token: Option<&str>) -> reqwest::Request {
        let mut request =
            reqwest::Request::new(method, "https://example.amazonaws.com/".parse().unwrap());
        sign(
            &mut request,
            &credentials(token),
            "us-east-1",
            "service",
            suite_time(),
        )
        .unwrap();
        request
    }

    fn header<'a>(request: &'a reqwest::Request, name: &str) -> &'a str {
        request.headers()[name].to_str().unwrap()
    }

    #[test]
    fn post_vanilla_signs_as_the_suite_says() {
        let request = signed(reqwest::Method::POST, None);
        assert_eq!(header(&request, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&request, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert!(request.headers().get("x-amz-security-token").is_none());
    }

    #[test]
    fn get_vanilla_with_session_token_signs_the_token_too() {
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let request = signed(reqwest::Method::GET, Some(token));
        assert_eq!(header(&request, "x-amz-security-token"), token);
        assert_eq!(
            header(&request, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        );
        assert!(request.headers()["authorization"].is_sensitive());
        assert!(request.headers()["x-amz-security-token"].is_sensitive());
    }
}
