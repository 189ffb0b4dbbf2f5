//! The slack-morphism client Gatehouse talks to Slack's Web API with, pointed at
//! `slack.api_url` (Slack itself, or a fake in tests). TLS is the program's one configuration
//! ([`crate::tls::verifying`]): rustls with *ring* and the system's root certificates.
//!
//! Every call has a deadline ([`DEADLINE`]): hyper's client has none, so a call Slack accepted
//! and never answered would wait forever, and hold up everything queued behind it (the outbox
//! delivers a request's cards one at a time). A call past its deadline fails like a dropped
//! connection, which the outbox retries.

use std::time::Duration;

use futures_util::future::BoxFuture;
use hyper_rustls::HttpsConnectorBuilder;
use reqwest::Url;
use slack_morphism::errors::{SlackClientError, SlackClientHttpProtocolError};
use slack_morphism::multipart_form::FileMultipartData;
use slack_morphism::prelude::{
    SlackClient, SlackClientHyperConnector, SlackClientHyperHttpsConnector,
};
use slack_morphism::{
    ClientResult, SlackClientApiCallContext, SlackClientHttpConnector, SlackClientId,
    SlackClientSecret,
};

/// How long one call to Slack's Web API may take before it counts as failed.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The client every Slack call goes through: slack-morphism's, with [`DEADLINE`] on each call.
pub type SlackApiClient = SlackClient<Deadline<SlackClientHyperHttpsConnector>>;

/// Why no client could be built. Raised at start-up, so each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("slack.api_url {0:?} must start with https:// (or http:// for a local fake)")]
    NotHttp(String),
    #[error(
        "no trusted root certificates could be loaded for {0}: install the system's CA certificates (Debian: ca-certificates)"
    )]
    NoRootCertificates(String),
    #[error("TLS could not be set up: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A client whose every call goes to `<api_url>/<method>`, e.g. `https://slack.com/api`.
///
/// Root certificates come from the system. When none can be loaded and `api_url` is plain
/// `http://` (a fake in tests or a local proxy) the client is still built, with an empty trust
/// store, so it can speak plain HTTP but will refuse every HTTPS server; for an `https://` URL
/// the missing roots are an error.
pub fn client(api_url: &str) -> Result<SlackApiClient, ClientError> {
    let api_url = api_url.trim_end_matches('/');
    let plain_http = api_url.starts_with("http://");
    if !plain_http && !api_url.starts_with("https://") {
        return Err(ClientError::NotHttp(api_url.to_owned()));
    }
    if !plain_http && crate::tls::system_roots().is_empty() {
        return Err(ClientError::NoRootCertificates(api_url.to_owned()));
    }
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(crate::tls::verifying(None)?)
        .https_or_http()
        .enable_http1()
        .build();
    let calls = SlackClientHyperConnector::with_connector(connector).with_slack_api_url(api_url);
    Ok(SlackClient::new(Deadline {
        inner: calls,
        within: DEADLINE,
    }))
}

/// A slack-morphism connector whose every call fails once `within` has passed without an
/// answer.
#[derive(Clone, Debug)]
pub struct Deadline<C> {
    inner: C,
    within: Duration,
}

/// Why a call failed: no answer in time.
struct NoAnswer(Duration);

impl std::fmt::Debug for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {}s", self.0.as_secs())
    }
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for NoAnswer {}

impl<C> Deadline<C> {
    fn bounded<'a, T: Send + 'a>(
        &self,
        call: BoxFuture<'a, ClientResult<T>>,
    ) -> BoxFuture<'a, ClientResult<T>> {
        let within = self.within;
        Box::pin(async move {
            tokio::time::timeout(within, call)
                .await
                .unwrap_or_else(|_| {
                    // Like a connection dropped before the answer: transient for the outbox.
                    Err(SlackClientError::HttpProtocolError(
                        SlackClientHttpProtocolError {
                            cause: Some(Box::new(NoAnswer(within))),
                        },
                    ))
                })
        })
    }
}

impl<C: SlackClientHttpConnector + Send + Sync> SlackClientHttpConnector for Deadline<C> {
    fn http_get_uri<'a, RS>(
        &'a self,
        full_uri: Url,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        self.bounded(self.inner.http_get_uri(full_uri, context))
    }

    fn http_get_with_client_secret<'a, RS>(
        &'a self,
        full_uri: Url,
        client_id: &'a SlackClientId,
        client_secret: &'a SlackClientSecret,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        let call = self
            .inner
            .http_get_with_client_secret(full_uri, client_id, client_secret);
        self.bounded(call)
    }

    fn http_post_uri<'a, RQ, RS>(
        &'a self,
        full_uri: Url,
        request_body: &'a RQ,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RQ: serde::ser::Serialize + Send + Sync,
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        self.bounded(self.inner.http_post_uri(full_uri, request_body, context))
    }

    fn http_post_uri_multipart_form<'a, 'p, RS, PT, TS>(
        &'a self,
        full_uri: Url,
        file: Option<FileMultipartData<'p>>,
        params: &'p PT,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
        PT: std::iter::IntoIterator<Item = (&'p str, Option<TS>)> + Clone,
        TS: AsRef<str> + 'p + Send,
    {
        let call = self
            .inner
            .http_post_uri_multipart_form(full_uri, file, params, context);
        self.bounded(call)
    }

    fn http_post_uri_binary<'a, 'p, RS>(
        &'a self,
        full_uri: Url,
        content_type: String,
        data: &'a [u8],
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a,
    {
        let call = self
            .inner
            .http_post_uri_binary(full_uri, content_type, data, context);
        self.bounded(call)
    }

    fn create_method_uri_path(&self, method_relative_uri: &str) -> ClientResult<Url> {
        self.inner.create_method_uri_path(method_relative_uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_is_not_http_is_refused() {
        let error = client("ftp://slack.example/api").err().unwrap();
        assert!(matches!(error, ClientError::NotHttp(_)), "{error}");
    }

    #[test]
    fn a_plain_http_fake_gets_a_client() {
        assert!(client("http://127.0.0.1:9/api/").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_slack_accepts_and_never_answers_fails_transiently_at_the_deadline() {
        use slack_morphism::prelude::{
            SlackApiConversationsOpenRequest, SlackApiToken, SlackApiTokenValue,
        };
        // Accepts every connection and reads nothing: the request is never answered.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}/api", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let client = client(&api_url).unwrap();
        let token = SlackApiToken::new(SlackApiTokenValue::new("xoxb-test".to_owned()));
        let request = SlackApiConversationsOpenRequest::new().with_users(vec!["U1".into()]);
        let session = client.open_session(&token);
        let call = session.conversations_open(&request);
        let answer = tokio::time::timeout(DEADLINE * 10, call)
            .await
            .expect("the call gave up by itself");
        let error = answer.unwrap_err();
        assert_eq!(
            crate::slack::port::call_outcome(&error),
            crate::metrics::CallOutcome::TransientError
        );
        assert!(
            error.to_string().contains("no answer within 10s"),
            "{error}"
        );
    }
}
