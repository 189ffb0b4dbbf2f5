//! A fake Slack Socket Mode server: a tokio-tungstenite server on 127.0.0.1:0 whose URL the
//! fake Web API hands out from `apps.connections.open`. Each connection is greeted with
//! `hello`; then the test pushes envelopes onto the current connection, and the fake records
//! every acknowledgement with how long after its envelope it came. It can ask the client to
//! reconnect (`disconnect`), close it as Slack does (`1001 going away`) or cut it without a
//! close handshake, and tells whether the client closed cleanly and whether it answered the
//! close frames the fake sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// One acknowledgement the client sent.
#[derive(Clone, Debug)]
pub struct Ack {
    pub envelope_id: String,
    /// The response payload, `Null` when there was none.
    pub payload: Value,
    /// From the envelope being sent to its acknowledgement arriving.
    pub after: Duration,
}

enum Command {
    Send(Value),
    /// Close the TCP connection without a close frame.
    Drop,
    /// Send a close frame with this code, and wait for the client's answer.
    Close(u16),
}

#[derive(Default)]
struct State {
    connections: usize,
    current: Option<mpsc::UnboundedSender<Command>>,
    sent_at: HashMap<String, Instant>,
    acks: Vec<Ack>,
    /// Connections the client ended with a close frame.
    clean_closes: usize,
    /// Close frames the fake sent that the client answered with its own (RFC 6455 §5.5.1),
    /// and those it did not answer before the connection ended.
    closes_answered: usize,
    closes_unanswered: usize,
}

/// A running fake; it stops when dropped.
pub struct FakeSocket {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl FakeSocket {
    pub async fn start() -> FakeSocket {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let server = tokio::spawn(accept(listener, state.clone()));
        FakeSocket {
            state,
            addr,
            server,
        }
    }

    /// What `apps.connections.open` should hand out.
    pub fn url(&self) -> String {
        format!("ws://{}/link", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the client has connected `n` times in all.
    pub async fn connected(&self, n: usize) {
        for _ in 0..400 {
            if self.lock().connections >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the client did not connect {n} time(s)");
    }

    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    pub fn clean_closes(&self) -> usize {
        self.lock().clean_closes
    }

    /// How many close frames the fake sent were answered by the client, and how many were not.
    pub fn closes_answered(&self) -> (usize, usize) {
        let state = self.lock();
        (state.closes_answered, state.closes_unanswered)
    }

    fn command(&self, command: Command) {
        let state = self.lock();
        let current = state.current.as_ref().expect("no client is connected");
        current.send(command).unwrap();
    }

    /// Sends an envelope of `kind` carrying `payload` on the current connection.
    pub fn envelope(&self, id: &str, kind: &str, payload: Value) {
        self.lock().sent_at.insert(id.to_owned(), Instant::now());
        self.command(Command::Send(json!({
            "envelope_id": id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        })));
    }

    /// Asks the client to reconnect, as Slack does before it closes a connection.
    pub fn disconnect(&self) {
        let frame = json!({"type": "disconnect", "reason": "refresh_requested"});
        self.command(Command::Send(frame));
    }

    /// Cuts the current connection without a close handshake.
    pub fn drop_connection(&self) {
        self.command(Command::Drop);
    }

    /// Closes the current connection with `code` (1001 going away, as Slack does when it
    /// moves a connection), waiting up to 5 s for the client's close frame.
    pub fn close_connection(&self, code: u16) {
        self.command(Command::Close(code));
    }

    /// The acknowledgements of envelope `id`, once there are `count`.
    pub async fn acks_of(&self, id: &str, count: usize) -> Vec<Ack> {
        for _ in 0..400 {
            let acks: Vec<Ack> = self
                .lock()
                .acks
                .iter()
                .filter(|a| a.envelope_id == id)
                .cloned()
                .collect();
            if acks.len() >= count {
                return acks;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("envelope {id} was not acknowledged {count} time(s)");
    }
}

impl Drop for FakeSocket {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve(stream, state.clone()));
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (commands, mut received) = mpsc::unbounded_channel();
    {
        let mut state = state.lock().unwrap();
        state.connections += 1;
        state.current = Some(commands);
    }
    let hello = json!({"type": "hello", "num_connections": 1,
                       "connection_info": {"app_id": "A0FAKE"}});
    if socket.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            Some(command) = received.recv() => match command {
                Command::Send(frame) => {
                    if socket.send(Message::text(frame.to_string())).await.is_err() {
                        return;
                    }
                }
                Command::Drop => return,
                Command::Close(code) => {
                    let answered = close(&mut socket, code).await;
                    let mut state = state.lock().unwrap();
                    if answered {
                        state.closes_answered += 1;
                    } else {
                        state.closes_unanswered += 1;
                    }
                    return;
                }
            },
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => record(&state, text.as_str()),
                Some(Ok(Message::Close(_))) => {
                    state.lock().unwrap().clean_closes += 1;
                    // tungstenite answers the close; drive it until the stream ends.
                    while let Some(Ok(_)) = socket.next().await {}
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// Sends a close frame with `code`; whether the client answered it with its own before the
/// connection ended. (tungstenite, as the server, then ends the TCP connection.)
async fn close(socket: &mut tokio_tungstenite::WebSocketStream<TcpStream>, code: u16) -> bool {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "going away".into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return false;
    }
    let answer = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), answer)
        .await
        .unwrap_or(false)
}

fn record(state: &Mutex<State>, text: &str) {
    let ack: Value = serde_json::from_str(text).expect("an ack is JSON");
    let id = ack["envelope_id"]
        .as_str()
        .expect("an ack names its envelope");
    let mut state = state.lock().unwrap();
    let after = state
        .sent_at
        .get(id)
        .map(Instant::elapsed)
        .unwrap_or_default();
    state.acks.push(Ack {
        envelope_id: id.to_owned(),
        payload: ack["payload"].clone(),
        after,
    });
}
