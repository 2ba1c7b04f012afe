//! A TCP proxy on 127.0.0.1 that cuts some of the TLS connections it forwards: fault
//! injection between the operator and a server. It cannot read the TLS traffic, only its
//! record headers, which is enough: the server's last long application-data record of a
//! connection is its reply (a KMIP client sends one request per connection). A cut connection
//! is closed on both sides without forwarding the rest of the server's records.
//!
//! The proxy learns where the reply is from the first connection, which it never cuts, and
//! then cuts one connection in three at random: half of those just before the reply (the
//! server has done the work, the client never hears of it — the case that makes retries
//! create duplicates), the other half at an earlier record (the handshake never completes).
//! Random, not periodic: a fixed pattern can line up with a client's fixed sequence of
//! calls and fail the same call forever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// TLS record content type of application data (and of every encrypted TLS 1.3 record).
const APPLICATION_DATA: u8 = 23;
/// Records at least this long are replies, shorter ones alerts (close_notify).
const SHORTEST_REPLY: usize = 64;
/// "No reply record learned yet".
const UNKNOWN: usize = usize::MAX;

/// What the proxy did so far.
#[derive(Default)]
pub struct CutCounts {
    connections: AtomicUsize,
    cut_before_reply: AtomicUsize,
    cut_earlier: AtomicUsize,
    reply_record: AtomicUsize,
    /// xorshift64 state of the cut decisions.
    random: Mutex<u64>,
}

impl CutCounts {
    /// (connections, cut just before the reply, cut earlier).
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.cut_before_reply.load(Ordering::SeqCst),
            self.cut_earlier.load(Ordering::SeqCst),
        )
    }
}

/// A running proxy; stops when dropped.
pub struct CuttingProxy {
    port: u16,
    counts: Arc<CutCounts>,
    task: JoinHandle<()>,
}

impl CuttingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to
    /// `127.0.0.1:target_port`, cutting some as the module says. Runs on the caller's
    /// runtime.
    pub async fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let counts = Arc::new(CutCounts {
            reply_record: AtomicUsize::new(UNKNOWN),
            random: Mutex::new(seed | 1),
            ..CutCounts::default()
        });
        let task = tokio::spawn(accept_loop(listener, target_port, counts.clone()));
        Self { port, counts, task }
    }

    /// `127.0.0.1:<port>`, the address clients use instead of the server's.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> &CutCounts {
        &self.counts
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target_port: u16, counts: Arc<CutCounts>) {
    while let Ok((client, _)) = listener.accept().await {
        counts.connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(forward(client, target_port, counts.clone()));
    }
}

/// Where a connection is cut: `Some(i)` closes it instead of forwarding the server's record
/// `i`.
fn cut_point(counts: &CutCounts) -> Option<usize> {
    let reply = counts.reply_record.load(Ordering::SeqCst);
    if reply == UNKNOWN {
        return None;
    }
    let draw = {
        let mut state = counts.random.lock().unwrap_or_else(|e| e.into_inner());
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    match draw % 6 {
        0 => {
            counts.cut_before_reply.fetch_add(1, Ordering::SeqCst);
            Some(reply)
        }
        1 => {
            counts.cut_earlier.fetch_add(1, Ordering::SeqCst);
            Some((draw / 6) as usize % reply.max(1))
        }
        _ => None,
    }
}

async fn forward(client: TcpStream, target_port: u16, counts: Arc<CutCounts>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
        return;
    };
    let cut = cut_point(&counts);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    });
    let records = relay_records(&mut server_read, &mut client_write, cut).await;
    if cut.is_none() {
        learn_reply_record(&records, &counts);
    }
    upstream.abort();
    let _ = client_write.shutdown().await;
}

/// Copies the server's TLS records to the client up to record `cut` (all of them when
/// `None`); returns each forwarded record's (content type, length).
async fn relay_records(
    server: &mut tokio::net::tcp::OwnedReadHalf,
    client: &mut tokio::net::tcp::OwnedWriteHalf,
    cut: Option<usize>,
) -> Vec<(u8, usize)> {
    let mut records = Vec::new();
    loop {
        if cut == Some(records.len()) {
            return records;
        }
        let mut header = [0u8; 5];
        if server.read_exact(&mut header).await.is_err() {
            return records;
        }
        let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let mut body = vec![0u8; length];
        if server.read_exact(&mut body).await.is_err() {
            return records;
        }
        if client.write_all(&header).await.is_err() || client.write_all(&body).await.is_err() {
            return records;
        }
        records.push((header[0], length));
    }
}

/// Remembers the index of the reply record of a connection that was not cut: its last long
/// application-data record.
fn learn_reply_record(records: &[(u8, usize)], counts: &CutCounts) {
    let reply = records
        .iter()
        .rposition(|&(kind, length)| kind == APPLICATION_DATA && length >= SHORTEST_REPLY);
    if let Some(index) = reply {
        let _ = counts.reply_record.compare_exchange(
            UNKNOWN,
            index,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}
