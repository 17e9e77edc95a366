//! A TCP proxy on 127.0.0.1 in front of a PostgreSQL server that reads the client's side of the
//! protocol and, when asked, cuts a connection at the `COMMIT` of a transaction: before the
//! server sees it (the transaction rolls back), or after the server has answered it but before
//! the answer reaches the client (the transaction is committed; the client cannot know).
//!
//! It understands just enough of the frontend protocol: the untyped startup messages (an
//! `SSLRequest` or `GSSENCRequest` may come first; the client must not go on to TLS, so use
//! `sslmode=disable`), then typed messages, of which it reads `Parse` and `Query` (`Q`, the
//! simple query `batch_execute` sends, here `COMMIT`). A transaction is *marked* once a
//! statement of it contains the marker text, so the cut lands on the transaction meant (a batch
//! of messages), not on a readiness probe's or a reader's.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Where a connection is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// `COMMIT` never reaches the server: it rolls back when the connection goes.
    BeforeCommit,
    /// `COMMIT` reaches the server, which commits and answers; the answer is dropped.
    AfterCommit,
}

/// The `SSLRequest` and `GSSENCRequest` codes: a startup message follows them.
const ENCRYPTION_REQUESTS: [u32; 2] = [80_877_103, 80_877_104];

/// What the proxy's threads share.
struct Shared {
    upstream: u16,
    marker: String,
    /// The cut asked for, taken by the first marked `COMMIT`.
    armed: Mutex<Option<Cut>>,
    cuts: AtomicUsize,
    accepted: AtomicUsize,
    stopping: AtomicBool,
    /// Both ends of every connection, to close them when the proxy goes.
    open: Mutex<Vec<TcpStream>>,
}

/// The proxy; it stops accepting and closes every connection when dropped.
pub struct CommitCutter {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl CommitCutter {
    /// Listens on a free port of 127.0.0.1 and forwards to the server on `upstream`; marks a
    /// transaction once one of its statements contains `marker`.
    pub fn start(upstream: u16, marker: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy listens");
        let port = listener.local_addr().expect("a local address").port();
        let shared = Arc::new(Shared {
            upstream,
            marker: marker.to_owned(),
            armed: Mutex::new(None),
            cuts: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let acceptor = std::thread::spawn({
            let shared = Arc::clone(&shared);
            move || accept(&listener, &shared)
        });
        Self {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cuts the connection at the next `COMMIT` of a marked transaction, as `cut` says.
    pub fn arm(&self, cut: Cut) {
        *self.shared.armed.lock().unwrap() = Some(cut);
    }

    /// How many connections were cut so far.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// How many connections clients opened so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CommitCutter {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees it must stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.shared.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(("127.0.0.1", shared.upstream)) else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(client_end), Ok(server_end)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        shared.open.lock().unwrap().extend([client_end, server_end]);
        let swallow = Arc::new(AtomicBool::new(false));
        let (Ok(client_in), Ok(server_out)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let forward = Forward {
            shared: Arc::clone(shared),
            from_client: client_in,
            to_server: server_out,
            swallow: Arc::clone(&swallow),
            marked: false,
        };
        std::thread::spawn(move || forward.run());
        std::thread::spawn(move || answers(server, client, &swallow));
    }
}

/// Both ends closed: the client and the server each see the connection end.
fn cut(client: &TcpStream, server: &TcpStream) {
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// Forwards the server's answers to the client until either side closes; once `swallow` is
/// set, the next answer (to a `COMMIT`) is dropped and the connection cut instead.
fn answers(mut server: TcpStream, mut client: TcpStream, swallow: &AtomicBool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = match server.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if swallow.load(Ordering::SeqCst) || client.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    cut(&client, &server);
}

/// The client-to-server half of one connection.
struct Forward {
    shared: Arc<Shared>,
    from_client: TcpStream,
    to_server: TcpStream,
    swallow: Arc<AtomicBool>,
    /// The open transaction sent a statement holding the marker.
    marked: bool,
}

impl Forward {
    fn run(mut self) {
        let _ = self.relay();
        cut(&self.from_client, &self.to_server);
    }

    fn relay(&mut self) -> io::Result<()> {
        // Startup: untyped messages, until one that is not a request for encryption.
        loop {
            let message = read_message(&mut self.from_client, None)?;
            self.to_server.write_all(&message)?;
            let code = message
                .get(4..8)
                .map(|c| u32::from_be_bytes(c.try_into().unwrap()));
            if !code.is_some_and(|code| ENCRYPTION_REQUESTS.contains(&code)) {
                break;
            }
        }
        loop {
            let mut kind = [0u8; 1];
            self.from_client.read_exact(&mut kind)?;
            let message = read_message(&mut self.from_client, Some(kind[0]))?;
            if self.cuts_here(kind[0], &message[5..]) {
                return Ok(());
            }
            self.to_server.write_all(&message)?;
        }
    }

    /// Reads a `Parse` or `Query` message's statement; true when the connection is to be cut
    /// here (for [`Cut::AfterCommit`], after this message has been forwarded).
    fn cuts_here(&mut self, kind: u8, body: &[u8]) -> bool {
        let statement = match kind {
            // Query: the text. Parse: a statement name, then the text.
            b'Q' => body.split(|b| *b == 0).next(),
            b'P' => body.split(|b| *b == 0).nth(1),
            _ => None,
        };
        let Some(statement) = statement.map(String::from_utf8_lossy) else {
            return false;
        };
        if statement.contains(&self.shared.marker) {
            self.marked = true;
        }
        let ends_transaction = kind == b'Q' && ["COMMIT", "ROLLBACK"].contains(&&*statement);
        if !ends_transaction {
            return false;
        }
        let marked = std::mem::take(&mut self.marked);
        if !(marked && statement == "COMMIT") {
            return false;
        }
        let Some(cut) = self.shared.armed.lock().unwrap().take() else {
            return false;
        };
        self.shared.cuts.fetch_add(1, Ordering::SeqCst);
        match cut {
            Cut::BeforeCommit => true,
            Cut::AfterCommit => {
                // The answer thread drops whatever the server says next: the answer to this.
                self.swallow.store(true, Ordering::SeqCst);
                false
            }
        }
    }
}

/// Reads one message: `kind` and then the length and body, or (startup) no kind.
fn read_message(stream: &mut TcpStream, kind: Option<u8>) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_be_bytes(length) as usize;
    if length < 4 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a bad length"));
    }
    let mut message = Vec::with_capacity(length + 1);
    message.extend(kind);
    message.extend((length as u32).to_be_bytes());
    message.resize(message.len() + length - 4, 0);
    let body_start = message.len() - (length - 4);
    stream.read_exact(&mut message[body_start..])?;
    Ok(message)
}
