//! WebDAV on `/remote.php/dav/files/{user}/` (and the legacy `/remote.php/webdav/`):
//! streamed PROPFIND, GET/HEAD with single ranges, OPTIONS.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};
use tokio::sync::mpsc;

use crate::content::{Content, download_type};
use crate::encode::{href_path, percent_decode, rawurlencode};
use crate::http::{
    CSP_DAV, ChannelBody, Chunk, DAV_HEADER, Resp, XML_TYPE, builder, finish, header_str, hv,
    sabre_error,
};
use crate::props::{
    MULTISTATUS_CLOSE, MULTISTATUS_OPEN, Selection, parse_propfind, write_foreign_home,
};
use crate::sim::{Simulator, State};
use crate::tree::{Kind, segments};
use crate::view::{Ctx, UserView};
use crate::walk::{Render, Walk};
use crate::{audit, proppatch, write};

/// Responses per chunk of a streamed multistatus (~250 KB of XML).
const ENTRIES_PER_CHUNK: usize = 256;
const FILE_CHUNK: u64 = 64 * 1024;
const NOT_FOUND: &str = "Sabre\\DAV\\Exception\\NotFound";

pub const FINITE_DEPTH_BODY: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\"><d:propfind-finite-depth/></d:error>";

/// Where a DAV request points: the href prefix of the home it addresses, whose
/// home that is, and the still-encoded path below it.
pub struct Target {
    pub href_base: String,
    pub user: String,
    pub rel: String,
}

pub async fn handle(
    sim: &Simulator,
    me: usize,
    method: &Method,
    target: Target,
    headers: &HeaderMap,
    body: Body,
) -> Resp {
    let Some(path) = percent_decode(&target.rel) else {
        return sabre_error(
            StatusCode::BAD_REQUEST,
            "Sabre\\DAV\\Exception\\BadRequest",
            "The request path is not valid percent-encoded UTF-8",
        );
    };
    if target.user != sim.lock().users[me].spec.user_id {
        return foreign(method, &target, &path, headers, body).await;
    }
    match method.as_str() {
        "PROPFIND" => propfind(sim, me, &target, &path, headers, body).await,
        "GET" => get(sim, me, &path, headers, false),
        "HEAD" => get(sim, me, &path, headers, true),
        "OPTIONS" => options(),
        // SEARCH is only answered at the DAV root (the search arbiter).
        "SEARCH" => write::not_implemented("SEARCH"),
        "PUT" | "MKCOL" | "DELETE" | "MOVE" | "COPY" => {
            write::handle(sim, me, method, &path, headers, body).await
        }
        "PROPPATCH" => proppatch::handle(sim, me, &target, &path, body).await,
        other => write::not_implemented(other),
    }
}

enum Depth {
    N(u32),
    Infinity,
}

/// Sabre's `getHTTPDepth(1)`: exactly "infinity", digits, or the default.
fn depth(headers: &HeaderMap) -> Depth {
    match header_str(headers, "depth").map(str::trim) {
        Some("infinity") => Depth::Infinity,
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
            Depth::N(d.parse().unwrap_or(u32::MAX))
        }
        _ => Depth::N(1),
    }
}

fn minimal(headers: &HeaderMap) -> bool {
    header_str(headers, "prefer").is_some_and(|p| p.contains("return=minimal"))
        || header_str(headers, "brief").is_some_and(|b| b.trim().eq_ignore_ascii_case("t"))
}

async fn read_body(body: Body) -> Result<Bytes, Resp> {
    axum::body::to_bytes(body, 1 << 20).await.map_err(|e| {
        sabre_error(
            StatusCode::BAD_REQUEST,
            "Sabre\\DAV\\Exception\\BadRequest",
            &e.to_string(),
        )
    })
}

async fn parse_body(body: Body) -> Result<Selection, Resp> {
    let bytes = read_body(body).await?;
    parse_propfind(&bytes).map_err(|msg| {
        sabre_error(
            StatusCode::BAD_REQUEST,
            "Sabre\\DAV\\Exception\\BadRequest",
            &msg,
        )
    })
}

pub fn multistatus_builder() -> axum::http::response::Builder {
    builder(StatusCode::MULTI_STATUS)
        .header("Content-Security-Policy", CSP_DAV)
        .header(header::CONTENT_TYPE, XML_TYPE)
        .header(header::VARY, "Brief,Prefer")
        .header("DAV", DAV_HEADER)
}

async fn propfind(
    sim: &Simulator,
    me: usize,
    target: &Target,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Resp {
    let sel = match parse_body(body).await {
        Ok(sel) => sel,
        Err(resp) => return resp,
    };
    let depth = depth(headers);
    if matches!(depth, Depth::Infinity) && sim.lock().opts.refuse_depth_infinity {
        return finish(
            builder(StatusCode::FORBIDDEN)
                .header("Content-Security-Policy", CSP_DAV)
                .header(header::CONTENT_TYPE, XML_TYPE),
            FINITE_DEPTH_BODY,
        );
    }
    let (start, ctx, href) = {
        let st = sim.lock();
        let (id, ctx) = match UserView::new(&st, me).resolve(path) {
            Ok(found) => found,
            Err(msg) => {
                return with_dav_headers(sabre_error(StatusCode::NOT_FOUND, NOT_FOUND, &msg));
            }
        };
        if unavailable(&st, id) {
            return with_dav_headers(storage_unavailable());
        }
        let mut href = target.href_base.clone();
        let rel = href_path(path);
        if !rel.is_empty() {
            href.push_str(&rel);
            if st.tree.node(id).expect("found").is_folder() {
                href.push('/');
            }
        }
        (id, ctx, href)
    };
    let max_depth = match depth {
        Depth::Infinity => None,
        Depth::N(n) => Some(n),
    };
    let body = stream_multistatus(
        sim.clone(),
        me,
        (start, ctx),
        href,
        max_depth,
        sel,
        minimal(headers),
    );
    finish(multistatus_builder(), body)
}

/// Whether `id` is on an unavailable external storage (it or a folder above it).
pub fn unavailable(st: &State, id: u64) -> bool {
    let mut at = Some(id);
    while let Some(i) = at {
        if st.unavailable.contains(&i) {
            return true;
        }
        at = st.tree.node(i).and_then(|n| n.parent);
    }
    false
}

/// What Nextcloud answers for a path on an external storage it cannot reach.
pub fn storage_unavailable() -> Resp {
    sabre_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sabre\\DAV\\Exception\\ServiceUnavailable",
        "Storage is temporarily not available",
    )
}

fn with_dav_headers(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    h.insert(header::VARY, hv("Brief,Prefer"));
    h.insert("DAV", hv(DAV_HEADER));
    resp
}

/// Renders the multistatus on a blocking thread, one chunk per lock, so a
/// million-entry answer never exists in memory as a whole.
fn stream_multistatus(
    sim: Simulator,
    me: usize,
    start: (u64, Ctx),
    href: String,
    max_depth: Option<u32>,
    sel: Selection,
    minimal: bool,
) -> Body {
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    tokio::task::spawn_blocking(move || {
        let render = Render {
            sel: &sel,
            user: me,
            minimal,
        };
        let mut walk = Walk::new(start.0, href, start.1, max_depth);
        let mut buf = String::from(MULTISTATUS_OPEN);
        loop {
            let done = {
                let st = sim.lock();
                walk.step(&st, &mut buf, ENTRIES_PER_CHUNK, &render)
            };
            if done {
                buf.push_str(MULTISTATUS_CLOSE);
            }
            let chunk = Bytes::from(std::mem::take(&mut buf));
            // A closed channel means the client went away.
            if tx.blocking_send(Ok(chunk)).is_err() || done {
                break;
            }
        }
    });
    Body::from_stream(ChannelBody(rx))
}

/// Another user's home: 207 with only `resourcetype` at its root, 404 below.
async fn foreign(
    method: &Method,
    target: &Target,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Resp {
    let first = segments(path).next();
    match (method.as_str(), first) {
        ("PROPFIND", None) => {
            let sel = match parse_body(body).await {
                Ok(sel) => sel,
                Err(resp) => return resp,
            };
            let mut out = String::from(MULTISTATUS_OPEN);
            write_foreign_home(&mut out, &target.href_base, &sel, minimal(headers));
            out.push_str(MULTISTATUS_CLOSE);
            finish(multistatus_builder(), out)
        }
        (_, Some(first)) => {
            let msg = format!("File not found: {first} in '{}'", target.user);
            let resp = sabre_error(StatusCode::NOT_FOUND, NOT_FOUND, &msg);
            if method == "PROPFIND" {
                with_dav_headers(resp)
            } else {
                resp
            }
        }
        // Nothing of another user's home may be changed.
        (m, None) if !audit::is_read_method(m) => sabre_error(
            StatusCode::FORBIDDEN,
            "Sabre\\DAV\\Exception\\Forbidden",
            "Permission denied to change another user's home",
        ),
        _ => dummy_get(),
    }
}

fn options() -> Resp {
    finish(
        builder(StatusCode::OK)
            .header("Content-Security-Policy", CSP_DAV)
            .header(
                header::ALLOW,
                "OPTIONS, GET, HEAD, DELETE, PROPFIND, PUT, PROPPATCH, COPY, MOVE, REPORT, SEARCH",
            )
            .header("DAV", DAV_HEADER)
            .header("MS-Author-Via", "DAV")
            .header(header::ACCEPT_RANGES, "bytes")
            .header("DASL", "<DAV:basicsearch>")
            .header(header::CONTENT_TYPE, "text/html; charset=UTF-8"),
        Body::empty(),
    )
}

/// `DummyGetResponsePlugin`: GET on a collection is a 200 with a fixed text.
fn dummy_get() -> Resp {
    finish(
        builder(StatusCode::OK)
            .header("Content-Security-Policy", CSP_DAV)
            .header(header::CONTENT_TYPE, "text/html; charset=UTF-8"),
        "This is the WebDAV interface. It can only be accessed by WebDAV clients such as the Nextcloud desktop sync client.",
    )
}

/// Sabre's `getHTTPRange`: one `bytes=a-b` range, else none (multi-range is ignored).
fn parse_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let spec = value.trim();
    if !spec.get(..6)?.eq_ignore_ascii_case("bytes=") {
        return None;
    }
    let (a, b) = spec[6..].split_once('-')?;
    let num = |s: &str| -> Option<Option<u64>> {
        if s.is_empty() {
            Some(None)
        } else if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok().map(Some)
        } else {
            None
        }
    };
    let (a, b) = (num(a)?, num(b)?);
    if a.is_none() && b.is_none() {
        None
    } else {
        Some((a, b))
    }
}

fn get(sim: &Simulator, me: usize, path: &str, headers: &HeaderMap, head: bool) -> Resp {
    let (content, etag, mtime, name, checksum) = {
        let st = sim.lock();
        let id = match UserView::new(&st, me).resolve(path) {
            Ok((id, _)) => id,
            Err(msg) => return sabre_error(StatusCode::NOT_FOUND, NOT_FOUND, &msg),
        };
        if unavailable(&st, id) {
            return storage_unavailable();
        }
        let node = st.tree.node(id).expect("found");
        match &node.kind {
            Kind::Folder { .. } => return dummy_get(),
            Kind::File {
                content, checksum, ..
            } => (
                content.clone(),
                format!("\"{}\"", node.etag()),
                node.mtime,
                node.name.to_string(),
                checksum.as_deref().map(str::to_string),
            ),
        }
    };
    let size = content.size();
    let last_modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64),
    );
    let encoded = rawurlencode(&name);
    let mut b = builder(StatusCode::OK)
        .header("Content-Security-Policy", CSP_DAV)
        .header(header::CONTENT_TYPE, hv(&download_type(&name)))
        .header(header::LAST_MODIFIED, hv(&last_modified))
        .header(header::ETAG, hv(&etag))
        .header("OC-ETag", hv(&etag))
        .header(
            header::CONTENT_DISPOSITION,
            hv(&format!(
                "attachment; filename*=UTF-8''{encoded}; filename=\"{encoded}\""
            )),
        )
        .header("X-Accel-Buffering", "no");
    if let Some(c) = &checksum {
        b = b.header("OC-Checksum", hv(c));
    }
    if let Some(inm) = header_str(headers, "if-none-match")
        && inm.split(',').any(|t| t.trim() == etag || t.trim() == "*")
    {
        return finish(b.status(StatusCode::NOT_MODIFIED), Body::empty());
    }
    let (mut start, mut end) = (0, size);
    let range = header_str(headers, header::RANGE.as_str())
        .and_then(parse_range)
        .filter(|_| {
            // Sabre: a range is served only while `If-Range` holds.
            size == 0
                || header_str(headers, "if-range").is_none_or(|v| if_range_holds(v, &etag, mtime))
        });
    if let Some((a, z)) = range {
        match a {
            Some(a) => {
                // Sabre treats an end of 0 as "no end" (`$range[1] ? … : $size - 1`).
                let last = z.filter(|&z| z != 0).unwrap_or(size.saturating_sub(1));
                if a >= size {
                    return range_error(&format!(
                        "The start offset ({a}) exceeded the size of the entity ({size})"
                    ));
                }
                if last < a {
                    return range_error(&format!(
                        "The end offset ({}) is lower than the start offset ({a})",
                        z.unwrap_or(0)
                    ));
                }
                start = a;
                end = last.min(size - 1) + 1;
            }
            None => {
                start = size.saturating_sub(z.unwrap_or(0));
                end = size;
            }
        }
        b = b.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{}/{size}", end.saturating_sub(1))),
        );
    }
    b = b.header(header::CONTENT_LENGTH, end - start);
    if head {
        return finish(b, Body::empty());
    }
    finish(b, file_body(content, start, end))
}

/// Sabre's `If-Range` check: a date (anything PHP's `DateTime` parses; here
/// an HTTP date) holds when the file was not modified after it, anything
/// else is an entity tag that must equal the `ETag` header exactly.
fn if_range_holds(value: &str, etag: &str, mtime: i64) -> bool {
    match httpdate::parse_http_date(value.trim()) {
        Ok(date) => {
            let since = date
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            mtime <= since
        }
        Err(_) => value == etag,
    }
}

fn range_error(msg: &str) -> Resp {
    sabre_error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "Sabre\\DAV\\Exception\\RequestedRangeNotSatisfiable",
        msg,
    )
}

/// Small stored files go out in one piece; synthetic ones are generated a
/// chunk at a time as the client reads.
fn file_body(content: Content, start: u64, end: u64) -> Body {
    match content {
        Content::Bytes(_) => Body::from(content.slice(start, end)),
        Content::Synthetic { .. } => {
            let (tx, rx) = mpsc::channel::<Chunk>(2);
            tokio::spawn(async move {
                let mut pos = start;
                while pos < end {
                    let next = (pos + FILE_CHUNK).min(end);
                    let chunk = Bytes::from(content.slice(pos, next));
                    if tx.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                    pos = next;
                }
            });
            Body::from_stream(ChannelBody(rx))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_like_sabre() {
        assert_eq!(parse_range("bytes=0-99"), Some((Some(0), Some(99))));
        assert_eq!(parse_range("bytes=5-"), Some((Some(5), None)));
        assert_eq!(parse_range("bytes=-5"), Some((None, Some(5))));
        assert_eq!(parse_range("bytes=0-1,4-5"), None);
        assert_eq!(parse_range("bytes=-"), None);
        assert_eq!(parse_range("items=0-1"), None);
    }
}
