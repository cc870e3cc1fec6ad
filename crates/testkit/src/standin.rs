//! A loopback stand-in for a paid provider: an HTTP server that takes a while to answer each
//! call and records what a provider's bill would show (calls in flight at once, when each call
//! arrived), and can answer one call with `429` and a `Retry-After`. Plus the minimal HTTP client
//! the `model_call` test workflow calls it with.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nosyntask_domain::TaskError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the stand-in saw.
#[derive(Debug, Default)]
pub struct StandInLog {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Arrival of every call, with whether it was answered 429.
    calls: Mutex<Vec<(Instant, bool)>>,
    /// The request path of every call, in arrival order.
    paths: Mutex<Vec<String>>,
    /// Answer the call with this number (1-based) with 429 and `Retry-After: secs`.
    throttle: Mutex<Option<(usize, u64)>>,
}

impl StandInLog {
    /// The most calls that were in flight at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The request paths of the calls, in arrival order.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Arrival times of the calls, and whether each was answered 429.
    pub fn calls(&self) -> Vec<(Instant, bool)> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    pub addr: std::net::SocketAddr,
    pub log: Arc<StandInLog>,
    server: JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandIn {
    /// Starts a stand-in on a free loopback port whose calls take `latency`.
    pub async fn start(latency: Duration) -> std::io::Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(StandInLog::default());
        let served = log.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = served.clone();
                tokio::spawn(async move {
                    let _ = answer(stream, &log, latency).await;
                });
            }
        });
        Ok(StandIn { addr, log, server })
    }

    /// Answers call number `call` (1-based, counting from the start) with 429 and
    /// `Retry-After: secs`.
    pub fn throttle_call(&self, call: usize, secs: u64) {
        if let Ok(mut throttle) = self.log.throttle.lock() {
            *throttle = Some((call, secs));
        }
    }
}

async fn answer(mut stream: TcpStream, log: &StandInLog, latency: Duration) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let path = String::from_utf8_lossy(&request)
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    if let Ok(mut paths) = log.paths.lock() {
        paths.push(path);
    }
    let throttled = {
        let mut calls = log.calls.lock().unwrap_or_else(|p| p.into_inner());
        let number = calls.len() + 1;
        let throttle = *log.throttle.lock().unwrap_or_else(|p| p.into_inner());
        let throttled = throttle.filter(|(call, _)| *call == number).map(|(_, s)| s);
        calls.push((Instant::now(), throttled.is_some()));
        throttled
    };
    let response = if let Some(secs) = throttled {
        format!(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {secs}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        )
    } else {
        let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        log.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(latency).await;
        log.in_flight.fetch_sub(1, Ordering::SeqCst);
        let body = "{\"ok\":true}";
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// One call to the stand-in at `addr`: `Ok` on 200, a retryable error otherwise (with the
/// `Retry-After` of a 429, as the real adapters map it).
pub async fn call(addr: &str) -> Result<(), TaskError> {
    call_path(addr, "/generate").await
}

/// [`call`] with a request path of its own (the stand-in records it).
pub async fn call_path(addr: &str, path: &str) -> Result<(), TaskError> {
    let failed = |err: std::io::Error| TaskError::retryable(format!("stand-in at {addr}: {err}"));
    let mut stream = TcpStream::connect(addr).await.map_err(failed)?;
    stream
        .write_all(
            format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
        .await
        .map_err(failed)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.map_err(failed)?;
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    match status {
        200 => Ok(()),
        429 => {
            let after = response
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("retry-after")
                        .then(|| value.trim().parse::<u64>().ok())
                        .flatten()
                })
                .unwrap_or(1);
            Err(TaskError::retry_after(
                format!("HTTP 429 from the stand-in at {addr}"),
                Duration::from_secs(after),
            ))
        }
        other => Err(TaskError::retryable(format!(
            "HTTP {other} from the stand-in at {addr}"
        ))),
    }
}
