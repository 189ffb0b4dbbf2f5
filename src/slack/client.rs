//! The slack-morphism client Gatehouse talks to Slack's Web API with, pointed at
//! `slack.api_url` (Slack itself, or a fake in tests). TLS is rustls with the ring provider
//! passed explicitly (no process-wide default needed) and the system's root certificates.

use std::sync::Arc;

use hyper_rustls::HttpsConnectorBuilder;
use rustls::crypto::CryptoProvider;
use slack_morphism::prelude::{SlackClient, SlackClientHyperConnector, SlackHyperClient};

/// Why no client could be built. Raised at start-up, so each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("slack.api_url {0:?} must start with https:// (or http:// for a local fake)")]
    NotHttp(String),
    #[error("no trusted root certificates could be loaded for {api_url}: {source}")]
    NoRootCertificates {
        api_url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS could not be set up: {0}")]
    Tls(#[from] rustls::Error),
}

/// A client whose every call goes to `<api_url>/<method>`, e.g. `https://slack.com/api`.
///
/// Root certificates come from the system. When none can be loaded and `api_url` is plain
/// `http://` (a fake in tests or a local proxy) the client is still built, with an empty trust
/// store, so it can speak plain HTTP but will refuse every HTTPS server; for an `https://` URL
/// the missing roots are an error.
pub fn client(api_url: &str) -> Result<SlackHyperClient, ClientError> {
    let api_url = api_url.trim_end_matches('/');
    let plain_http = api_url.starts_with("http://");
    if !plain_http && !api_url.starts_with("https://") {
        return Err(ClientError::NotHttp(api_url.to_owned()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider.clone())
    {
        Ok(builder) => builder,
        Err(_) if plain_http => HttpsConnectorBuilder::new().with_tls_config(no_roots(provider)?),
        Err(source) => {
            return Err(ClientError::NoRootCertificates {
                api_url: api_url.to_owned(),
                source,
            });
        }
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(SlackClient::new(
        SlackClientHyperConnector::with_connector(connector).with_slack_api_url(api_url),
    ))
}

/// A TLS configuration that trusts nobody: only for a client that will speak plain HTTP.
fn no_roots(provider: Arc<CryptoProvider>) -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
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
    fn the_tls_config_without_roots_builds() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        assert!(no_roots(provider).is_ok());
    }

    #[test]
    fn a_plain_http_fake_gets_a_client() {
        assert!(client("http://127.0.0.1:9/api/").is_ok());
    }
}
