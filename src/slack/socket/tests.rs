use super::*;
use crate::testing::tls::{RUSTLS_UNKNOWN_ISSUER, TlsServer};

#[tokio::test]
async fn the_socket_mode_websocket_speaks_rustls() {
    let server = TlsServer::start();
    let url = server.url().replacen("https://", "wss://", 1);
    let Err(err) = open(&url).await else {
        panic!("a server whose CA nobody trusts was accepted");
    };
    assert!(err.to_string().contains(RUSTLS_UNKNOWN_ISSUER), "{err}");
    assert!(server.connections() >= 1, "the server was reached");
}
