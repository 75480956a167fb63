//! The outbound HTTP policy: one place decides what may leave this machine.
//!
//! * Requests go only to the configured origin (scheme, host, port).
//! * The host attaches `Authorization` itself; the connector may not send
//!   credential headers (`authorization`, `proxy-authorization`, `cookie`,
//!   `host`). Framing headers (`content-length`, `transfer-encoding`, …) are
//!   the client's and are dropped.
//! * Redirects are never followed; a 3xx goes back to the connector untouched.
//! * The first 401 latches: every later request of the run is refused without
//!   being sent, so a wrong password cannot walk into Nextcloud's brute-force
//!   lockout (10 failures in 30 minutes block the address).
//! * Timeouts on connect and on every read; buffered bodies are capped.
//!
//! No retries yet: [`HttpClient::dispatch`] is the one place a retry policy
//! (backoff on 429/503) would wrap [`HttpClient::attempt`].

use crate::config::Config;
use crate::origin::Origin;
use crate::secret::Secret;
use base64::Engine as _;
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use ureq::http::{HeaderName, HeaderValue, Method};
use url::Url;

/// The most a single `body.read` hands back, whatever the connector asks for.
pub const MAX_CHUNK: u32 = 1 << 20;

/// The answers of one `send-all` together may hold this many times
/// `max_body_mib`.
pub const BATCH_BUDGET_BODIES: u64 = 4;

/// Headers only the host may set.
const CREDENTIAL_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "host"];
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

/// The host side of the WIT `body` resource: streams from the connection, or
/// hands out bytes already read.
pub struct ResponseBody {
    inner: BodyInner,
    /// `METHOD url`, for error messages.
    what: String,
}

impl ResponseBody {
    pub fn from_bytes(bytes: Vec<u8>) -> ResponseBody {
        ResponseBody {
            inner: BodyInner::Buffered(std::io::Cursor::new(bytes)),
            what: String::new(),
        }
    }

    /// Up to `max` bytes (at most [`MAX_CHUNK`]); `None` once finished.
    pub fn read_chunk(&mut self, max: u32) -> Result<Option<Vec<u8>>, HttpError> {
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
                    self.inner = BodyInner::Finished;
                    return Ok(None);
                }
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.inner = BodyInner::Finished;
                    return Err(io_error(&self.what, e));
                }
            }
        }
    }
}

/// A request that passed the policy, ready to send.
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
    max_concurrent: usize,
    max_body_bytes: u64,
    timeout: Duration,
    requests_sent: AtomicU64,
    credentials_rejected: AtomicBool,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("origin", &self.origin)
            .field("username", &self.username)
            .field("authorization", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(config: &Config, secret: &Secret) -> HttpClient {
        let limits = &config.limits;
        let timeout = Duration::from_secs(limits.http_timeout_seconds);
        let connect = timeout.min(Duration::from_secs(30));
        let agent: ureq::Agent = ureq::Agent::config_builder()
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
            max_concurrent: limits.max_concurrent_requests.max(1) as usize,
            max_body_bytes: u64::from(limits.max_body_mib) << 20,
            timeout,
            requests_sent: AtomicU64::new(0),
            credentials_rejected: AtomicBool::new(false),
        }
    }

    /// Requests that went out on the wire in this run.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent.load(Ordering::SeqCst)
    }

    /// Whether Nextcloud answered 401 in this run.
    pub fn credentials_rejected(&self) -> bool {
        self.credentials_rejected.load(Ordering::SeqCst)
    }

    /// One request; the body streams from the connection.
    pub fn send(&self, request: OutgoingRequest) -> Result<IncomingResponse, HttpError> {
        let prepared = self.prepare(request)?;
        let what = prepared.what();
        let response = self.dispatch(prepared)?;
        let (parts, body) = response.into_parts();
        Ok(IncomingResponse {
            status: parts.status.as_u16(),
            headers: header_list(&parts.headers),
            body: ResponseBody {
                inner: BodyInner::Streaming(body.into_reader()),
                what,
            },
        })
    }

    /// Several requests, up to `max_concurrent_requests` at once, each body
    /// read fully (up to `max_body_mib`); answers in the order asked.
    pub fn send_all(
        &self,
        requests: Vec<OutgoingRequest>,
    ) -> Vec<Result<IncomingResponse, HttpError>> {
        let slots: Vec<Mutex<Option<Result<Prepared, HttpError>>>> = requests
            .into_iter()
            .map(|r| Mutex::new(Some(self.prepare(r))))
            .collect();
        let results: Vec<Mutex<Option<Result<IncomingResponse, HttpError>>>> =
            slots.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        // All answers of one batch together may hold at most this much.
        let budget = AtomicU64::new(self.max_body_bytes.saturating_mul(BATCH_BUDGET_BODIES));
        let work = || {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= slots.len() {
                    break;
                }
                let taken = slots[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                let result = match taken {
                    Some(Ok(prepared)) => self.fetch_buffered(prepared, &budget),
                    Some(Err(e)) => Err(e),
                    None => unreachable!("each slot is taken once"),
                };
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            }
        };
        let workers = self.max_concurrent.min(slots.len());
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    scope.spawn(work);
                }
            });
        }
        results
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .expect("every slot was filled")
            })
            .collect()
    }

    fn fetch_buffered(
        &self,
        prepared: Prepared,
        budget: &AtomicU64,
    ) -> Result<IncomingResponse, HttpError> {
        let what = prepared.what();
        let response = self.dispatch(prepared)?;
        let (parts, mut body) = response.into_parts();
        let cap = self.max_body_bytes;
        let too_large = || {
            HttpError::TooLarge(format!(
                "the answer to {what} is larger than {} MiB (`limits.max_body_mib`)",
                cap >> 20
            ))
        };
        if body.content_length().is_some_and(|n| n > cap) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        body.as_reader()
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(&what, e))?;
        if bytes.len() as u64 > cap {
            return Err(too_large());
        }
        let len = bytes.len() as u64;
        if budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(len)
            })
            .is_err()
        {
            return Err(HttpError::TooLarge(format!(
                "the answer to {what} does not fit: the answers of one send-all may hold {} MiB together ({BATCH_BUDGET_BODIES} x `limits.max_body_mib`); send fewer requests at once",
                (cap * BATCH_BUDGET_BODIES) >> 20
            )));
        }
        Ok(IncomingResponse {
            status: parts.status.as_u16(),
            headers: header_list(&parts.headers),
            body: ResponseBody::from_bytes(bytes),
        })
    }

    /// Applies the policy: origin, method, headers; attaches the credential.
    fn prepare(&self, request: OutgoingRequest) -> Result<Prepared, HttpError> {
        let url = Url::parse(&request.url).map_err(|e| {
            HttpError::Refused(format!("`{}` is not an absolute URL ({e})", request.url))
        })?;
        match Origin::of(&url) {
            Some(o) if o == self.origin => {}
            Some(o) => {
                return Err(HttpError::Refused(format!(
                    "{} is on origin {o}, but this host only sends requests to the configured Nextcloud origin {}",
                    request.url, self.origin
                )));
            }
            None => {
                return Err(HttpError::Refused(format!(
                    "{} is not an http(s) URL on the configured Nextcloud origin {}",
                    request.url, self.origin
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::Refused(
                "URLs with a user name or password are refused; the host attaches the credential"
                    .into(),
            ));
        }
        let method = Method::from_bytes(request.method.as_bytes())
            .ok()
            .filter(|m| *m != Method::CONNECT)
            .ok_or_else(|| {
                HttpError::Refused(format!(
                    "`{}` is not an allowed HTTP method",
                    request.method
                ))
            })?;
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

    /// Sends a prepared request and applies the answer policy (the 401 latch).
    /// A retry policy would loop around `attempt` here.
    fn dispatch(&self, prepared: Prepared) -> Result<ureq::http::Response<ureq::Body>, HttpError> {
        if self.credentials_rejected() {
            return Err(HttpError::Unauthorized(format!(
                "not sent: {}",
                self.rejected_message()
            )));
        }
        let what = prepared.what();
        let response = self.attempt(prepared)?;
        self.judge(&what, response.status().as_u16())?;
        Ok(response)
    }

    /// The answer policy: a 401 latches "credentials rejected" and fails; a
    /// 429 after that is most likely Nextcloud's brute-force lockout.
    fn judge(&self, what: &str, status: u16) -> Result<(), HttpError> {
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
            429 => {
                tracing::warn!(
                    "{what} answered 429 Too Many Requests: the server is throttling this address; if earlier runs used a wrong password, Nextcloud's brute-force protection may have blocked it for 30 minutes"
                );
                Ok(())
            }
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
    fn attempt(&self, prepared: Prepared) -> Result<ureq::http::Response<ureq::Body>, HttpError> {
        let what = prepared.what();
        let mut builder = ureq::http::Request::builder()
            .method(prepared.method)
            .uri(prepared.url.as_str());
        for (name, value) in prepared.headers {
            builder = builder.header(name, value);
        }
        tracing::debug!("sending {what}");
        self.requests_sent.fetch_add(1, Ordering::SeqCst);
        let result = match prepared.body {
            Some(body) => builder
                .body(body)
                .map_err(|e| HttpError::Refused(e.to_string()))
                .and_then(|r| self.agent.run(r).map_err(|e| self.ureq_error(&what, e))),
            None => builder
                .body(())
                .map_err(|e| HttpError::Refused(e.to_string()))
                .and_then(|r| self.agent.run(r).map_err(|e| self.ureq_error(&what, e))),
        };
        if let Ok(r) = &result {
            tracing::debug!("{what} -> {}", r.status());
        }
        result
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

fn header_list(headers: &ureq::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
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

    fn client_for(base: &str, tweak: &str) -> HttpClient {
        let config = Config::from_toml_str(
            &format!("base_url = \"{base}\"\nusername = \"alice\"\ndatabase = \"x\"\n{tweak}"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        HttpClient::new(&config, &Secret::new("app-pass-word"))
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
            "https://CLOUD.example.com:443/elsewhere",
            "https://cloud.example.com/ocs/v2.php/cloud/user?format=json",
        ] {
            let p = c.prepare(OutgoingRequest::get(url)).unwrap();
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
            match c.prepare(OutgoingRequest::get(url)) {
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
                    c.prepare(OutgoingRequest::get(url)),
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
            let mut r = OutgoingRequest::get("https://cloud.example.com/");
            r.headers.push((name.into(), "x".into()));
            match c.prepare(r) {
                Err(HttpError::Refused(m)) => {
                    assert!(m.contains(&name.to_ascii_lowercase()), "{m}")
                }
                other => panic!("{name}: {:?}", other.map(|p| p.url)),
            }
        }
        let mut r = OutgoingRequest::get("https://cloud.example.com/");
        r.headers.push(("Depth".into(), "1".into()));
        r.headers.push(("Content-Length".into(), "999".into()));
        let p = c.prepare(r).unwrap();
        let names: Vec<&str> = p.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["depth", "authorization"]);
        assert!(matches!(
            c.prepare(OutgoingRequest {
                method: "GE T".into(),
                ..OutgoingRequest::get("https://cloud.example.com/")
            }),
            Err(HttpError::Refused(_))
        ));
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

        let second = c.send(OutgoingRequest::get(format!("{base}/status.php")));
        assert!(matches!(second, Err(HttpError::Unauthorized(ref m)) if m.starts_with("not sent")));
        let batch = c.send_all(vec![
            OutgoingRequest::get(format!("{base}/a")),
            OutgoingRequest::get(format!("{base}/b")),
        ]);
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
            .send(OutgoingRequest::get(format!("{base}/index.php")))
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
        let results = c.send_all(vec![
            OutgoingRequest::get(format!("{base}/big")),
            OutgoingRequest::get("https://other.example/"),
        ]);
        assert_eq!(results.len(), 2);
        assert!(matches!(&results[0], Err(HttpError::TooLarge(m)) if m.contains("max_body_mib")));
        assert!(matches!(&results[1], Err(HttpError::Refused(_))));

        let (base, seen) = server(|i| reply("200 OK", "", &format!("answer-{i}")));
        let c = client_for(&base, "[limits]\nmax_concurrent_requests = 3");
        let paths: Vec<String> = (0..7).map(|i| format!("{base}/r{i}")).collect();
        let results = c.send_all(paths.iter().map(OutgoingRequest::get).collect());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 7);
        for (i, r) in results.into_iter().enumerate() {
            let mut r = r.unwrap();
            let body = String::from_utf8(read_all(&mut r.body)).unwrap();
            // The server numbers answers in arrival order; find which request got it.
            let n: usize = body.trim_start_matches("answer-").parse().unwrap();
            assert!(seen[n].contains(&format!("GET /r{i} ")), "{i}: {}", seen[n]);
        }
        assert_eq!(c.requests_sent(), 7);
    }

    #[test]
    fn send_all_caps_the_batch_total() {
        let body = "y".repeat(600 * 1024);
        let (base, _seen) = server(move |_| reply("200 OK", "", &body));
        let c = client_for(
            &base,
            "[limits]\nmax_body_mib = 1\nmax_concurrent_requests = 1",
        );
        // 4 MiB together: six answers of 600 KiB fit, the seventh does not.
        let results = c.send_all(
            (0..8)
                .map(|i| OutgoingRequest::get(format!("{base}/{i}")))
                .collect(),
        );
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 6);
        assert!(results[6..].iter().all(
            |r| matches!(r, Err(HttpError::TooLarge(m)) if m.contains("send fewer requests"))
        ));
    }

    #[test]
    fn unreachable_server_is_a_connection_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let c = client_for(&base, "");
        let r = c.send(OutgoingRequest::get(format!("{base}/")));
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
        let r = c.send(OutgoingRequest::get(format!("{base}/slow")));
        assert!(matches!(r, Err(HttpError::Timeout(_))), "{:?}", r.err());
        hold.join().unwrap();
    }

    #[test]
    fn chunk_reads_respect_max_and_the_cap() {
        let mut b = ResponseBody::from_bytes(vec![7; (MAX_CHUNK as usize) + 10]);
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
