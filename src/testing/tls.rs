//! A local HTTPS server for testing TLS clients: its certificate (for `127.0.0.1` and
//! `localhost`) is signed by a throwaway CA that no system trusts, so a client reaches it only
//! when told to trust [`CA`], and otherwise fails in the words of its TLS library.
//!
//! The certificates are fixed (valid until 2126) so that no test needs the `openssl` program.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The throwaway CA's certificate, PEM: what a client must be told to trust.
pub const CA: &str = include_str!("tls/ca.pem");
/// The server's certificate (for `127.0.0.1` and `localhost`), signed by [`CA`].
pub const SERVER_CERTIFICATE: &str = include_str!("tls/server.pem");
/// The server certificate's private key, PKCS#8 PEM. A test key: it protects nothing.
pub const SERVER_KEY: &str = include_str!("tls/server.key");

/// The word rustls uses, in its messages and its debug output, for a server certificate that
/// chains to no trusted root. OpenSSL says "certificate verify failed (unable to get local
/// issuer certificate)" instead: a client whose error has this word spoke rustls.
pub const RUSTLS_UNKNOWN_ISSUER: &str = "UnknownIssuer";

/// An HTTPS server on `127.0.0.1:0` that answers every request `200 OK` with `{}`, counting
/// the TLS handshakes that reached it. Stops when dropped.
pub struct TlsServer {
    address: SocketAddr,
    hellos: Arc<AtomicUsize>,
    completed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TlsServer {
    pub fn start() -> Self {
        let config = Arc::new(server_config());
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let address = listener.local_addr().expect("the port's address");
        let hellos = Arc::new(AtomicUsize::new(0));
        let completed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hellos, completed, stop) = (hellos.clone(), completed.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    hellos.fetch_add(1, Ordering::SeqCst);
                    if answer(&config, stream) {
                        completed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        };
        Self {
            address,
            hellos,
            completed,
            stop,
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Connections that reached the server (whether their handshake succeeded or not).
    pub fn connections(&self) -> usize {
        self.hellos.load(Ordering::SeqCst)
    }

    /// Requests answered over a completed handshake.
    pub fn answered(&self) -> usize {
        self.completed.load(Ordering::SeqCst)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees `stop`.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn server_config() -> ServerConfig {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(SERVER_CERTIFICATE.as_bytes())
            .collect::<Result<_, _>>()
            .expect("the test certificate is PEM");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY.as_bytes()).expect("the test key is PEM");
    ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the test certificate matches its key")
}

/// Completes the handshake, reads one request's head and answers it; whether it got that far.
fn answer(config: &Arc<ServerConfig>, stream: TcpStream) -> bool {
    let Ok(connection) = ServerConnection::new(config.clone()) else {
        return false;
    };
    let mut tls = StreamOwned::new(connection, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let written = tls.write_all(answer.as_bytes()).and_then(|()| tls.flush());
    tls.conn.send_close_notify();
    let _ = tls.flush();
    written.is_ok()
}
