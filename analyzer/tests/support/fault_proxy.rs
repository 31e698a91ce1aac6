//! A fault-injecting HTTP proxy in front of a real Prometheus.
//!
//! Verdict is pointed at the proxy; the proxy forwards every request to the
//! Prometheus behind it, except that the test switches a [`Fault`] on and
//! off at run time: the backend down (connection refused), slow, answering
//! 5xx or 429, answering with rewritten data (partial, NaN, unpaired label
//! sets), with a body that is not JSON, or with a body of many megabytes.
//!
//! Why a proxy over a real Prometheus rather than a fake backend: the data
//! Verdict judges stays what Prometheus really answers, and each fault
//! changes exactly one thing about it.
//!
//! It listens on a loopback port chosen free at run time. "Down" closes the
//! listener (so connections are refused, as with a stopped server) and
//! "up" binds the same port again.

#![allow(dead_code)] // each test binary uses a different subset

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rewrites a successful answer: gets the PromQL query of the request and
/// the parsed JSON answer, returns the answer to send instead.
pub type Rewrite = Arc<dyn Fn(&str, Value) -> Value + Send + Sync>;

/// What the proxy does to each request.
#[derive(Clone)]
pub enum Fault {
    /// Forward unchanged.
    Pass,
    /// Connection refused: the listener is closed.
    Down,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Answer this status (and `Retry-After`, if given) with a short body.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Forward, then rewrite the JSON answer.
    Rewrite(Rewrite),
    /// Answer 200 with exactly these bytes (truncated or invalid JSON).
    Body(Vec<u8>),
    /// Forward, then cut the answer's body to its first `fraction` and send
    /// that with status 200 (JSON cut off mid-way).
    Truncate { fraction: f64 },
    /// Answer 200 with a well-formed matrix of about `bytes` bytes, streamed
    /// in chunks without a `Content-Length`.
    Huge { bytes: usize },
}

impl Fault {
    /// A rewrite from a closure.
    pub fn rewrite(f: impl Fn(&str, Value) -> Value + Send + Sync + 'static) -> Fault {
        Fault::Rewrite(Arc::new(f))
    }
}

struct Shared {
    upstream: String,
    fault: Mutex<Fault>,
    /// Requests the current or an earlier fault applied to.
    faulted: AtomicUsize,
    client: reqwest::Client,
}

/// The running proxy. Stopped on drop.
pub struct FaultProxy {
    /// Base URL to give Verdict, e.g. `http://127.0.0.1:41236`.
    pub url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<Server>,
}

struct Server {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream` (e.g. a `PrometheusServer`'s URL).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        verdict::tls::install_crypto_provider();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            fault: Mutex::new(Fault::Pass),
            faulted: AtomicUsize::new(0),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
        });
        let server = serve(listener, shared.clone());
        FaultProxy {
            url: format!("http://{addr}"),
            addr,
            shared,
            server: Some(server),
        }
    }

    /// Switches to `fault` for every request from now on. `Down` closes the
    /// listener (after open connections finish); any other fault reopens it
    /// on the same port if it was closed.
    pub async fn set(&mut self, fault: Fault) {
        let down = matches!(fault, Fault::Down);
        *self.shared.fault.lock().expect("fault lock") = fault;
        match (down, self.server.is_some()) {
            (true, true) => self.close().await,
            (false, false) => {
                let listener = tokio::net::TcpListener::bind(self.addr)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot listen on {} again after Down: {e}", self.addr)
                    });
                self.server = Some(serve(listener, self.shared.clone()));
            }
            _ => {}
        }
    }

    /// Requests a fault (other than `Pass`) has been applied to so far;
    /// refused connections are not requests and do not count.
    pub fn faulted(&self) -> usize {
        self.shared.faulted.load(Ordering::SeqCst)
    }

    async fn close(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            // Graceful shutdown closes idle keep-alive connections too, so
            // Verdict's pooled connections see the outage at once.
            let _ = tokio::time::timeout(Duration::from_secs(10), server.task).await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            server.task.abort();
        }
    }
}

fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Server {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Server { shutdown: tx, task }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = shared.fault.lock().expect("fault lock").clone();
    if !matches!(fault, Fault::Pass) {
        shared.faulted.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Fault::Pass | Fault::Down => forward(&shared, method, &uri, &headers, body).await,
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            forward(&shared, method, &uri, &headers, body).await
        }
        Fault::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).expect("a valid status");
            let mut response = (status, format!("injected {status}")).into_response();
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", after.parse().expect("a valid header value"));
            }
            response
        }
        Fault::Body(bytes) => json_response(StatusCode::OK, bytes),
        Fault::Truncate { fraction } => {
            let query = promql(&uri, &headers, &body);
            let (_, answer) = fetch(&shared, method, &uri, &headers, body).await;
            let cut = ((answer.len() as f64) * fraction) as usize;
            assert!(
                cut < answer.len(),
                "nothing to truncate in the answer to {query:?}"
            );
            json_response(StatusCode::OK, answer[..cut].to_vec())
        }
        Fault::Rewrite(rewrite) => {
            let query = promql(&uri, &headers, &body);
            let (status, answer) = fetch(&shared, method, &uri, &headers, body).await;
            if status != StatusCode::OK {
                return json_response(status, answer);
            }
            let json: Value = serde_json::from_slice(&answer).expect("Prometheus answers JSON");
            let json = rewrite(&query, json);
            json_response(status, serde_json::to_vec(&json).expect("serialise"))
        }
        Fault::Huge { bytes } => huge(bytes),
    }
}

async fn forward(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let (status, answer) = fetch(shared, method, uri, headers, body).await;
    json_response(status, answer)
}

/// The upstream's status and body for the same request.
async fn fetch(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = shared
        .client
        .request(method, format!("{}{path}", shared.upstream))
        .body(body);
    if let Some(ct) = headers.get("content-type") {
        request = request.header("content-type", ct);
    }
    match request.send().await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).expect("status");
            (
                status,
                r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            )
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("proxy: upstream failed: {e}").into_bytes(),
        ),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// The `query` parameter of a request, from the URL or a form body.
fn promql(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let form = headers.get("content-type").is_some_and(|ct| {
        ct.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    let mut pairs = String::from(uri.query().unwrap_or(""));
    if form {
        pairs.push('&');
        pairs.push_str(&String::from_utf8_lossy(body));
    }
    let url = reqwest::Url::parse(&format!("http://x/?{pairs}")).expect("query string");
    url.query_pairs()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A well-formed matrix answer of about `bytes` bytes, sent chunk by
/// chunk (one 64 KiB block of series, repeated; the test never holds the
/// whole answer, and producing it costs nothing, so the limit is what ends
/// the transfer, not a slow proxy).
fn huge(bytes: usize) -> Response {
    const HEAD: &str = r#"{"status":"success","data":{"resultType":"matrix","result":["#;
    const TAIL: &str = "]}}";
    let values: Vec<String> = (0..100)
        .map(|t| format!("[{},\"{t}\"]", 1_700_000_000 + 15 * t))
        .collect();
    let one = format!(
        r#"{{"metric":{{"__name__":"filler"}},"values":[{}]}}"#,
        values.join(",")
    );
    let mut block = String::new();
    while block.len() < 64 * 1024 {
        block.push(',');
        block.push_str(&one);
    }
    let block = Bytes::from(block);
    let blocks = bytes.div_ceil(block.len()).max(1);
    let chunks = (0..=blocks + 1).map(move |i| {
        Ok::<_, std::convert::Infallible>(if i == 0 {
            Bytes::from(format!("{HEAD}{one}"))
        } else if i <= blocks {
            block.clone()
        } else {
            Bytes::from_static(TAIL.as_bytes())
        })
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        Body::from_stream(futures_util::stream::iter(chunks)),
    )
        .into_response()
}

/// Applies `f` to every series object (`{"metric": …, "values": …}`) of a
/// matrix or vector answer.
pub fn for_each_series(answer: &mut Value, mut f: impl FnMut(&mut Value)) {
    if let Some(result) = answer
        .pointer_mut("/data/result")
        .and_then(Value::as_array_mut)
    {
        result.iter_mut().for_each(&mut f);
    }
}

/// The result list of an answer, to replace or extend.
pub fn result_mut(answer: &mut Value) -> &mut Vec<Value> {
    answer
        .pointer_mut("/data/result")
        .and_then(Value::as_array_mut)
        .expect("a matrix or vector answer")
}
