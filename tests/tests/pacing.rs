//! The host's pace and retries, seen from the server's side: a small proxy
//! in front of the simulator answers some requests itself, and records when
//! each request arrived and how many it held at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nextcloud_sim::SimOptions;
use tests::Account;

/// What the proxy says to the `n`-th request (from 0): `Some` answers it
/// with that raw response; `None` forwards it to the simulator.
type Plan = dyn Fn(usize) -> Option<String> + Send + Sync;

#[derive(Default)]
struct Seen {
    /// When each request arrived, in order.
    arrivals: Mutex<Vec<Instant>>,
    held: AtomicUsize,
    most_held: AtomicUsize,
}

struct Proxy {
    base_url: String,
    seen: Arc<Seen>,
}

impl Proxy {
    /// One request per connection: the proxy answers `Connection: close`.
    fn start(upstream: &str, plan: Box<Plan>) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("the simulator listens on ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let plan: Arc<Plan> = Arc::from(plan);
        let s = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (seen, plan) = (s.clone(), plan.clone());
                std::thread::spawn(move || handle(client, upstream, &seen, &*plan));
            }
        });
        Proxy { base_url, seen }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.seen.arrivals.lock().unwrap().clone()
    }

    fn most_held(&self) -> usize {
        self.seen.most_held.load(Ordering::SeqCst)
    }
}

fn handle(client: TcpStream, upstream: SocketAddr, seen: &Seen, plan: &Plan) {
    let mut reader = BufReader::new(&client);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") && !lower.starts_with("keep-alive:") {
            head.push(line);
        }
    }
    // The request is here: it is in flight until its whole answer is ready.
    let index = {
        let mut arrivals = seen.arrivals.lock().unwrap();
        arrivals.push(Instant::now());
        arrivals.len() - 1
    };
    let held = seen.held.fetch_add(1, Ordering::SeqCst) + 1;
    seen.most_held.fetch_max(held, Ordering::SeqCst);
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);

    let answer = match plan(index) {
        Some(canned) => canned.into_bytes(),
        None => {
            let mut up = TcpStream::connect(upstream).expect("the simulator answers");
            let mut request = head.concat();
            request.push_str("connection: close\r\n\r\n");
            let mut bytes = request.into_bytes();
            bytes.extend(&body);
            up.write_all(&bytes).unwrap();
            let mut answer = Vec::new();
            let _ = up.read_to_end(&mut answer);
            close_after(answer)
        }
    };
    // Counted out before a byte goes back, so that a client that sends its
    // next request on seeing this answer is never counted twice.
    seen.held.fetch_sub(1, Ordering::SeqCst);
    let mut client = client;
    let _ = client.write_all(&answer);
}

/// The simulator's answer with its connection headers replaced by `close`.
fn close_after(answer: Vec<u8>) -> Vec<u8> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut out: String = head
        .split("\r\n")
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("connection:") && !l.starts_with("keep-alive:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str("connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend(&answer[end + 4..]);
    bytes
}

/// Points the account's configuration at `base_url` instead of the simulator.
fn route_through(account: &Account, base_url: &str) {
    let text = std::fs::read_to_string(&account.config_path).unwrap();
    let text = text.replace(&account.server.base_url(), base_url);
    std::fs::write(&account.config_path, text).unwrap();
}

#[test]
fn a_503_twice_then_the_sync_succeeds_with_every_attempt_counted() {
    let account = Account::sample();
    let proxy = Proxy::start(
        &account.server.base_url(),
        Box::new(|n| {
            (n < 2).then(|| {
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nX-Nextcloud-Maintenance-Mode: 1\r\nConnection: close\r\n\r\n".to_string()
            })
        }),
    );
    route_through(&account, &proxy.base_url);
    let report = account.sync().unwrap();
    account.assert_mirrors_server();
    let forwarded = account.sim().request_count();
    assert_eq!(proxy.arrivals().len() as u64, forwarded + 2);
    assert_eq!(report.requests, forwarded + 2, "{report:?}");
    assert_eq!(report.retries, 2, "{report:?}");
}

#[test]
fn rate_and_concurrency_limits_hold_at_the_server() {
    // Folder by folder, so that the connector sends waves with send-all.
    let account = Account::with_settings(
        SimOptions {
            refuse_depth_infinity: true,
            ..SimOptions::default()
        },
        "[limits]\nrequests_per_second = 10\nmax_concurrent_requests = 2",
    );
    account.sim().populate_sample();
    let proxy = Proxy::start(&account.server.base_url(), Box::new(|_| None));
    route_through(&account, &proxy.base_url);

    let started = Instant::now();
    let report = account.sync().unwrap();
    account.assert_mirrors_server();

    let arrivals = proxy.arrivals();
    let m = arrivals.len() as u64;
    assert_eq!(report.requests, m);
    assert!(m > 20, "only {m} requests: too few to see the rate");
    // A burst of 10, then 10 a second: the last request cannot have arrived
    // before (m - 10) / 10 seconds.
    let floor = std::time::Duration::from_millis((m - 10) * 100);
    let last = *arrivals.last().unwrap() - started;
    assert!(
        last >= floor,
        "{m} requests in {last:?}, less than {floor:?}"
    );
    let most = proxy.most_held();
    eprintln!("{m} requests, the last after {last:?}; at most {most} at once");
    assert!(
        (1..=2).contains(&most),
        "{most} requests were in flight at once"
    );
}
