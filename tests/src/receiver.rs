//! A webhook receiver a test scripts: a small hyper server on `127.0.0.1:0` that answers each
//! request as the script says (status, headers, a delay, or never) and keeps what it received.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering; `None` answers at once.
    pub delay: Option<Duration>,
    /// Never answer (the client's timeout ends it).
    pub hang: bool,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            delay: None,
            hang: false,
        }
    }

    pub fn ok() -> Reply {
        Reply::status(200)
    }

    pub fn hang() -> Reply {
        Reply {
            hang: true,
            ..Reply::ok()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// What the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The answer to request number `n` (0-based) on `path`.
pub type Script = Arc<dyn Fn(&str, usize) -> Reply + Send + Sync>;

struct State {
    script: Script,
    keep: bool,
    received: Mutex<Vec<Received>>,
    counts: Mutex<HashMap<String, usize>>,
    /// First arrival per `webhook-id`, for latency measurements.
    first_seen: Mutex<HashMap<String, Instant>>,
    total: AtomicU64,
    /// The lowest total a [`Receiver::wait_for_total`] waits for (`u64::MAX`: none). A counting
    /// receiver wakes its waiters only from there on, so that a load run does not pay a wake-up
    /// of the waiting task per request (a receiver that keeps requests wakes them on each).
    wanted_total: AtomicU64,
    arrived: Notify,
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    pub address: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("address", &self.address)
            .finish()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// A receiver that keeps every request and answers as `script` says.
    pub async fn start(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Receiver {
        Receiver::spawn(Arc::new(script), true).await
    }

    /// A receiver that answers 200 at once and only counts, noting each `webhook-id`'s first
    /// arrival (for load runs).
    pub async fn counting() -> Receiver {
        Receiver::spawn(Arc::new(|_: &str, _| Reply::ok()), false).await
    }

    async fn spawn(script: Script, keep: bool) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the receiver binds");
        let address = listener.local_addr().expect("a local address");
        let state = Arc::new(State {
            script,
            keep,
            received: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
            first_seen: Mutex::new(HashMap::new()),
            total: AtomicU64::new(0),
            wanted_total: AtomicU64::new(u64::MAX),
            arrived: Notify::new(),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            address,
            state,
            task,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Requests received on `path` so far, in order.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.state
            .received
            .lock()
            .map(|all| all.iter().filter(|r| r.path == path).cloned().collect())
            .unwrap_or_default()
    }

    /// Wait until `path` has received `count` requests (at most `within`); what it received.
    pub async fn wait_for(&self, path: &str, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.state.arrived.notified();
            let received = self.received(path);
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.received(path);
            }
        }
    }

    /// Requests received on every path.
    pub fn total(&self) -> u64 {
        self.state.total.load(Ordering::SeqCst)
    }

    /// Wait until `count` requests have arrived in all (at most `within`); the total then.
    pub async fn wait_for_total(&self, count: u64, within: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + within;
        self.state.wanted_total.fetch_min(count, Ordering::SeqCst);
        loop {
            let arrived = self.state.arrived.notified();
            let total = self.total();
            if total >= count {
                return total;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.total();
            }
        }
    }

    /// When each `webhook-id` first arrived.
    pub fn first_seen(&self) -> HashMap<String, Instant> {
        self.state
            .first_seen
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }
}

async fn answer(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let at = Instant::now();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let n = {
        let mut counts = state.counts.lock().expect("not poisoned");
        let count = counts.entry(path.clone()).or_insert(0);
        *count += 1;
        *count - 1
    };
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok())
        && let Ok(mut seen) = state.first_seen.lock()
    {
        seen.entry(id.to_owned()).or_insert(at);
    }
    let reply = (state.script)(&path, n);
    if state.keep
        && let Ok(mut received) = state.received.lock()
    {
        received.push(Received {
            at,
            path,
            headers,
            body,
        });
    }
    let total = state.total.fetch_add(1, Ordering::SeqCst) + 1;
    if state.keep || total >= state.wanted_total.load(Ordering::SeqCst) {
        state.arrived.notify_waiters();
    }
    if reply.hang {
        std::future::pending::<()>().await;
    }
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Full::new(Bytes::from_static(b"ok")))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
