//! Response plumbing shared by the DAV and OCS handlers: the server's fixed
//! headers, Sabre error bodies, Basic auth, and channel-fed streaming bodies.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use base64::Engine as _;
use tokio::sync::mpsc;

use crate::content::splitmix64;
use crate::encode::xml_text;
use crate::sim::State;

pub type Resp = Response<Body>;

pub const DAV_HEADER: &str = "1, 3, extended-mkcol, access-control, calendarserver-principal-property-search, nc-paginate, nextcloud-checksum-update, nc-calendar-search, nc-enable-birthday-calendar";
pub const XML_TYPE: &str = "application/xml; charset=utf-8";
pub const CSP_DAV: &str = "default-src 'none';";

/// Headers every Nextcloud response carries (bar cookies and PHP's banner).
pub fn builder(status: StatusCode) -> axum::http::response::Builder {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Response::builder()
        .status(status)
        .header("Referrer-Policy", "no-referrer")
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "SAMEORIGIN")
        .header("X-Permitted-Cross-Domain-Policies", "none")
        .header("X-Robots-Tag", "noindex, nofollow")
        .header("X-Request-Id", request_id(n))
}

fn request_id(n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let (mut a, mut b) = (splitmix64(n), splitmix64(!n));
    (0..20)
        .map(|i| {
            let src = if i < 10 { &mut a } else { &mut b };
            let c = ALPHABET[(*src % 62) as usize] as char;
            *src /= 62;
            c
        })
        .collect()
}

pub fn finish(b: axum::http::response::Builder, body: impl Into<Body>) -> Resp {
    b.body(body.into()).expect("static headers are valid")
}

/// Sabre's exception document, byte for byte as in the fixtures.
pub fn sabre_error_body(exception: &str, message: &str) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\">\n  <s:exception>",
    );
    xml_text(&mut out, exception);
    out.push_str("</s:exception>\n");
    if message.is_empty() {
        out.push_str("  <s:message/>\n");
    } else {
        out.push_str("  <s:message>");
        xml_text(&mut out, message);
        out.push_str("</s:message>\n");
    }
    out.push_str("</d:error>\n");
    out
}

pub fn sabre_error(status: StatusCode, exception: &str, message: &str) -> Resp {
    finish(
        builder(status)
            .header("Content-Security-Policy", CSP_DAV)
            .header(header::CONTENT_TYPE, XML_TYPE),
        sabre_error_body(exception, message),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    Missing,
    Wrong,
    Ok,
}

/// Basic auth against every account; the index of the user on success.
pub fn check_auth(headers: &HeaderMap, st: &State) -> (Auth, Option<usize>) {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return (Auth::Missing, None);
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return (Auth::Wrong, None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return (Auth::Wrong, None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match decoded
        .as_deref()
        .and_then(|d| d.split_once(':'))
        .and_then(|(login, password)| st.authenticate(login, password))
    {
        Some(idx) => (Auth::Ok, Some(idx)),
        None => (Auth::Wrong, None),
    }
}

/// The DAV 401 as captured: Nextcloud lists why each auth backend refused.
pub fn dav_unauthorized(auth: Auth) -> Resp {
    let message = if auth == Auth::Missing {
        "No public access to this resource., AppAPIAuth has not passed, This request is not for a federated calendar, No 'Authorization: Basic' header found. Either the client didn't send one, or the server is misconfigured, No 'Authorization: Bearer' header found. Either the client didn't send one, or the server is mis-configured, No 'Authorization: Basic' header found. Either the client didn't send one, or the server is misconfigured"
    } else {
        "No public access to this resource., AppAPIAuth has not passed, This request is not for a federated calendar, Username or password was incorrect, No 'Authorization: Bearer' header found. Either the client didn't send one, or the server is mis-configured, Username or password was incorrect"
    };
    finish(
        builder(StatusCode::UNAUTHORIZED)
            .header("Content-Security-Policy", CSP_DAV)
            .header(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"Nextcloud\", charset=\"UTF-8\"",
            )
            .header(header::CONTENT_TYPE, XML_TYPE),
        sabre_error_body("Sabre\\DAV\\Exception\\NotAuthenticated", message),
    )
}

pub type Chunk = Result<Bytes, std::io::Error>;

/// A body fed through a bounded channel, so producers stall (and hold no
/// memory) while the client is slow to read.
pub struct ChannelBody(pub mpsc::Receiver<Chunk>);

impl futures_core::Stream for ChannelBody {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}

pub fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}
