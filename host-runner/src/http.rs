//! The outbound HTTP policy: one place decides what may leave this machine.
//!
//! * Requests go only to the configured origin (scheme, host, port), and
//!   only with a method and path the run's [`Grants`] allow (see
//!   [`crate::capability`]): a connector reads the user's files and the few
//!   OCS endpoints it needs, and writes nothing unless the operator said so.
//! * The host attaches `Authorization` itself; the connector may not send
//!   credential headers (`authorization`, `proxy-authorization`, `cookie`,
//!   `host`). Other request headers pass only when a WebDAV or OCS read needs
//!   them ([`REQUEST_HEADERS`]). Framing headers (`content-length`,
//!   `transfer-encoding`, …) are the client's and are dropped. `Set-Cookie`
//!   never reaches the connector, and no cookie is kept.
//! * No proxy from the environment sees a request to a plain `http://`
//!   Nextcloud: it would read the credential.
//! * Redirects are never followed; a 3xx goes back to the connector untouched.
//! * The first 401 latches: every later request of the run is refused without
//!   being sent, so a wrong password cannot walk into Nextcloud's brute-force
//!   lockout (10 failures in 30 minutes block the address).
//! * Timeouts on connect and on every read, and on each answer's whole body
//!   (`limits.max_response_seconds`), so a server that trickles a byte at a
//!   time cannot hold a run. Buffered bodies are capped one by one
//!   (`limits.max_body_mib`) and together, across calls, for as long as the
//!   connector holds them (`limits.max_buffered_mib`).
//! * Every attempt is paced by [`Pace`]: a token bucket
//!   (`limits.requests_per_second`) and a cap on requests in flight
//!   (`limits.max_concurrent_requests`), for `send` and `send-all` alike. A
//!   streamed answer stays in flight until the connector has read it to the
//!   end or dropped it.
//! * [`HttpClient::dispatch`] retries what [`crate::retry`] says is worth it
//!   (429, 502, 503, 504, 423, a connection reset), always before any byte of
//!   the answer reached the connector, never a 401. Each retry is an attempt
//!   on the wire, counted in [`HttpClient::requests_sent`], and logged.
//! * Once a stop was asked for ([`StopFlag`]) no request is sent, waits end,
//!   and after the connector's next commit no further response byte is handed
//!   out, so the run ends with its last batch committed.

use crate::capability::{Capability, Grants};
use crate::config::Config;
use crate::origin::Origin;
use crate::pace::{Pace, Permit, RealTime, Timekeeper};
use crate::retry::{RetryPolicy, parse_retry_after, retry_reason};
use crate::secret::Secret;
use crate::stop::StopFlag;
use base64::Engine as _;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use ureq::http::{HeaderName, HeaderValue, Method};
use url::Url;

/// The most a single `body.read` hands back, whatever the connector asks for.
pub const MAX_CHUNK: u32 = 1 << 20;

/// How much of a buffered answer is read, and counted against
/// `limits.max_buffered_mib`, at a time.
const BUFFER_STEP: usize = 64 * 1024;

/// After a stop was asked for, answers are handed out until the connector's
/// next commit, or at most this long.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How often a wait (rate limit, backoff) looks at the stop flag and the 401 latch.
const PAUSE_STEP: Duration = Duration::from_millis(100);

/// Headers only the host may set.
const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "host"];
/// The request headers a WebDAV or OCS read needs; any other is refused.
pub const REQUEST_HEADERS: [&str; 9] = [
    "accept",
    "accept-language",
    "content-type",
    "depth",
    "if-match",
    "if-none-match",
    "if-range",
    "ocs-apirequest",
    "range",
];
/// Headers that name a second resource (`MOVE`, `COPY`): sent only with
/// `files.write`, and the resource they name is checked like the URL.
const DESTINATION_HEADERS: [&str; 2] = ["destination", "overwrite"];
/// Answer headers that carry session state; the connector never sees them.
const SESSION_HEADERS: [&str; 2] = ["set-cookie", "set-cookie2"];
/// The largest request body a connector may send (PROPFIND and SEARCH
/// bodies are a few KiB).
pub const MAX_REQUEST_BODY: usize = 1 << 20;
/// The largest answer the host reads for itself (the user's identity).
const MAX_HOST_BODY: u64 = 1 << 20;

/// Headers that describe the connection or the framing, which the HTTP client owns.
const FRAMING_HEADERS: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// A request as the connector asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl OutgoingRequest {
    pub fn get(url: impl Into<String>) -> OutgoingRequest {
        OutgoingRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// An answer, with a body to read in chunks.
pub struct IncomingResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ResponseBody,
}

/// The WIT `http-error`, on the host side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("connection: {0}")]
    Connection(String),
    #[error("too large: {0}")]
    TooLarge(String),
}

enum BodyInner {
    Streaming(ureq::BodyReader<'static>),
    Buffered(std::io::Cursor<Vec<u8>>),
    Finished,
}

/// Buffered answers held across calls would take more than
/// `limits.max_buffered_mib`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the answer to {what} does not fit: the buffered answers the connector holds may take {limit_mib} MiB together"
)]
pub struct BufferedLimitExceeded {
    pub what: String,
    pub limit_mib: u64,
}

/// The bytes buffered answers hold in a run, and their cap.
#[derive(Debug)]
struct BufferedBudget {
    held: AtomicU64,
    limit: u64,
}

/// Bytes counted against the [`BufferedBudget`] until dropped.
#[derive(Debug)]
struct Held {
    bytes: u64,
    budget: Arc<BufferedBudget>,
}

impl BufferedBudget {
    /// Counts `bytes` more; false, counting nothing, when they would not fit.
    fn reserve(&self, bytes: u64) -> bool {
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(bytes).filter(|n| *n <= self.limit)
            })
            .is_ok()
    }
}

impl Held {
    fn none(budget: &Arc<BufferedBudget>) -> Held {
        Held {
            bytes: 0,
            budget: budget.clone(),
        }
    }

    fn grow(&mut self, bytes: u64) -> bool {
        let fits = self.budget.reserve(bytes);
        if fits {
            self.bytes += bytes;
        }
        fits
    }

    /// Gives back all but `bytes`.
    fn shrink_to(&mut self, bytes: u64) {
        let excess = self.bytes.saturating_sub(bytes);
        self.budget.held.fetch_sub(excess, Ordering::SeqCst);
        self.bytes -= excess;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// The host side of the WIT `body` resource: streams from the connection, or
/// hands out bytes already read.
pub struct ResponseBody {
    inner: BodyInner,
    /// `METHOD url`, for error messages.
    what: String,
    /// A streamed answer is in flight until it is finished or dropped.
    permit: Option<Permit>,
    /// Ends a streamed answer early once the run is stopping.
    gate: Option<Arc<StopGate>>,
    /// The client's count of body bytes read off the wire.
    received: Option<Arc<AtomicU64>>,
    /// When a streamed answer must have arrived in full.
    deadline: Option<ResponseDeadline>,
    /// A buffered answer's bytes, counted until finished or dropped.
    held: Option<Held>,
}

/// When an answer's body must have arrived in full (`limits.max_response_seconds`).
#[derive(Debug, Clone, Copy)]
struct ResponseDeadline {
    at: Instant,
    limit: Duration,
}

impl ResponseDeadline {
    fn after(limit: Duration) -> ResponseDeadline {
        ResponseDeadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    fn check(&self, what: &str) -> Result<(), HttpError> {
        if Instant::now() < self.at {
            return Ok(());
        }
        Err(HttpError::Timeout(format!(
            "{what}: the answer did not arrive in full within {} s (`limits.max_response_seconds`); the server sends it too slowly",
            self.limit.as_secs()
        )))
    }
}

impl ResponseBody {
    fn buffered(bytes: Vec<u8>, what: String, held: Option<Held>) -> ResponseBody {
        ResponseBody {
            inner: BodyInner::Buffered(std::io::Cursor::new(bytes)),
            what,
            permit: None,
            gate: None,
            received: None,
            deadline: None,
            held,
        }
    }

    fn finish(&mut self) {
        self.inner = BodyInner::Finished;
        self.permit = None;
        self.held = None;
    }

    /// Up to `max` bytes (at most [`MAX_CHUNK`]); `None` once finished.
    pub fn read_chunk(&mut self, max: u32) -> Result<Option<Vec<u8>>, HttpError> {
        if matches!(self.inner, BodyInner::Finished) {
            return Ok(None);
        }
        if self.gate.as_ref().is_some_and(|g| g.halted()) {
            self.finish();
            return Err(HttpError::Connection(format!(
                "{}: the rest of the answer was not read: host-runner is stopping (SIGINT or SIGTERM); the next run goes on from the last commit",
                self.what
            )));
        }
        if let Some(deadline) = self.deadline
            && let Err(e) = deadline.check(&self.what)
        {
            self.finish();
            return Err(e);
        }
        let want = max.min(MAX_CHUNK) as usize;
        let reader: &mut dyn Read = match &mut self.inner {
            BodyInner::Finished => return Ok(None),
            BodyInner::Streaming(r) => r,
            BodyInner::Buffered(c) => c,
        };
        if want == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut buf = vec![0u8; want];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => {
                    self.finish();
                    return Ok(None);
                }
                Ok(n) => {
                    if let Some(received) = &self.received {
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.finish();
                    return Err(io_error(&self.what, e));
                }
            }
        }
    }
}

/// A run's side of the stop flag: new requests stop at once; answers being
/// read stop after the connector's next commit (or [`STOP_GRACE`]).
#[derive(Debug)]
struct StopGate {
    flag: StopFlag,
    halted: AtomicBool,
    /// When this run first saw the flag set.
    seen: Mutex<Option<Instant>>,
}

impl StopGate {
    fn new(flag: StopFlag) -> StopGate {
        StopGate {
            flag,
            halted: AtomicBool::new(false),
            seen: Mutex::new(None),
        }
    }

    fn stopping(&self) -> bool {
        self.flag.is_requested()
    }

    /// Whether answers may no longer be read.
    fn halted(&self) -> bool {
        if self.halted.load(Ordering::SeqCst) {
            return true;
        }
        if !self.stopping() {
            return false;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get_or_insert_with(Instant::now).elapsed() >= STOP_GRACE {
            self.halted.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    fn committed(&self) {
        if self.stopping() {
            self.halted.store(true, Ordering::SeqCst);
        }
    }
}

/// What an [`HttpClient`] takes besides the configuration.
#[derive(Clone)]
pub struct ClientOptions {
    /// Stops the run's HTTP when set (see the module docs).
    pub stop: StopFlag,
    /// The clocks for pacing and backoff.
    pub time: Arc<dyn Timekeeper>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            stop: StopFlag::new(),
            time: Arc::new(RealTime::new()),
        }
    }
}

/// One attempt that got no answer; `reset` when it is worth another.
struct Failure {
    error: HttpError,
    reset: bool,
}

/// Who asks for a request: the connector is held to the run's grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Connector,
    Host,
}

/// A request that passed the policy, ready to send (again).
struct Prepared {
    method: Method,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
}

impl Prepared {
    fn what(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// The HTTP client of one run, holding the policy and its counters.
pub struct HttpClient {
    agent: ureq::Agent,
    origin: Origin,
    username: String,
    authorization: HeaderValue,
    max_body_bytes: u64,
    buffered: Arc<BufferedBudget>,
    max_response: Duration,
    timeout: Duration,
    retry: RetryPolicy,
    pace: Pace,
    time: Arc<dyn Timekeeper>,
    gate: Arc<StopGate>,
    requests_sent: AtomicU64,
    bytes_received: Arc<AtomicU64>,
    retries: AtomicU64,
    credentials_rejected: AtomicBool,
    /// Whether the server answered a request of this run with a success or
    /// a redirect: until then a batch sends its first request alone, so that
    /// a wrong password costs one failed login, not one per request in flight.
    credentials_accepted: AtomicBool,
    /// What the connector may send; nothing until the host bound them.
    grants: OnceLock<Grants>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("origin", &self.origin)
            .field("username", &self.username)
            .field("authorization", &"[redacted]")
            .field("pace", &self.pace)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(config: &Config, secret: &Secret) -> HttpClient {
        HttpClient::with_options(config, secret, ClientOptions::default())
    }

    pub fn with_options(config: &Config, secret: &Secret, options: ClientOptions) -> HttpClient {
        let limits = &config.limits;
        let timeout = Duration::from_secs(limits.http_timeout_seconds);
        let connect = timeout.min(Duration::from_secs(30));
        // Through a proxy, a plain-HTTP request and its credential are the
        // proxy's to read; an HTTPS one is tunnelled end to end.
        let proxy = match config.origin.scheme() {
            "https" => ureq::Proxy::try_from_env(),
            _ => None,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(proxy)
            .http_status_as_error(false)
            .max_redirects(0)
            .allow_non_standard_methods(true)
            .user_agent(concat!(
                "nextcloud-connector-host-runner/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout_resolve(Some(connect))
            .timeout_connect(Some(connect))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .max_idle_connections_per_host(limits.max_concurrent_requests as usize)
            .build()
            .into();
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            config.username,
            secret.expose()
        ));
        let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
            .expect("base64 is a valid header value");
        authorization.set_sensitive(true);
        HttpClient {
            agent,
            origin: config.origin.clone(),
            username: config.username.clone(),
            authorization,
            max_body_bytes: u64::from(limits.max_body_mib) << 20,
            buffered: Arc::new(BufferedBudget {
                held: AtomicU64::new(0),
                limit: u64::from(limits.max_buffered_mib) << 20,
            }),
            max_response: Duration::from_secs(limits.max_response_seconds),
            timeout,
            retry: RetryPolicy::from_limits(limits),
            pace: Pace::new(
                limits.requests_per_second,
                limits.max_concurrent_requests,
                options.time.clone(),
            ),
            time: options.time,
            gate: Arc::new(StopGate::new(options.stop)),
            requests_sent: AtomicU64::new(0),
            bytes_received: Arc::new(AtomicU64::new(0)),
            retries: AtomicU64::new(0),
            credentials_rejected: AtomicBool::new(false),
            credentials_accepted: AtomicBool::new(false),
            grants: OnceLock::new(),
        }
    }

    /// Binds what the connector may send in this run; once.
    pub fn bind(&self, grants: Grants) {
        if self.grants.set(grants).is_err() {
            tracing::warn!("the grants of this run were bound already; the first binding holds");
        }
    }

    /// The grants bound for this run.
    pub fn grants(&self) -> Option<&Grants> {
        self.grants.get()
    }

    /// A request of the host's own (not the connector's), under the same
    /// origin, credential, pacing and 401 policy; its answer is read whole,
    /// up to 1 MiB.
    pub fn send_for_host(&self, request: OutgoingRequest) -> Result<(u16, Vec<u8>), HttpError> {
        let mut response = self.stream(self.prepare(request, Caller::Host)?)?;
        let what = response.body.what.clone();
        let mut bytes = Vec::new();
        // Chunk by chunk, so that the answer's deadline holds here too.
        while let Some(chunk) = response.body.read_chunk(MAX_CHUNK)? {
            bytes.extend(chunk);
            if bytes.len() as u64 > MAX_HOST_BODY {
                return Err(HttpError::TooLarge(format!(
                    "the answer to {what} is larger than 1 MiB"
                )));
            }
        }
        Ok((response.status, bytes))
    }

    /// Attempts that went out on the wire in this run, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::SeqCst)
    }

    /// Response body bytes read in this run (headers not counted).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    /// What the buffered answers handed out and not yet finished or dropped hold.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered.held.load(Ordering::SeqCst)
    }

    /// Of those, the retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::SeqCst)
    }

    /// The most requests that were in flight at once in this run.
    pub fn peak_in_flight(&self) -> usize {
        self.pace.peak_in_flight()
    }

    /// Whether a stop was asked for.
    pub fn stopping(&self) -> bool {
        self.gate.stopping()
    }

    /// The connector committed: when stopping, no further answer is read.
    pub fn committed(&self) {
        self.gate.committed();
    }

    /// Whether Nextcloud answered 401 in this run.
    pub fn credentials_rejected(&self) -> bool {
        self.credentials_rejected.load(Ordering::SeqCst)
    }

    /// One request; the body streams from the connection.
    pub fn send(&self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        self.stream(self.prepare(request, Caller::Connector)?)
    }

    /// Sends a prepared request; the answer's body streams.
    fn stream(&self, prepared: Prepared) -> Result<IncomingResponse, HttpError> {
        let what = prepared.what();
        let (response, permit) = self.dispatch(&prepared, || {
            self.pace
                .try_acquire()
                .ok_or_else(|| self.no_free_slot(&what))
        })?;
        let (parts, body) = response.into_parts();
        Ok(IncomingResponse {
            status: parts.status.as_u16(),
            headers: header_list(&parts.headers),
            body: ResponseBody {
                inner: BodyInner::Streaming(body.into_reader()),
                what,
                permit: Some(permit),
                gate: Some(self.gate.clone()),
                received: Some(self.bytes_received.clone()),
                deadline: Some(ResponseDeadline::after(self.max_response)),
                held: None,
            },
        })
    }

    /// The connector is single-threaded: when every slot is taken by answers
    /// it holds open, waiting would never end.
    fn no_free_slot(&self, what: &str) -> HttpError {
        HttpError::Refused(format!(
            "not sent: {what}: the connector holds {} answers open without reading them to the end, and `limits.max_concurrent_requests` is {}; it must finish or drop one first",
            self.pace.max_in_flight(),
            self.pace.max_in_flight()
        ))
    }

    /// Several requests, up to `max_concurrent_requests` at once, each body
    /// read fully (up to `max_body_mib`); answers in the order asked. Fails,
    /// dropping every answer, when they would take the buffered answers held
    /// past `max_buffered_mib`.
    pub fn send_all(
        &self,
        requests: Vec<OutgoingRequest>,
    ) -> Result<Vec<Result<IncomingResponse, HttpError>>, BufferedLimitExceeded> {
        // Slots held by answers the connector keeps open stay taken during
        // this call; the rest are this batch's.
        let free = self.pace.available();
        let slots: Vec<Mutex<Option<Result<Prepared, HttpError>>>> = requests
            .into_iter()
            .map(|r| {
                let prepared = self.prepare(r, Caller::Connector).and_then(|p| {
                    if free == 0 {
                        Err(self.no_free_slot(&p.what()))
                    } else {
                        Ok(p)
                    }
                });
                Mutex::new(Some(prepared))
            })
            .collect();
        let results: Vec<Mutex<Option<Result<IncomingResponse, HttpError>>>> =
            slots.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let exceeded: Mutex<Option<BufferedLimitExceeded>> = Mutex::new(None);
        // Sends the next request of the batch; false when none is left.
        let step = || {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= slots.len() {
                return false;
            }
            let taken = slots[i].lock().unwrap_or_else(|p| p.into_inner()).take();
            let result = match taken {
                Some(Ok(prepared)) => match self.fetch_buffered(prepared) {
                    Ok(fetched) => fetched,
                    Err(e) => {
                        // The batch is lost: send nothing more of it.
                        *exceeded.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        next.store(slots.len(), Ordering::SeqCst);
                        return false;
                    }
                },
                Some(Err(e)) => Err(e),
                None => unreachable!("each slot is taken once"),
            };
            *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            true
        };
        let work = || while step() {};
        if !self.credentials_accepted.load(Ordering::SeqCst) {
            step();
        }
        let workers = free.min(slots.len());
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(work);
                }
            });
        }
        if let Some(e) = exceeded.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .expect("every slot was filled")
            })
            .collect())
    }

    /// One answer read whole; the outer error ends the batch, the inner one
    /// is this answer's.
    fn fetch_buffered(
        &self,
        prepared: Prepared,
    ) -> Result<Result<IncomingResponse, HttpError>, BufferedLimitExceeded> {
        let what = prepared.what();
        // Fewer workers than free slots: this never waits for long.
        let (response, permit) = match self.dispatch(&prepared, || Ok(self.pace.acquire())) {
            Ok(answer) => answer,
            Err(e) => return Ok(Err(e)),
        };
        let deadline = ResponseDeadline::after(self.max_response);
        let (parts, mut body) = response.into_parts();
        let cap = self.max_body_bytes;
        let too_large = || {
            Ok(Err(HttpError::TooLarge(format!(
                "the answer to {what} is larger than {} MiB (`limits.max_body_mib`)",
                cap >> 20
            ))))
        };
        if body.content_length().is_some_and(|n| n > cap) {
            return too_large();
        }
        let over_budget = || BufferedLimitExceeded {
            what: what.clone(),
            limit_mib: self.buffered.limit >> 20,
        };
        // The buffer's capacity is counted before it is allocated: answers
        // held across calls and this batch's together never pass the budget,
        // however many workers read at once.
        let mut held = Held::none(&self.buffered);
        let mut bytes: Vec<u8> = Vec::new();
        let mut reader = body.as_reader().take(cap + 1);
        let mut step = vec![0u8; BUFFER_STEP];
        loop {
            if let Err(e) = deadline.check(&what) {
                return Ok(Err(e));
            }
            let n = match reader.read(&mut step) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Ok(Err(io_error(&what, e))),
            };
            let need = bytes.len() + n;
            if need > cap as usize {
                return too_large();
            }
            if need > bytes.capacity() {
                let grown = need.max(bytes.capacity() * 2).min(cap as usize);
                if !held.grow((grown - bytes.capacity()) as u64) {
                    return Err(over_budget());
                }
                bytes.reserve_exact(grown - bytes.len());
            }
            bytes.extend_from_slice(&step[..n]);
        }
        drop(permit);
        bytes.shrink_to_fit();
        held.shrink_to(bytes.capacity() as u64);
        self.bytes_received
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(Ok(IncomingResponse {
            status: parts.status.as_u16(),
            headers: header_list(&parts.headers),
            body: ResponseBody::buffered(bytes, what, Some(held)),
        }))
    }

    /// Applies the policy: origin, grants, headers, body; attaches the
    /// credential. The host's own requests skip the grants and header list,
    /// which are about what the connector may ask for.
    fn prepare(&self, request: OutgoingRequest, caller: Caller) -> Result<Prepared, HttpError> {
        let url = self.on_origin(&request.url)?;
        let method = Method::from_bytes(request.method.as_bytes())
            .ok()
            .filter(|m| *m != Method::CONNECT)
            .ok_or_else(|| {
                HttpError::Refused(format!(
                    "`{}` is not an allowed HTTP method",
                    request.method
                ))
            })?;
        let capability = match caller {
            Caller::Host => None,
            Caller::Connector => Some(self.granted(method.as_str(), &url)?),
        };
        if let Some(body) = &request.body {
            if body.len() > MAX_REQUEST_BODY {
                return Err(HttpError::Refused(format!(
                    "not sent: {method} {url}: a request body of {} bytes is larger than the {} KiB the host sends",
                    body.len(),
                    MAX_REQUEST_BODY >> 10
                )));
            }
            if method == Method::GET || method == Method::HEAD {
                return Err(HttpError::Refused(format!(
                    "not sent: {method} {url}: a {method} request carries no body"
                )));
            }
        }
        let mut headers = Vec::with_capacity(request.headers.len() + 1);
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if CREDENTIAL_HEADERS.contains(&lower.as_str()) {
                return Err(HttpError::Refused(format!(
                    "the `{lower}` header is the host's to set; the connector may not send it"
                )));
            }
            if FRAMING_HEADERS.contains(&lower.as_str()) {
                continue;
            }
            if let Some(capability) = capability {
                self.header_allowed(&lower, value, method.as_str(), capability)?;
            }
            let name = HeaderName::from_bytes(lower.as_bytes())
                .map_err(|_| HttpError::Refused(format!("`{name}` is not a valid header name")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                HttpError::Refused(format!("the value of header `{name}` is not valid"))
            })?;
            headers.push((name, value));
        }
        headers.push((
            ureq::http::header::AUTHORIZATION,
            self.authorization.clone(),
        ));
        Ok(Prepared {
            method,
            url,
            headers,
            body: request.body,
        })
    }

    /// Parses an absolute URL on the configured origin, without user info.
    fn on_origin(&self, raw: &str) -> Result<Url, HttpError> {
        let url = Url::parse(raw)
            .map_err(|e| HttpError::Refused(format!("`{raw}` is not an absolute URL ({e})")))?;
        match Origin::of(&url) {
            Some(o) if o == self.origin => {}
            Some(o) => {
                return Err(HttpError::Refused(format!(
                    "{raw} is on origin {o}, but this host only sends requests to the configured Nextcloud origin {}",
                    self.origin
                )));
            }
            None => {
                return Err(HttpError::Refused(format!(
                    "{raw} is not an http(s) URL on the configured Nextcloud origin {}",
                    self.origin
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::Refused(
                "URLs with a user name or password are refused; the host attaches the credential"
                    .into(),
            ));
        }
        Ok(url)
    }

    /// The capability that grants `method` on `url` in this run.
    fn granted(&self, method: &str, url: &Url) -> Result<Capability, HttpError> {
        let grants = self.grants.get().ok_or_else(|| {
            HttpError::Refused(format!(
                "not sent: {method} {url}: the host has not granted this run anything yet"
            ))
        })?;
        grants
            .check(method, url)
            .map_err(|e| HttpError::Refused(format!("not sent: {e}")))
    }

    /// The request-header allow-list. `Destination` names a second resource,
    /// so it needs `files.write` and must itself be granted.
    fn header_allowed(
        &self,
        name: &str,
        value: &str,
        method: &str,
        capability: Capability,
    ) -> Result<(), HttpError> {
        if REQUEST_HEADERS.contains(&name) {
            return Ok(());
        }
        if DESTINATION_HEADERS.contains(&name) && capability == Capability::FilesWrite {
            if name == "destination" {
                let target = self.on_origin(value)?;
                self.granted(method, &target)?;
            }
            return Ok(());
        }
        Err(HttpError::Refused(format!(
            "not sent: the `{name}` header is not one a WebDAV or OCS read needs; a connector may send only {}",
            REQUEST_HEADERS.join(", ")
        )))
    }

    /// Sends a prepared request under the pace, applies the answer policy
    /// (the 401 latch) and retries what is worth it. `acquire` gives the
    /// in-flight slot of each attempt; the last one comes back with the answer.
    fn dispatch(
        &self,
        prepared: &Prepared,
        acquire: impl Fn() -> Result<Permit, HttpError>,
    ) -> Result<(ureq::http::Response<ureq::Body>, Permit), HttpError> {
        let what = prepared.what();
        let started = self.time.now();
        let mut retry = 0u32;
        loop {
            self.may_send(&what)?;
            self.wait_for_token(&what)?;
            // A sibling of a send-all may have met a 401 meanwhile.
            self.may_send(&what)?;
            let permit = acquire()?;
            let (outcome, reason, retry_after) = match self.attempt(prepared) {
                Ok(response) => {
                    let status = response.status().as_u16();
                    self.judge(&what, status)?;
                    let headers = header_list(response.headers());
                    let Some(reason) = retry_reason(status, &headers) else {
                        return Ok((response, permit));
                    };
                    let after = headers
                        .iter()
                        .find(|(n, _)| n == "retry-after")
                        .and_then(|(_, v)| parse_retry_after(v, self.time.wall()));
                    (Ok(response), reason, after)
                }
                Err(Failure { error, reset: true }) => {
                    let reason = format!("no answer ({error})");
                    (Err(error), reason, None)
                }
                Err(Failure { error, .. }) => return Err(error),
            };
            let elapsed = self.time.now().saturating_sub(started);
            match self
                .retry
                .delay(retry, retry_after, elapsed, fastrand::f64())
            {
                Some(wait) => {
                    tracing::warn!(
                        "{what}: {reason}; retry {} of at most {} in {:.1} s",
                        retry + 1,
                        self.retry.max_retries,
                        wait.as_secs_f64()
                    );
                    // Nothing of this answer reached the connector.
                    drop(outcome);
                    drop(permit);
                    self.pause(wait, &what)?;
                    retry += 1;
                    self.retries.fetch_add(1, Ordering::SeqCst);
                }
                None => {
                    tracing::warn!(
                        "{what}: {reason}; giving up after {retry} retries in {:.1} s (`limits.max_retries` is {}, `limits.max_retry_seconds` is {})",
                        elapsed.as_secs_f64(),
                        self.retry.max_retries,
                        self.retry.max_total.as_secs()
                    );
                    return outcome.map(|r| (r, permit));
                }
            }
        }
    }

    /// Whether anything may still be sent in this run.
    fn may_send(&self, what: &str) -> Result<(), HttpError> {
        if self.credentials_rejected() {
            return Err(HttpError::Unauthorized(format!(
                "not sent: {}",
                self.rejected_message()
            )));
        }
        if self.gate.stopping() {
            return Err(HttpError::Refused(format!(
                "not sent: {what}: host-runner is stopping (SIGINT or SIGTERM); the next run goes on from the last commit"
            )));
        }
        Ok(())
    }

    /// Takes a token of the rate limit, waiting for one.
    fn wait_for_token(&self, what: &str) -> Result<(), HttpError> {
        loop {
            match self.pace.take_token() {
                Ok(()) => return Ok(()),
                Err(wait) => self.pause(wait, what)?,
            }
        }
    }

    /// Waits, in steps, unless the run stops or the credentials were rejected meanwhile.
    fn pause(&self, duration: Duration, what: &str) -> Result<(), HttpError> {
        let mut left = duration;
        while !left.is_zero() {
            self.may_send(what)?;
            let step = left.min(PAUSE_STEP);
            self.time.sleep(step);
            left -= step;
        }
        Ok(())
    }

    /// The answer policy: a 401 latches "credentials rejected" and fails; a
    /// 429 after that is most likely Nextcloud's brute-force lockout.
    fn judge(&self, what: &str, status: u16) -> Result<(), HttpError> {
        if status < 400 {
            self.credentials_accepted.store(true, Ordering::SeqCst);
        }
        match status {
            401 => {
                self.credentials_rejected.store(true, Ordering::SeqCst);
                tracing::debug!(
                    "{what} answered 401: credentials rejected; no further requests this run"
                );
                Err(HttpError::Unauthorized(format!(
                    "{what} answered 401: {}",
                    self.rejected_message()
                )))
            }
            429 if self.credentials_rejected() => Err(HttpError::Unauthorized(format!(
                "{what} answered 429 Too Many Requests after the credentials were rejected: Nextcloud's brute-force protection has probably blocked this address. It lifts 30 minutes after the last failed login (an admin can run `occ security:bruteforce:reset <address>`); fix the credentials before trying again"
            ))),
            _ => Ok(()),
        }
    }

    /// What to check when Nextcloud rejected the credentials.
    pub fn rejected_message(&self) -> String {
        format!(
            "Nextcloud rejected the credentials of user `{}`. Check that `username` is your login name, that the password is an app password (Settings > Security > Devices & sessions) and not your login password, and that the app password has not been revoked. This run sends no further requests: Nextcloud blocks an address after 10 failed logins within 30 minutes",
            self.username
        )
    }

    /// Exactly one exchange on the wire.
    fn attempt(&self, prepared: &Prepared) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let what = prepared.what();
        let mut builder = ureq::http::Request::builder()
            .method(prepared.method.clone())
            .uri(prepared.url.as_str());
        for (name, value) in &prepared.headers {
            builder = builder.header(name, value);
        }
        tracing::debug!("sending {what}");
        self.requests_sent.fetch_add(1, Ordering::SeqCst);
        let refused = |e: ureq::http::Error| Failure {
            error: HttpError::Refused(e.to_string()),
            reset: false,
        };
        let result = match &prepared.body {
            Some(body) => builder
                .body(body.clone())
                .map_err(refused)
                .and_then(|r| self.agent.run(r).map_err(|e| self.failure(&what, e))),
            None => builder
                .body(())
                .map_err(refused)
                .and_then(|r| self.agent.run(r).map_err(|e| self.failure(&what, e))),
        };
        if let Ok(r) = &result {
            tracing::debug!("{what} -> {}", r.status());
        }
        result
    }

    fn failure(&self, what: &str, e: ureq::Error) -> Failure {
        let reset = match &e {
            ureq::Error::Io(io) => is_reset(io.kind()),
            _ => false,
        };
        Failure {
            error: self.ureq_error(what, e),
            reset,
        }
    }

    fn ureq_error(&self, what: &str, e: ureq::Error) -> HttpError {
        match e {
            ureq::Error::Timeout(t) => HttpError::Timeout(format!(
                "{what}: no answer in time ({t}; `limits.http_timeout_seconds` is {})",
                self.timeout.as_secs()
            )),
            ureq::Error::Io(io) => io_error(what, io),
            ureq::Error::HostNotFound => {
                HttpError::Connection(format!("{what}: the host name does not resolve"))
            }
            ureq::Error::ConnectionFailed => {
                HttpError::Connection(format!("{what}: could not connect"))
            }
            other => HttpError::Connection(format!("{what}: {other}")),
        }
    }
}

/// The connection broke under the request: worth another attempt.
fn is_reset(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

fn io_error(what: &str, e: std::io::Error) -> HttpError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>())
        && let ureq::Error::Timeout(t) = inner
    {
        return HttpError::Timeout(format!("{what}: the answer stalled ({t})"));
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            HttpError::Timeout(format!("{what}: {e}"))
        }
        _ => HttpError::Connection(format!("{what}: {e}")),
    }
}

/// The answer's headers as the connector sees them: without session state.
fn header_list(headers: &ureq::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(n, _)| !SESSION_HEADERS.contains(&n.as_str()))
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pace::ManualTime;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    /// What the canned server saw: one entry per request (its head).
    type Seen = Arc<Mutex<Vec<String>>>;

    /// A loopback server that answers every request with `answer(index)`,
    /// recording each request's head before answering.
    fn server(answer: impl Fn(usize) -> String + Send + 'static) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let head = read_request(&stream);
                let index = {
                    let mut seen = record.lock().unwrap();
                    seen.push(head);
                    seen.len() - 1
                };
                let mut stream = stream;
                let _ = stream.write_all(answer(index).as_bytes());
            }
        });
        (base, seen)
    }

    fn read_request(stream: &TcpStream) -> String {
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        head.push_str(&String::from_utf8_lossy(&body));
        head
    }

    fn reply(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    }

    /// Binds what the connector of these tests may reach: the read-only
    /// capabilities, for user `alice`.
    fn granted(client: HttpClient, base: &str) -> HttpClient {
        let declared = crate::capability::Declared {
            capabilities: crate::capability::READ_ONLY.iter().copied().collect(),
            explicit: false,
        };
        client.bind(Grants::new(
            &declared,
            None,
            &Url::parse(base).unwrap(),
            "alice",
        ));
        client
    }

    fn client_for(base: &str, tweak: &str) -> HttpClient {
        let config = Config::from_toml_str(
            &format!("base_url = \"{base}\"\nusername = \"alice\"\ndatabase = \"x\"\n{tweak}"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        granted(
            HttpClient::new(&config, &Secret::new("app-pass-word")),
            base,
        )
    }

    /// A client on a manual clock (waits are instant and recorded).
    fn paced_client(base: &str, tweak: &str, stop: StopFlag) -> (HttpClient, Arc<ManualTime>) {
        let time = Arc::new(ManualTime::new(wall_start()));
        (paced_client_on(base, tweak, stop, time.clone()), time)
    }

    fn paced_client_on(
        base: &str,
        tweak: &str,
        stop: StopFlag,
        time: Arc<dyn Timekeeper>,
    ) -> HttpClient {
        let config = Config::from_toml_str(
            &format!("base_url = \"{base}\"\nusername = \"alice\"\ndatabase = \"x\"\n{tweak}"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        granted(
            HttpClient::with_options(
                &config,
                &Secret::new("app-pass-word"),
                ClientOptions { stop, time },
            ),
            base,
        )
    }

    /// A whole second, so that HTTP dates (second resolution) are exact.
    fn wall_start() -> std::time::SystemTime {
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    fn read_all(body: &mut ResponseBody) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = body.read_chunk(4).unwrap() {
            assert!(chunk.len() <= 4);
            out.extend(chunk);
        }
        out
    }

    #[test]
    fn same_origin_passes_the_policy() {
        let c = client_for("https://cloud.example.com/nc", "");
        for url in [
            "https://cloud.example.com/nc/remote.php/dav/files/alice/",
            "https://CLOUD.example.com:443/nc/status.php",
            "https://cloud.example.com/nc/ocs/v2.php/cloud/user?format=json",
        ] {
            let p = c
                .prepare(OutgoingRequest::get(url), Caller::Connector)
                .unwrap();
            assert_eq!(p.url.as_str(), Url::parse(url).unwrap().as_str());
        }
    }

    #[test]
    fn other_origins_are_refused_naming_both() {
        let c = client_for("https://cloud.example.com", "");
        for url in [
            "https://evil.example.com/",
            "https://cloud.example.com:8443/",
            "http://cloud.example.com/",
            "https://cloud.example.com.evil.com/",
        ] {
            match c.prepare(OutgoingRequest::get(url), Caller::Connector) {
                Err(HttpError::Refused(m)) => {
                    assert!(m.contains("https://cloud.example.com:443"), "{m}");
                    assert!(m.contains(url), "{m}");
                }
                other => panic!("{url}: {:?}", other.map(|p| p.url)),
            }
        }
        for url in [
            "file:///etc/passwd",
            "/relative",
            "https://bob:x@cloud.example.com/",
        ] {
            assert!(
                matches!(
                    c.prepare(OutgoingRequest::get(url), Caller::Connector),
                    Err(HttpError::Refused(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn credential_headers_are_refused_and_framing_dropped() {
        let c = client_for("https://cloud.example.com", "");
        for name in ["Authorization", "proxy-authorization", "Cookie", "HOST"] {
            let mut r = OutgoingRequest::get("https://cloud.example.com/status.php");
            r.headers.push((name.into(), "x".into()));
            match c.prepare(r, Caller::Connector) {
                Err(HttpError::Refused(m)) => {
                    assert!(m.contains(&name.to_ascii_lowercase()), "{m}")
                }
                other => panic!("{name}: {:?}", other.map(|p| p.url)),
            }
        }
        let mut r = OutgoingRequest::get("https://cloud.example.com/remote.php/dav/files/alice/");
        r.headers.push(("Depth".into(), "1".into()));
        r.headers.push(("Content-Length".into(), "999".into()));
        let p = c.prepare(r, Caller::Connector).unwrap();
        let names: Vec<&str> = p.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["depth", "authorization"]);
        assert!(matches!(
            c.prepare(
                OutgoingRequest {
                    method: "GE T".into(),
                    ..OutgoingRequest::get("https://cloud.example.com/status.php")
                },
                Caller::Connector
            ),
            Err(HttpError::Refused(_))
        ));
    }

    #[test]
    fn what_is_not_granted_is_never_sent() {
        let (base, seen) = server(|_| reply("201 Created", "", ""));
        let c = client_for(&base, "");
        let attempts = [
            (
                "PUT",
                format!("{base}/remote.php/dav/files/alice/x"),
                vec![],
            ),
            (
                "TRACE",
                format!("{base}/remote.php/dav/files/alice/"),
                vec![],
            ),
            (
                "POST",
                format!("{base}/ocs/v2.php/core/apppassword/rotate"),
                vec![],
            ),
            ("GET", format!("{base}/remote.php/dav/files/bob/x"), vec![]),
            (
                "PROPFIND",
                format!("{base}/remote.php/dav/files/alice/"),
                vec![("X-HTTP-Method-Override".to_string(), "DELETE".to_string())],
            ),
            (
                "PROPFIND",
                format!("{base}/remote.php/dav/files/alice/"),
                vec![("Depth".to_string(), "0\r\nX-Evil: 1".to_string())],
            ),
        ];
        for (method, url, headers) in attempts {
            let r = OutgoingRequest {
                method: method.into(),
                url: url.clone(),
                headers,
                body: None,
            };
            assert!(
                matches!(c.send(r), Err(HttpError::Refused(_))),
                "{method} {url}"
            );
        }
        let big = OutgoingRequest {
            method: "PROPFIND".into(),
            url: format!("{base}/remote.php/dav/files/alice/"),
            headers: vec![],
            body: Some(vec![b' '; MAX_REQUEST_BODY + 1]),
        };
        assert!(matches!(c.send(big), Err(HttpError::Refused(m)) if m.contains("body")));
        let get_with_body = OutgoingRequest {
            body: Some(b"x".to_vec()),
            ..OutgoingRequest::get(format!("{base}/status.php"))
        };
        assert!(matches!(c.send(get_with_body), Err(HttpError::Refused(_))));
        assert_eq!(c.requests_sent(), 0);
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn nothing_is_granted_before_the_host_binds_the_grants() {
        let (base, seen) = server(|_| reply("200 OK", "", "{}"));
        let config = Config::from_toml_str(
            &format!("base_url = \"{base}\"\nusername = \"alice\"\ndatabase = \"x\"\n"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        let c = HttpClient::new(&config, &Secret::new("app-pass-word"));
        let r = c.send(OutgoingRequest::get(format!("{base}/status.php")));
        assert!(
            matches!(r, Err(HttpError::Refused(m)) if m.contains("not granted this run anything"))
        );
        // The host's own request needs no grant.
        let (status, body) = c
            .send_for_host(OutgoingRequest::get(format!(
                "{base}/ocs/v2.php/cloud/user"
            )))
            .unwrap();
        assert_eq!((status, body.as_slice()), (200, b"{}".as_slice()));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_granted_move_may_name_only_a_granted_destination() {
        let (base, seen) = server(|_| reply("201 Created", "", ""));
        let config = Config::from_toml_str(
            &format!("base_url = \"{base}\"\nusername = \"alice\"\ndatabase = \"x\"\n"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        let c = HttpClient::new(&config, &Secret::new("app-pass-word"));
        let declared = crate::capability::Declared {
            capabilities: [Capability::FilesWrite].into(),
            explicit: true,
        };
        let operator = [Capability::FilesWrite].into();
        c.bind(Grants::new(
            &declared,
            Some(&operator),
            &Url::parse(&base).unwrap(),
            "alice",
        ));
        let moving = |to: String| OutgoingRequest {
            method: "MOVE".into(),
            url: format!("{base}/remote.php/dav/files/alice/a"),
            headers: vec![("Destination".into(), to)],
            body: None,
        };
        for to in [
            format!("{base}/remote.php/dav/files/bob/a"),
            format!("{base}/remote.php/dav/files/alice/..%2f..%2fbob/a"),
            "https://evil.example/a".to_string(),
        ] {
            assert!(
                matches!(c.send(moving(to.clone())), Err(HttpError::Refused(_))),
                "{to}"
            );
        }
        assert!(seen.lock().unwrap().is_empty());
        let r = c
            .send(moving(format!("{base}/remote.php/dav/files/alice/b")))
            .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn session_cookies_never_reach_the_connector() {
        let (base, _) = server(|_| {
            reply(
                "200 OK",
                "Set-Cookie: oc_sessionPassphrase=secret; path=/\r\nSet-Cookie: nc_session_id=x\r\nX-Kept: 1\r\n",
                "ok",
            )
        });
        let c = client_for(&base, "");
        let r = c
            .send(OutgoingRequest::get(format!("{base}/status.php")))
            .unwrap();
        assert!(
            r.headers.iter().all(|(n, _)| n != "set-cookie"),
            "{:?}",
            r.headers
        );
        assert!(r.headers.contains(&("x-kept".into(), "1".into())));
        let all = c
            .send_all(vec![OutgoingRequest::get(format!("{base}/status.php"))])
            .unwrap();
        let r = all.into_iter().next().unwrap().unwrap();
        assert!(
            r.headers.iter().all(|(n, _)| n != "set-cookie"),
            "{:?}",
            r.headers
        );
    }

    #[test]
    fn attaches_basic_auth_and_sends_method_headers_body() {
        let (base, seen) = server(|_| reply("207 Multi-Status", "X-A: b\r\n", "<xml/>"));
        let c = client_for(&base, "");
        let r = OutgoingRequest {
            method: "PROPFIND".into(),
            url: format!("{base}/remote.php/dav/files/alice/"),
            headers: vec![("Depth".into(), "1".into())],
            body: Some(b"<propfind/>".to_vec()),
        };
        let mut resp = c.send(r).unwrap();
        assert_eq!(resp.status, 207);
        assert!(resp.headers.contains(&("x-a".into(), "b".into())));
        assert_eq!(read_all(&mut resp.body), b"<xml/>");
        assert_eq!(resp.body.read_chunk(4).unwrap(), None);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let head = seen[0].to_ascii_lowercase();
        assert!(
            head.starts_with("propfind /remote.php/dav/files/alice/ http/1.1"),
            "{head}"
        );
        // base64("alice:app-pass-word")
        assert!(
            head.contains("authorization: basic ywxpy2u6yxbwlxbhc3mtd29yza=="),
            "{head}"
        );
        assert!(head.contains("depth: 1"), "{head}");
        assert!(head.ends_with("<propfind/>"), "{head}");
        assert_eq!(c.requests_sent(), 1);
    }

    #[test]
    fn first_401_latches_and_later_requests_are_never_sent() {
        let (base, seen) = server(|_| {
            reply(
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"Nextcloud\"\r\n",
                "",
            )
        });
        let c = client_for(&base, "");
        let first = c.send(OutgoingRequest::get(format!(
            "{base}/ocs/v2.php/cloud/user"
        )));
        let Err(HttpError::Unauthorized(m)) = first else {
            panic!("expected unauthorized")
        };
        assert!(
            m.contains("app password") && m.contains("10 failed logins"),
            "{m}"
        );
        assert!(c.credentials_rejected());

        let second = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/status.php"
        )));
        assert!(matches!(second, Err(HttpError::Unauthorized(ref m)) if m.starts_with("not sent")));
        let batch = c
            .send_all(vec![
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/a")),
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/b")),
            ])
            .unwrap();
        assert!(
            batch
                .iter()
                .all(|r| matches!(r, Err(HttpError::Unauthorized(_))))
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "only the first request reached the server"
        );
        assert_eq!(c.requests_sent(), 1);
    }

    #[test]
    fn a_429_is_the_lockout_only_after_a_401() {
        let c = client_for("https://cloud.example.com", "");
        assert_eq!(c.judge("GET /a", 429), Ok(()));
        assert_eq!(c.judge("GET /a", 207), Ok(()));
        assert!(matches!(
            c.judge("GET /a", 401),
            Err(HttpError::Unauthorized(_))
        ));
        match c.judge("GET /b", 429) {
            Err(HttpError::Unauthorized(m)) => {
                assert!(m.contains("brute-force") && m.contains("GET /b"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn redirects_come_back_untouched() {
        let (base, seen) = server(|_| {
            reply(
                "302 Found",
                "Location: https://elsewhere.example/login\r\n",
                "",
            )
        });
        let c = client_for(&base, "");
        let resp = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/index.php"
            )))
            .unwrap();
        assert_eq!(resp.status, 302);
        assert!(
            resp.headers
                .iter()
                .any(|(n, v)| n == "location" && v.contains("elsewhere"))
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn send_all_keeps_order_and_caps_bodies() {
        let big = "x".repeat((1 << 20) + 1);
        let (base, _seen) = server(move |_| reply("200 OK", "", &big));
        let c = client_for(
            &base,
            "[limits]\nmax_body_mib = 1\nmax_concurrent_requests = 3",
        );
        let results = c
            .send_all(vec![
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/big")),
                OutgoingRequest::get("https://other.example/"),
            ])
            .unwrap();
        assert_eq!(results.len(), 2);
        assert!(matches!(&results[0], Err(HttpError::TooLarge(m)) if m.contains("max_body_mib")));
        assert!(matches!(&results[1], Err(HttpError::Refused(_))));

        let (base, seen) = server(|i| reply("200 OK", "", &format!("answer-{i}")));
        let c = client_for(&base, "[limits]\nmax_concurrent_requests = 3");
        let paths: Vec<String> = (0..7)
            .map(|i| format!("{base}/remote.php/dav/files/alice/r{i}"))
            .collect();
        let results = c
            .send_all(paths.iter().map(OutgoingRequest::get).collect())
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 7);
        for (i, r) in results.into_iter().enumerate() {
            let mut r = r.unwrap();
            let body = String::from_utf8(read_all(&mut r.body)).unwrap();
            // The server numbers answers in arrival order; find which request got it.
            let n: usize = body.trim_start_matches("answer-").parse().unwrap();
            assert!(
                seen[n].contains(&format!("GET /remote.php/dav/files/alice/r{i} ")),
                "{i}: {}",
                seen[n]
            );
        }
        assert_eq!(c.requests_sent(), 7);
    }

    #[test]
    fn buffered_answers_held_across_calls_are_capped_until_dropped() {
        let body = "y".repeat(100 * 1024);
        let (base, _seen) = server(move |_| reply("200 OK", "", &body));
        let c = client_for(
            &base,
            "[limits]\nmax_buffered_mib = 1\nmax_concurrent_requests = 1",
        );
        let one = || {
            c.send_all(vec![OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/a"
            ))])
        };
        let mut kept = Vec::new();
        let exceeded = loop {
            match one() {
                Ok(mut answers) => kept.push(answers.pop().unwrap().unwrap()),
                Err(e) => break e,
            }
            assert!(
                kept.len() <= 10,
                "1 MiB holds at most ten answers of 100 KiB"
            );
        };
        assert!(kept.len() >= 5, "only {} answers fit", kept.len());
        assert_eq!(exceeded.limit_mib, 1);
        assert_eq!(c.buffered_bytes(), kept.len() as u64 * 100 * 1024);
        // Reading one to the end gives its bytes back; dropping the rest too.
        read_all(&mut kept[0].body);
        assert_eq!(c.buffered_bytes(), (kept.len() as u64 - 1) * 100 * 1024);
        drop(kept);
        assert_eq!(c.buffered_bytes(), 0);
        assert!(one().is_ok());
    }

    #[test]
    fn a_trickling_answer_ends_at_the_response_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // Three answers that never end: a byte every 50 ms, far inside the
        // per-read timeout.
        std::thread::spawn(move || {
            for stream in listener.incoming().take(3) {
                let mut s = stream.unwrap();
                let _ = read_request(&s);
                std::thread::spawn(move || {
                    let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
                    let _ = s.write_all(head.as_bytes());
                    while s.write_all(b"z").is_ok() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
            }
        });
        let c = client_for(
            &base,
            "[limits]\nhttp_timeout_seconds = 30\nmax_response_seconds = 1",
        );
        let started = Instant::now();
        let mut streamed = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/s"
            )))
            .unwrap();
        let err = loop {
            match streamed.body.read_chunk(1024) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the answer ended"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(&err, HttpError::Timeout(m) if m.contains("limits.max_response_seconds")),
            "{err:?}"
        );
        let buffered = c
            .send_all(vec![OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/b"
            ))])
            .unwrap();
        assert!(
            matches!(&buffered[0], Err(HttpError::Timeout(m)) if m.contains("limits.max_response_seconds")),
            "{:?}",
            buffered[0].as_ref().err()
        );
        // The host's own request (the user id, before the connector runs) too.
        let own = c.send_for_host(OutgoingRequest::get(format!(
            "{base}/ocs/v2.php/cloud/user"
        )));
        assert!(
            matches!(&own, Err(HttpError::Timeout(m)) if m.contains("limits.max_response_seconds")),
            "{own:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn unreachable_server_is_a_connection_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let c = client_for(&base, "");
        let r = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/"
        )));
        assert!(matches!(r, Err(HttpError::Connection(_))), "{:?}", r.err());
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hold = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let _ = read_request(&s);
            // Keep the connection open without answering until the client gives up.
            let mut buf = [0u8; 1];
            let _ = (&s).read(&mut buf);
        });
        let c = client_for(&base, "[limits]\nhttp_timeout_seconds = 1");
        let r = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/slow"
        )));
        assert!(matches!(r, Err(HttpError::Timeout(_))), "{:?}", r.err());
        assert_eq!(c.requests_sent(), 1, "a timeout is not retried");
        hold.join().unwrap();
    }

    #[test]
    fn chunk_reads_respect_max_and_the_cap() {
        let mut b = ResponseBody::buffered(vec![7; (MAX_CHUNK as usize) + 10], String::new(), None);
        assert_eq!(b.read_chunk(0).unwrap(), Some(vec![]));
        assert_eq!(b.read_chunk(3).unwrap().unwrap().len(), 3);
        assert_eq!(
            b.read_chunk(u32::MAX).unwrap().unwrap().len(),
            MAX_CHUNK as usize
        );
        assert_eq!(b.read_chunk(u32::MAX).unwrap().unwrap().len(), 7);
        assert_eq!(b.read_chunk(10).unwrap(), None);
        assert_eq!(b.read_chunk(10).unwrap(), None);
    }

    // ----- retries ---------------------------------------------------------

    #[test]
    fn a_503_is_retried_with_backoff_and_every_attempt_counts() {
        let (base, seen) = server(|i| match i {
            0 | 1 => reply("503 Service Unavailable", "", ""),
            _ => reply("200 OK", "", "fine"),
        });
        let (c, time) = paced_client(&base, "", StopFlag::new());
        let mut r = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/x"
            )))
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(read_all(&mut r.body), b"fine");
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(c.requests_sent(), 3);
        assert_eq!(c.retries(), 2);
        // Full jitter below 0.5 s, then below 1 s; no rate-limit waits.
        assert!(time.now() < Duration::from_millis(1500), "{:?}", time.now());
    }

    #[test]
    fn every_transient_status_is_retried_and_others_are_not() {
        for status in [
            "429 Too Many Requests",
            "502 Bad Gateway",
            "504 Gateway Timeout",
            "423 Locked",
        ] {
            let (base, seen) = server(move |i| match i {
                0 => reply(status, "", ""),
                _ => reply("207 Multi-Status", "", ""),
            });
            let (c, _) = paced_client(&base, "", StopFlag::new());
            let r = c
                .send(OutgoingRequest::get(format!(
                    "{base}/remote.php/dav/files/alice/x"
                )))
                .unwrap();
            assert_eq!(r.status, 207, "{status}");
            assert_eq!(seen.lock().unwrap().len(), 2, "{status}");
        }
        for status in [
            "500 Internal Server Error",
            "404 Not Found",
            "403 Forbidden",
        ] {
            let (base, seen) = server(move |_| reply(status, "", ""));
            let (c, time) = paced_client(&base, "", StopFlag::new());
            let r = c
                .send(OutgoingRequest::get(format!(
                    "{base}/remote.php/dav/files/alice/x"
                )))
                .unwrap();
            assert_eq!(r.status.to_string(), status[..3], "{status}");
            assert_eq!(seen.lock().unwrap().len(), 1, "{status}");
            assert_eq!(time.now(), Duration::ZERO);
        }
    }

    #[test]
    fn retry_after_in_seconds_is_honoured_beyond_the_backoff_cap() {
        let (base, _seen) = server(|i| match i {
            0 => reply(
                "503 Service Unavailable",
                "Retry-After: 45\r\nX-Nextcloud-Maintenance-Mode: 1\r\n",
                "",
            ),
            _ => reply("200 OK", "", ""),
        });
        let (c, time) = paced_client(&base, "", StopFlag::new());
        assert_eq!(
            c.send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/x"
            )))
            .unwrap()
            .status,
            200
        );
        assert_eq!(time.now(), Duration::from_secs(45));
    }

    #[test]
    fn retry_after_as_a_date_is_honoured() {
        let date = httpdate::fmt_http_date(wall_start() + Duration::from_secs(7));
        let (base, _seen) = server(move |i| match i {
            0 => reply(
                "429 Too Many Requests",
                &format!("Retry-After: {date}\r\n"),
                "",
            ),
            _ => reply("200 OK", "", ""),
        });
        let (c, time) = paced_client(&base, "", StopFlag::new());
        assert_eq!(
            c.send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/x"
            )))
            .unwrap()
            .status,
            200
        );
        assert_eq!(time.now(), Duration::from_secs(7));
    }

    #[test]
    fn retries_are_bounded_in_count() {
        let (base, seen) = server(|_| reply("503 Service Unavailable", "", ""));
        let (c, _) = paced_client(&base, "", StopFlag::new());
        let r = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/x"
            )))
            .unwrap();
        assert_eq!(r.status, 503, "the last answer goes to the connector");
        assert_eq!(seen.lock().unwrap().len(), 6, "one attempt and 5 retries");
        assert_eq!((c.requests_sent(), c.retries()), (6, 5));

        let (base, seen) = server(|_| reply("503 Service Unavailable", "", ""));
        let (c, _) = paced_client(&base, "[limits]\nmax_retries = 0", StopFlag::new());
        assert_eq!(
            c.send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/x"
            )))
            .unwrap()
            .status,
            503
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn retries_are_bounded_in_total_time() {
        let (base, seen) = server(|_| reply("503 Service Unavailable", "Retry-After: 100\r\n", ""));
        let (c, time) = paced_client(&base, "", StopFlag::new());
        let r = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/x"
            )))
            .unwrap();
        assert_eq!(r.status, 503);
        // 100 s as asked, then the 20 s left of the two minutes, then no more.
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(time.now(), Duration::from_secs(120));
    }

    #[test]
    fn a_connection_reset_before_the_answer_is_retried() {
        // An empty answer: the server hangs up without a byte.
        let (base, seen) = server(|i| match i {
            0 => String::new(),
            _ => reply("200 OK", "", "ok"),
        });
        let (c, _) = paced_client(&base, "", StopFlag::new());
        let r = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/x"
        )));
        assert_eq!(r.map(|r| r.status).map_err(|e| e.to_string()), Ok(200));
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert_eq!(c.retries(), 1);
    }

    #[test]
    fn a_body_that_breaks_midway_is_an_error_not_a_retry() {
        let (base, seen) = server(|_| {
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly part"
                .to_string()
        });
        let (c, _) = paced_client(&base, "", StopFlag::new());
        let mut r = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/x"
            )))
            .unwrap();
        let mut got = Vec::new();
        let err = loop {
            match r.body.read_chunk(1024) {
                Ok(Some(chunk)) => got.extend(chunk),
                Ok(None) => panic!("a short body must not end cleanly"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, b"only part");
        assert!(matches!(err, HttpError::Connection(_)), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_401_is_never_retried_and_nothing_is_sent_after_it() {
        let (base, seen) = server(|i| match i {
            0 => reply("503 Service Unavailable", "", ""),
            _ => reply("401 Unauthorized", "", ""),
        });
        let (c, _) = paced_client(&base, "", StopFlag::new());
        let r = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/x"
        )));
        assert!(
            matches!(&r, Err(HttpError::Unauthorized(m)) if m.contains("app password")),
            "{:?}",
            r.err()
        );
        let later = c
            .send_all(vec![
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/a")),
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/b")),
            ])
            .unwrap();
        assert!(
            later
                .iter()
                .all(|r| matches!(r, Err(HttpError::Unauthorized(m)) if m.starts_with("not sent")))
        );
        assert_eq!(seen.lock().unwrap().len(), 2, "the 503, then the 401");
        assert_eq!(c.requests_sent(), 2);
    }

    #[test]
    fn a_429_after_a_401_is_the_lockout_and_is_not_retried() {
        // The credentials worked once (so a batch no longer sends its first
        // request alone), then were revoked: two requests of one send-all
        // are both on the server before the first is answered 401; the
        // second is answered 429 only once the client has seen that 401:
        // then it is the brute-force lockout.
        let client: Arc<std::sync::OnceLock<Arc<HttpClient>>> = Arc::default();
        let both_arrived = Arc::new(std::sync::Barrier::new(2));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        {
            let client = client.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten().take(3) {
                    let (client, both_arrived) = (client.clone(), both_arrived.clone());
                    std::thread::spawn(move || {
                        let head = read_request(&stream);
                        if head.starts_with("GET /remote.php/dav/files/alice/ok ") {
                            let _ = (&stream).write_all(reply("200 OK", "", "").as_bytes());
                            return;
                        }
                        both_arrived.wait();
                        let mut stream = stream;
                        if head.starts_with("GET /remote.php/dav/files/alice/first ") {
                            let _ = stream.write_all(reply("401 Unauthorized", "", "").as_bytes());
                        } else {
                            let c = client.get().expect("the client is set before sending");
                            let deadline = Instant::now() + Duration::from_secs(30);
                            while !c.credentials_rejected() && Instant::now() < deadline {
                                std::thread::yield_now();
                            }
                            let _ =
                                stream.write_all(reply("429 Too Many Requests", "", "").as_bytes());
                        }
                    });
                }
            });
        }
        let (c, _) = paced_client(&base, "", StopFlag::new());
        let c = Arc::new(c);
        client.set(c.clone()).unwrap();
        let ok = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/ok"
        )));
        assert_eq!(ok.unwrap().status, 200);
        let results = c
            .send_all(vec![
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/first")),
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/second")),
            ])
            .unwrap();
        assert!(matches!(&results[0], Err(HttpError::Unauthorized(m)) if m.contains("401")));
        match &results[1] {
            Err(HttpError::Unauthorized(m)) => {
                assert!(m.contains("429") && m.contains("brute-force"), "{m}")
            }
            other => panic!("{:?}", other.as_ref().map(|r| r.status)),
        }
        assert_eq!(c.requests_sent(), 3, "the 429 was not retried");
        assert_eq!(c.retries(), 0);
    }

    #[test]
    fn a_batch_sent_before_the_credentials_worked_costs_one_failed_login() {
        let (base, seen) = server(|_| reply("401 Unauthorized", "", ""));
        let (c, _) = paced_client(&base, "", StopFlag::new());
        let paths = ["a", "b", "c", "d"];
        let results = c
            .send_all(
                paths
                    .iter()
                    .map(|p| OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/{p}")))
                    .collect(),
            )
            .unwrap();
        assert!(matches!(&results[0], Err(HttpError::Unauthorized(m)) if m.contains("401")));
        assert!(
            results[1..]
                .iter()
                .all(|r| matches!(r, Err(HttpError::Unauthorized(m)) if m.starts_with("not sent")))
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "one failed login");
    }

    #[test]
    fn once_the_credentials_worked_a_batch_runs_concurrently() {
        // The batch's answers wait (a while) for both its requests to be on
        // the server: sent one after the other, the first waits in vain.
        let arrived = Arc::new(AtomicUsize::new(0));
        let together = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        {
            let together = together.clone();
            std::thread::spawn(move || {
                for (i, stream) in listener.incoming().flatten().take(3).enumerate() {
                    let (arrived, together) = (arrived.clone(), together.clone());
                    std::thread::spawn(move || {
                        read_request(&stream);
                        if i > 0 {
                            arrived.fetch_add(1, Ordering::SeqCst);
                            let deadline = Instant::now() + Duration::from_secs(5);
                            while arrived.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                            if arrived.load(Ordering::SeqCst) == 2 {
                                together.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        let _ = (&stream).write_all(reply("200 OK", "", "").as_bytes());
                    });
                }
            });
        }
        let (c, _) = paced_client(&base, "", StopFlag::new());
        let first = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/first"
        )));
        assert_eq!(first.unwrap().status, 200);
        let results = c
            .send_all(vec![
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/a")),
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/b")),
            ])
            .unwrap();
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().is_ok_and(|r| r.status == 200))
        );
        assert_eq!(
            together.load(Ordering::SeqCst),
            2,
            "both were in flight at once"
        );
    }

    // ----- pace --------------------------------------------------------------

    #[test]
    fn the_rate_limit_holds_across_send_and_send_all() {
        let (base, seen) = server(|_| reply("200 OK", "", ""));
        let (c, time) = paced_client(
            &base,
            "[limits]\nrequests_per_second = 5\nmax_concurrent_requests = 2",
            StopFlag::new(),
        );
        for i in 0..3 {
            c.send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/s{i}"
            )))
            .unwrap();
        }
        let results = c
            .send_all(
                (0..9)
                    .map(|i| {
                        OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/a{i}"))
                    })
                    .collect(),
            )
            .unwrap();
        assert!(results.iter().all(|r| r.is_ok()));
        assert_eq!(seen.lock().unwrap().len(), 12);
        // 12 attempts, a burst of 5, then 5 a second.
        let at_least = Duration::from_millis((12 - 5) * 1000 / 5);
        assert!(time.now() >= at_least, "{:?}", time.now());
        assert!(
            time.now() <= at_least + Duration::from_millis(5),
            "{:?}",
            time.now()
        );
    }

    /// A server that answers each connection on its own thread and counts
    /// how many requests it holds at once (from the first byte read to the
    /// last written).
    fn concurrent_server() -> (
        String,
        Arc<std::sync::atomic::AtomicUsize>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::AtomicUsize;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (n, m) = (now.clone(), most.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (n, m) = (n.clone(), m.clone());
                std::thread::spawn(move || {
                    let mut first = [0u8; 1];
                    if stream.peek(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let held = n.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(held, Ordering::SeqCst);
                    let _ = read_request(&stream);
                    let mut stream = stream;
                    let _ =
                        stream.write_all(reply("200 OK", "", &"z".repeat(64 * 1024)).as_bytes());
                    n.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (base, now, most)
    }

    #[test]
    fn send_all_never_has_more_than_the_cap_in_flight() {
        let (base, _now, most) = concurrent_server();
        let c = client_for(&base, "[limits]\nmax_concurrent_requests = 3");
        let results = c
            .send_all(
                (0..24)
                    .map(|i| OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/{i}")))
                    .collect(),
            )
            .unwrap();
        assert!(results.iter().all(|r| r.is_ok()));
        assert!(
            most.load(Ordering::SeqCst) <= 3,
            "{}",
            most.load(Ordering::SeqCst)
        );
        assert!(c.peak_in_flight() <= 3);
        assert_eq!(c.pace.available(), 3, "every slot freed");
    }

    #[test]
    fn open_answers_hold_their_slot() {
        let (base, seen) = server(|_| reply("200 OK", "", "abcdefgh"));
        let c = client_for(&base, "[limits]\nmax_concurrent_requests = 2");
        let mut a = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/a"
            )))
            .unwrap();
        let b = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/b"
            )))
            .unwrap();
        let refused = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/c"
        )));
        assert!(
            matches!(&refused, Err(HttpError::Refused(m)) if m.contains("max_concurrent_requests")),
            "{:?}",
            refused.err()
        );
        let batch = c
            .send_all(vec![OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/d"
            ))])
            .unwrap();
        assert!(matches!(&batch[0], Err(HttpError::Refused(_))));
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "nothing was sent while both were open"
        );
        // Reading one to the end frees its slot; dropping the other too.
        assert_eq!(read_all(&mut a.body), b"abcdefgh");
        c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/c"
        )))
        .unwrap();
        drop(b);
        let batch = c
            .send_all(vec![
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/e")),
                OutgoingRequest::get(format!("{base}/remote.php/dav/files/alice/f")),
            ])
            .unwrap();
        assert!(batch.iter().all(|r| r.is_ok()));
    }

    // ----- stop ---------------------------------------------------------------

    #[test]
    fn a_stop_refuses_new_requests_and_ends_reads_after_the_next_commit() {
        let (base, seen) = server(|_| reply("200 OK", "", "0123456789ab"));
        let stop = StopFlag::new();
        let (c, _) = paced_client(&base, "", stop.clone());
        let mut open = c
            .send(OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/a"
            )))
            .unwrap();
        assert_eq!(open.body.read_chunk(4).unwrap().unwrap(), b"0123");
        stop.request();
        assert!(c.stopping());
        let refused = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/b"
        )));
        assert!(
            matches!(&refused, Err(HttpError::Refused(m)) if m.contains("stopping")),
            "{:?}",
            refused.err()
        );
        let batch = c
            .send_all(vec![OutgoingRequest::get(format!(
                "{base}/remote.php/dav/files/alice/c"
            ))])
            .unwrap();
        assert!(matches!(&batch[0], Err(HttpError::Refused(_))));
        // The batch in flight goes on until the connector commits it.
        assert_eq!(open.body.read_chunk(4).unwrap().unwrap(), b"4567");
        c.committed();
        let cut = open.body.read_chunk(4);
        assert!(
            matches!(&cut, Err(HttpError::Connection(m)) if m.contains("stopping")),
            "{cut:?}"
        );
        assert_eq!(open.body.read_chunk(4).unwrap(), None);
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(c.pace.available(), 5, "the cut answer freed its slot");
    }

    /// A clock whose first sleep asks for a stop, as a signal during a wait would.
    struct StopDuringSleep(ManualTime, StopFlag);

    impl Timekeeper for StopDuringSleep {
        fn now(&self) -> Duration {
            self.0.now()
        }
        fn wall(&self) -> std::time::SystemTime {
            self.0.wall()
        }
        fn sleep(&self, d: Duration) {
            self.1.request();
            self.0.sleep(d);
        }
    }

    #[test]
    fn a_stop_ends_a_backoff_wait_without_another_attempt() {
        let (base, seen) = server(|_| reply("503 Service Unavailable", "Retry-After: 60\r\n", ""));
        let stop = StopFlag::new();
        let time = Arc::new(StopDuringSleep(ManualTime::new(wall_start()), stop.clone()));
        let c = paced_client_on(&base, "", stop, time.clone());
        let r = c.send(OutgoingRequest::get(format!(
            "{base}/remote.php/dav/files/alice/x"
        )));
        assert!(
            matches!(&r, Err(HttpError::Refused(m)) if m.contains("stopping")),
            "{:?}",
            r.err()
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert!(time.0.now() < Duration::from_secs(1), "{:?}", time.0.now());
    }

    #[test]
    fn debug_hides_the_credential() {
        let c = client_for("https://cloud.example.com", "");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("app-pass-word") && !dbg.contains("YWxpY2U6"),
            "{dbg}"
        );
    }
}
