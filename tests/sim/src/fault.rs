//! Fault injection and hostile answers, for tests of a client that must
//! survive a broken server.
//!
//! * [`Faults`]: per-request rates of 500s, 429 bursts without `Retry-After`,
//!   503 maintenance answers, connections closed before any answer, streamed
//!   207s cut mid-element (the HTTP body ending cleanly, as when PHP dies
//!   mid-answer) or dropped mid-body (the connection breaks), and slow answers.
//!   Every decision is drawn from a generator seeded by [`Faults::seed`], in
//!   the order requests arrive: the same requests in the same order meet the
//!   same faults.
//! * [`Intercept`]: the next matching request(s) get a canned answer
//!   ([`Canned`]) or the real answer rewritten by a function — DOCTYPEs,
//!   deep nesting, non-UTF-8 bytes, hrefs outside the user's root, redirects…
//!   — or is held at a [`Gate`] until the test opens it (a kill point).
//! * [`crate::Simulator::set_unavailable`] makes a folder an unavailable
//!   external storage (see there).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};

use crate::content::splitmix64;
use crate::http::{CSP_DAV, Resp, XML_TYPE, builder, finish, sabre_error, sabre_error_body};

/// Rates are fractions of the requests they apply to, from 0 (never) to 1
/// (always); the default injects nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Seeds every decision.
    pub seed: u64,
    /// Answered `500 Internal Server Error` (a Sabre exception body).
    pub error_rate: f64,
    /// Start a burst of 429s without `Retry-After`...
    pub throttle_rate: f64,
    /// ...of this many answers in a row, the first included (0 counts as 1):
    /// every request meanwhile gets one.
    pub throttle_burst: u32,
    /// Answered `503` with `X-Nextcloud-Maintenance-Mode: 1`...
    pub maintenance_rate: f64,
    /// ...and this `Retry-After` in seconds (none when `None`).
    pub retry_after: Option<u32>,
    /// The connection is closed before any byte of an answer.
    pub reset_rate: f64,
    /// A 207's body stops mid-element but the HTTP body ends cleanly.
    pub truncate_rate: f64,
    /// A 207's connection breaks mid-body (no final chunk).
    pub abort_rate: f64,
    /// The answer starts only after `slow_ms` milliseconds.
    pub slow_rate: f64,
    pub slow_ms: u64,
    /// Only requests whose path below the subpath starts with this (e.g.
    /// `/remote.php/dav/`); all requests when `None`.
    pub path_prefix: Option<String>,
}

impl Faults {
    /// No fault at all, with a seed: set the rates wanted on it.
    pub fn seeded(seed: u64) -> Faults {
        Faults {
            seed,
            ..Faults::default()
        }
    }
}

/// How many faults were injected since the faults were set (or the counts reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub errors: u64,
    pub throttled: u64,
    pub maintenance: u64,
    pub resets: u64,
    pub truncated: u64,
    pub aborted: u64,
    pub slowed: u64,
    /// Answers given or rewritten by an [`Intercept`].
    pub intercepted: u64,
}

impl FaultCounts {
    /// Every injected fault (intercepts not included).
    pub fn total(&self) -> u64 {
        self.errors
            + self.throttled
            + self.maintenance
            + self.resets
            + self.truncated
            + self.aborted
            + self.slowed
    }
}

/// A whole answer, sent as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `207 Multi-Status` with an XML content type.
    pub fn multistatus(body: impl Into<Vec<u8>>) -> Canned {
        Canned::new(207, body).header("Content-Type", XML_TYPE)
    }

    /// A `200` with a JSON content type (an OCS answer).
    pub fn json(body: impl Into<Vec<u8>>) -> Canned {
        Canned::new(200, body).header("Content-Type", "application/json; charset=utf-8")
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Canned {
        Canned::new(status, Vec::new()).header("Location", location)
    }

    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub(crate) fn into_response(self) -> Resp {
        let mut b = builder(StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK));
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                b = b.header(n, v);
            }
        }
        finish(b, self.body)
    }
}

/// Rewrites the body of a real answer (the whole of it, buffered).
pub type Rewrite = Arc<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>;

#[derive(Clone)]
enum Action {
    Respond(Canned),
    Rewrite(Rewrite),
    Hold(Arc<Gate>),
}

/// A request held unanswered: the client that sent it waits at a point the
/// test chose (to be killed there, say) until the gate opens, then gets the
/// real answer.
#[derive(Debug)]
pub struct Gate {
    reached: Mutex<bool>,
    arrived: Condvar,
    /// Closed when the gate opens: every holder wakes.
    open: tokio::sync::Semaphore,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            reached: Mutex::new(false),
            arrived: Condvar::new(),
            open: tokio::sync::Semaphore::new(0),
        })
    }

    /// Waits until a request reaches the gate; false after `timeout`.
    pub fn wait_reached(&self, timeout: Duration) -> bool {
        let reached = self.reached.lock().unwrap();
        let (reached, _) = self
            .arrived
            .wait_timeout_while(reached, timeout, |r| !*r)
            .unwrap();
        *reached
    }

    /// Lets every held request (and any later one) through.
    pub fn open(&self) {
        self.open.close();
    }

    pub(crate) async fn pass(&self) {
        *self.reached.lock().unwrap() = true;
        self.arrived.notify_all();
        // Err once closed: the gate is open.
        let _ = self.open.acquire().await;
    }
}

/// Which requests get a hostile answer, and which answer. Matching is on the
/// method, the path below the subpath as sent (still percent-encoded), and
/// optionally a piece of the query and the `Depth` header.
#[derive(Clone)]
pub struct Intercept {
    method: Option<String>,
    path_prefix: String,
    query_contains: Option<String>,
    depth: Option<String>,
    /// How many more requests it answers; `None` is every one.
    times: Option<u32>,
    action: Action,
}

impl std::fmt::Debug for Intercept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intercept")
            .field("method", &self.method)
            .field("path_prefix", &self.path_prefix)
            .field("query_contains", &self.query_contains)
            .field("depth", &self.depth)
            .field("times", &self.times)
            .finish()
    }
}

impl Intercept {
    /// Answers the next request of `method` (any method when empty) below
    /// `path_prefix` with `canned`, once.
    pub fn respond(method: &str, path_prefix: &str, canned: Canned) -> Intercept {
        Intercept::new(method, path_prefix, Action::Respond(canned))
    }

    /// Serves the real answer to the next matching request with its body
    /// passed through `f`, once. The status and headers stay.
    pub fn rewrite(
        method: &str,
        path_prefix: &str,
        f: impl Fn(Vec<u8>) -> Vec<u8> + Send + Sync + 'static,
    ) -> Intercept {
        Intercept::new(method, path_prefix, Action::Rewrite(Arc::new(f)))
    }

    /// Holds the next matching request at a [`Gate`] until the gate opens,
    /// then serves the real answer.
    pub fn hold(method: &str, path_prefix: &str) -> (Intercept, Arc<Gate>) {
        let gate = Gate::new();
        (
            Intercept::new(method, path_prefix, Action::Hold(gate.clone())),
            gate,
        )
    }

    fn new(method: &str, path_prefix: &str, action: Action) -> Intercept {
        Intercept {
            method: (!method.is_empty()).then(|| method.to_ascii_uppercase()),
            path_prefix: path_prefix.to_string(),
            query_contains: None,
            depth: None,
            times: Some(1),
            action,
        }
    }

    /// Only requests whose query contains `piece` (e.g. `sort=asc`).
    pub fn query_contains(mut self, piece: &str) -> Intercept {
        self.query_contains = Some(piece.to_string());
        self
    }

    /// Only requests with this `Depth` header (`0`, `1`, `infinity`).
    pub fn depth(mut self, depth: &str) -> Intercept {
        self.depth = Some(depth.to_string());
        self
    }

    /// Answers this many matching requests (instead of one).
    pub fn times(mut self, n: u32) -> Intercept {
        self.times = Some(n);
        self
    }

    /// Answers every matching request until cleared.
    pub fn always(mut self) -> Intercept {
        self.times = None;
        self
    }

    fn matches(&self, req: &RequestInfo<'_>) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(req.method))
            && req.path.starts_with(&self.path_prefix)
            && self
                .query_contains
                .as_deref()
                .is_none_or(|q| req.query.contains(q))
            && self.depth.as_deref().is_none_or(|d| req.depth == Some(d))
    }
}

/// What a request is, for matching.
pub(crate) struct RequestInfo<'a> {
    pub method: &'a str,
    /// Below the subpath, percent-encoded as sent.
    pub path: &'a str,
    pub query: &'a str,
    pub depth: Option<&'a str>,
}

/// The per-simulator state of faults and intercepts.
#[derive(Default)]
pub(crate) struct FaultState {
    faults: Option<Faults>,
    rng: u64,
    burst_left: u32,
    pub counts: FaultCounts,
    intercepts: VecDeque<Intercept>,
}

/// What happens to one request.
#[derive(Default)]
pub(crate) struct Plan {
    /// Wait this long before answering.
    pub delay_ms: Option<u64>,
    pub early: Option<Early>,
    pub intercept: Option<InterceptAction>,
    /// How a 207 body is to be cut, with the seed of where.
    pub cut: Option<(Cut, u64)>,
}

pub(crate) enum Early {
    /// Close the connection without answering.
    Reset,
    Respond(Resp),
}

pub(crate) enum InterceptAction {
    Respond(Canned),
    Rewrite(Rewrite),
    Hold(Arc<Gate>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The body ends cleanly, short.
    Truncate,
    /// The connection breaks after part of the body.
    Abort,
}

impl FaultState {
    pub fn set(&mut self, faults: Faults) {
        self.rng = splitmix64(faults.seed ^ 0x5eed_fa17);
        self.burst_left = 0;
        self.counts = FaultCounts {
            intercepted: self.counts.intercepted,
            ..FaultCounts::default()
        };
        self.faults = Some(faults);
    }

    pub fn clear(&mut self) {
        self.faults = None;
        self.burst_left = 0;
    }

    pub fn faults(&self) -> Option<&Faults> {
        self.faults.as_ref()
    }

    pub fn push_intercept(&mut self, i: Intercept) {
        self.intercepts.push_back(i);
    }

    pub fn clear_intercepts(&mut self) {
        self.intercepts.clear();
    }

    pub fn intercepts_pending(&self) -> usize {
        self.intercepts.len()
    }

    fn roll(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        (splitmix64(self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Decides the fate of one request; takes the intercept it matches.
    pub fn plan(&mut self, req: &RequestInfo<'_>) -> Plan {
        let mut plan = Plan::default();
        if let Some(f) = self.faults.clone()
            && f.path_prefix
                .as_deref()
                .is_none_or(|p| req.path.starts_with(p))
        {
            // A fixed number of draws per request, whatever is decided.
            let rolls: [f64; 8] = std::array::from_fn(|_| self.roll());
            if self.burst_left > 0 {
                self.burst_left -= 1;
                plan.early = Some(Early::Respond(throttled()));
                self.counts.throttled += 1;
            } else if rolls[0] < f.maintenance_rate {
                plan.early = Some(Early::Respond(maintenance(f.retry_after)));
                self.counts.maintenance += 1;
            } else if rolls[1] < f.throttle_rate {
                self.burst_left = f.throttle_burst.max(1) - 1;
                plan.early = Some(Early::Respond(throttled()));
                self.counts.throttled += 1;
            } else if rolls[2] < f.error_rate {
                plan.early = Some(Early::Respond(internal_error()));
                self.counts.errors += 1;
            } else if rolls[3] < f.reset_rate {
                plan.early = Some(Early::Reset);
                self.counts.resets += 1;
            } else {
                if rolls[4] < f.slow_rate {
                    plan.delay_ms = Some(f.slow_ms);
                    self.counts.slowed += 1;
                }
                let at = (rolls[7] * u64::MAX as f64) as u64;
                if rolls[5] < f.truncate_rate {
                    plan.cut = Some((Cut::Truncate, at));
                } else if rolls[6] < f.abort_rate {
                    plan.cut = Some((Cut::Abort, at));
                }
            }
        }
        if plan.early.is_none()
            && let Some(i) = self.intercepts.iter().position(|i| i.matches(req))
        {
            let hit = &mut self.intercepts[i];
            let action = match &hit.action {
                Action::Respond(c) => InterceptAction::Respond(c.clone()),
                Action::Rewrite(f) => InterceptAction::Rewrite(f.clone()),
                Action::Hold(g) => InterceptAction::Hold(g.clone()),
            };
            if let Some(n) = hit.times.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.intercepts.remove(i);
                }
            }
            self.counts.intercepted += 1;
            plan.intercept = Some(action);
        }
        plan
    }

    /// Counts a cut that was applied (only 207s are cut).
    pub fn count_cut(&mut self, cut: Cut) {
        match cut {
            Cut::Truncate => self.counts.truncated += 1,
            Cut::Abort => self.counts.aborted += 1,
        }
    }
}

fn throttled() -> Resp {
    finish(
        builder(StatusCode::TOO_MANY_REQUESTS)
            .header("Content-Security-Policy", CSP_DAV)
            .header(header::CONTENT_TYPE, XML_TYPE),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:o=\"http://owncloud.org/ns\">\n  <s:exception>OCA\\DAV\\Connector\\Sabre\\Exception\\TooManyRequests</s:exception>\n  <s:message/>\n  <o:hint xmlns:o=\"o:\">too many requests</o:hint>\n</d:error>\n",
    )
}

fn maintenance(retry_after: Option<u32>) -> Resp {
    let mut b = builder(StatusCode::SERVICE_UNAVAILABLE)
        .header("X-Nextcloud-Maintenance-Mode", "1")
        .header(header::CONTENT_TYPE, XML_TYPE);
    if let Some(secs) = retry_after {
        b = b.header(header::RETRY_AFTER, secs.to_string());
    }
    finish(
        b,
        sabre_error_body(
            "Sabre\\DAV\\Exception\\ServiceUnavailable",
            "System is in maintenance mode.",
        ),
    )
}

fn internal_error() -> Resp {
    sabre_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sabre\\DAV\\Exception",
        "Internal Server Error (injected by the simulator)",
    )
}

/// The real answer with its body passed through `f`.
pub(crate) async fn rewrite(resp: Resp, f: &Rewrite) -> Resp {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Resp::from_parts(parts, Body::from(f(bytes)))
}

/// The answer with its body cut somewhere inside it (see [`Cut`]).
pub(crate) fn cut_body(resp: Resp, cut: Cut, at: u64) -> Resp {
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let stream = CutStream {
        inner: Box::pin(body.into_data_stream()),
        held: None,
        cut,
        rng: at,
        state: CutState::Reading,
    };
    Resp::from_parts(parts, Body::from_stream(stream))
}

type DataStream =
    Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, axum::Error>> + Send + 'static>>;

#[derive(PartialEq, Eq)]
enum CutState {
    Reading,
    /// The cut chunk went out; `Abort` still owes the error.
    Cut,
    /// `Abort` waits one poll so that the server sends what it buffered.
    Flushing,
    Done,
}

/// Holds one chunk back so it knows which is the last: each chunk is cut
/// with probability 1/4, the last one surely, at a random offset inside it,
/// so the body always ends before its end.
struct CutStream {
    inner: DataStream,
    held: Option<Bytes>,
    cut: Cut,
    rng: u64,
    state: CutState,
}

impl CutStream {
    fn next_rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix64(self.rng)
    }

    /// The start of `chunk`, strictly shorter than it.
    fn shorten(&mut self, chunk: Bytes) -> Bytes {
        let keep = if chunk.is_empty() {
            0
        } else {
            (self.next_rand() % chunk.len() as u64) as usize
        };
        self.state = CutState::Cut;
        chunk.slice(..keep)
    }
}

impl futures_core::Stream for CutStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.state {
                CutState::Done => return Poll::Ready(None),
                CutState::Cut if self.cut == Cut::Truncate => {
                    self.state = CutState::Done;
                    return Poll::Ready(None);
                }
                // hyper buffers the head and the chunks a body hands it in
                // one go, and drops that buffer unsent when the body fails:
                // an error right behind the cut chunk would often reach the
                // client as a connection closed before any answer. A pending
                // poll makes hyper flush first.
                CutState::Cut => {
                    self.state = CutState::Flushing;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                CutState::Flushing => {
                    self.state = CutState::Done;
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "connection dropped mid-body (injected by the simulator)",
                    ))));
                }
                CutState::Reading => {}
            }
            let next = match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(n) => n,
            };
            match next {
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => {
                    let Some(held) = self.held.replace(chunk) else {
                        continue;
                    };
                    if self.next_rand().is_multiple_of(4) {
                        self.held = None;
                        let short = self.shorten(held);
                        return Poll::Ready(Some(Ok(short)));
                    }
                    return Poll::Ready(Some(Ok(held)));
                }
                Some(Err(e)) => {
                    self.state = CutState::Done;
                    return Poll::Ready(Some(Err(std::io::Error::other(e))));
                }
                None => {
                    let held = self.held.take().unwrap_or_default();
                    let short = self.shorten(held);
                    return Poll::Ready(Some(Ok(short)));
                }
            }
        }
    }
}

/// The panic payload that closes a connection without an answer: resumed
/// with `resume_unwind`, so no panic hook prints it, it ends the connection's
/// task and the socket is closed.
pub(crate) struct ResetConnection;
