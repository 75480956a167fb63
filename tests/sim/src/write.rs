//! WebDAV writes on a user's own home: PUT, MKCOL, DELETE, MOVE and COPY,
//! answered as Nextcloud 32's Sabre server does and applied through the same
//! `State::op_*` functions the test API uses, so a write over HTTP changes
//! the tree, the etags and the activity stream exactly as a scripted edit.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, header};

use crate::content::Content;
use crate::dav::{storage_unavailable, unavailable};
use crate::encode::percent_decode;
use crate::error::SimError;
use crate::http::{CSP_DAV, Resp, builder, finish, header_str, hv, sabre_error};
use crate::props::INSTANCE_ID;
use crate::server::{dav_target, strip_prefix_dir};
use crate::sim::{Simulator, State};
use crate::tree::segments;
use crate::view::UserView;

/// Uploads above this are refused; the simulator keeps bodies in memory.
const BODY_LIMIT: usize = 64 << 20;

pub async fn handle(
    sim: &Simulator,
    me: usize,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Resp {
    let path = normalize(path);
    match method.as_str() {
        "PUT" => put(sim, me, &path, headers, body).await,
        "MKCOL" => mkcol(sim, me, &path, body).await,
        "DELETE" => delete(sim, me, &path),
        "MOVE" | "COPY" => {
            let copy = method == "COPY";
            match destination(sim, me, headers) {
                Ok(dest) => move_or_copy(sim, me, &path, &dest, headers, copy),
                Err(e) => e.response(),
            }
        }
        other => not_implemented(other),
    }
}

/// "/a//b/" and "a/b" both mean "/a/b"; the root is "".
fn normalize(path: &str) -> String {
    segments(path).fold(String::new(), |mut out, seg| {
        out.push('/');
        out.push_str(seg);
        out
    })
}

/// Sabre's answer to a method no plugin handles (TRACE, LOCK, POST, …).
pub fn not_implemented(method: &str) -> Resp {
    sabre_error(
        StatusCode::NOT_IMPLEMENTED,
        "Sabre\\DAV\\Exception\\NotImplemented",
        &format!(
            "There was no plugin in the system that was willing to handle this {method} method."
        ),
    )
}

pub async fn read_body(body: Body) -> Result<Bytes, Resp> {
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| {
        sabre_error(
            StatusCode::BAD_REQUEST,
            "Sabre\\DAV\\Exception\\BadRequest",
            &e.to_string(),
        )
    })
}

/// The Sabre (or Nextcloud connector) exception a refused tree operation
/// turns into.
pub fn refusal(e: &SimError) -> Resp {
    let (status, exception) = match e {
        SimError::NotFound(_) => (StatusCode::NOT_FOUND, "Sabre\\DAV\\Exception\\NotFound"),
        SimError::Exists(_) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "Sabre\\DAV\\Exception\\MethodNotAllowed",
        ),
        SimError::ParentMissing(_) | SimError::NotAFolder(_) | SimError::IsAFolder(_) => {
            (StatusCode::CONFLICT, "Sabre\\DAV\\Exception\\Conflict")
        }
        SimError::InvalidName(_) => (
            StatusCode::BAD_REQUEST,
            "OCA\\DAV\\Connector\\Sabre\\Exception\\InvalidPath",
        ),
        SimError::InvalidMove(_) | SimError::Root | SimError::PermissionDenied(_) => {
            (StatusCode::FORBIDDEN, "Sabre\\DAV\\Exception\\Forbidden")
        }
        // Not produced by file operations; kept apart so a new variant is
        // a compile error here rather than a silent 500.
        SimError::NotInTrash(_)
        | SimError::UnknownUser(_)
        | SimError::UnknownShare(_)
        | SimError::InvalidShare(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Sabre\\DAV\\Exception"),
    };
    sabre_error(status, exception, &e.to_string())
}

/// Whether `path` or any existing folder above it is an unavailable storage.
fn blocked(st: &State, me: usize, path: &str) -> bool {
    let view = UserView::new(st, me);
    let mut prefix = String::new();
    for seg in segments(path) {
        prefix.push('/');
        prefix.push_str(seg);
        match view.resolve(&prefix) {
            Ok((id, _)) if unavailable(st, id) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// `OC-FileId` as `FilesPlugin::sendFileIdHeader` sends it after a bind.
fn created(status: StatusCode, fileid: u64) -> axum::http::response::Builder {
    builder(status)
        .header("Content-Security-Policy", CSP_DAV)
        .header("OC-FileId", hv(&format!("{fileid:08}{INSTANCE_ID}")))
        .header(header::CONTENT_LENGTH, 0)
}

/// Sabre's conditional-request check for a PUT (`If-Match`, `If-None-Match`).
fn precondition_fails(headers: &HeaderMap, current_etag: Option<&str>) -> bool {
    let listed = |v: &str| {
        v.split(',').any(|t| {
            let t = t.trim();
            t == "*" || current_etag.is_some_and(|e| t == e)
        })
    };
    let if_match = header_str(headers, "if-match").is_some_and(|v| !listed(v));
    let if_none_match = header_str(headers, "if-none-match").is_some_and(listed);
    if_match || (if_none_match && current_etag.is_some())
}

async fn put(sim: &Simulator, me: usize, path: &str, headers: &HeaderMap, body: Body) -> Resp {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // `X-OC-MTime` as `FilesPlugin` reads it: whole seconds, else ignored.
    let mtime = header_str(headers, "x-oc-mtime").and_then(|v| v.trim().parse::<i64>().ok());
    let checksum = header_str(headers, "oc-checksum").map(str::to_string);
    let mut st = sim.lock();
    if blocked(&st, me, path) {
        return storage_unavailable();
    }
    let existing = st.entry_of(me, path);
    if existing.as_ref().is_some_and(|e| e.is_folder) {
        return sabre_error(
            StatusCode::CONFLICT,
            "Sabre\\DAV\\Exception\\Conflict",
            "PUT is not allowed on non-files.",
        );
    }
    let quoted = existing.as_ref().map(|e| format!("\"{}\"", e.etag));
    if precondition_fails(headers, quoted.as_deref()) {
        return sabre_error(
            StatusCode::PRECONDITION_FAILED,
            "Sabre\\DAV\\Exception\\PreconditionFailed",
            "An If-Match or If-None-Match header did not hold",
        );
    }
    let content = Content::Bytes(Arc::from(bytes.as_ref()));
    let result = st.op_put(me, path, content, mtime).and_then(|id| {
        if let Some(c) = &checksum {
            st.op_set_checksum(me, path, Some(c))?;
        }
        Ok(id)
    });
    let id = match result {
        Ok(id) => id,
        Err(SimError::ParentMissing(_)) => {
            return sabre_error(
                StatusCode::CONFLICT,
                "Sabre\\DAV\\Exception\\Conflict",
                "Files cannot be created in non-existent collections",
            );
        }
        Err(e) => return refusal(&e),
    };
    let etag = st
        .entry_of(me, path)
        .map(|e| format!("\"{}\"", e.etag))
        .unwrap_or_default();
    drop(st);
    let status = if existing.is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    };
    let mut b = created(status, id)
        .header(header::ETAG, hv(&etag))
        .header("OC-ETag", hv(&etag));
    if mtime.is_some() {
        b = b.header("X-OC-MTime", "accepted");
    }
    finish(b, Body::empty())
}

async fn mkcol(sim: &Simulator, me: usize, path: &str, body: Body) -> Resp {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // Extended MKCOL (a body with properties) is not served.
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        return sabre_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Sabre\\DAV\\Exception\\UnsupportedMediaType",
            "The request body for the MKCOL request must have an xml Content-Type",
        );
    }
    let mut st = sim.lock();
    if blocked(&st, me, path) {
        return storage_unavailable();
    }
    if st.entry_of(me, path).is_some() {
        return sabre_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Sabre\\DAV\\Exception\\MethodNotAllowed",
            "The resource you tried to create already exists",
        );
    }
    match st.op_mkdir(me, path) {
        Ok(id) => finish(created(StatusCode::CREATED, id), Body::empty()),
        Err(SimError::ParentMissing(_)) => sabre_error(
            StatusCode::CONFLICT,
            "Sabre\\DAV\\Exception\\Conflict",
            "Parent node does not exist",
        ),
        Err(e) => refusal(&e),
    }
}

fn delete(sim: &Simulator, me: usize, path: &str) -> Resp {
    let mut st = sim.lock();
    if blocked(&st, me, path) {
        return storage_unavailable();
    }
    match st.op_delete(me, path) {
        Ok(()) => finish(
            builder(StatusCode::NO_CONTENT)
                .header("Content-Security-Policy", CSP_DAV)
                .header(header::CONTENT_LENGTH, 0),
            Body::empty(),
        ),
        Err(e) => refusal(&e),
    }
}

/// Why a `Destination` header cannot be used.
#[derive(Debug, thiserror::Error)]
enum BadDestination {
    #[error("The destination header was not supplied")]
    Missing,
    #[error("Requested uri ({0}) is out of base uri")]
    OutOfBase(String),
    #[error("The destination is in another user's home")]
    OtherUser,
    #[error("The destination path is not valid percent-encoded UTF-8")]
    Encoding,
}

impl BadDestination {
    fn response(&self) -> Resp {
        let (status, exception) = match self {
            BadDestination::Missing | BadDestination::Encoding => {
                (StatusCode::BAD_REQUEST, "Sabre\\DAV\\Exception\\BadRequest")
            }
            BadDestination::OutOfBase(_) | BadDestination::OtherUser => {
                (StatusCode::FORBIDDEN, "Sabre\\DAV\\Exception\\Forbidden")
            }
        };
        sabre_error(status, exception, &self.to_string())
    }
}

/// The decoded path in the requester's home that `Destination` names: an
/// absolute URL or an absolute path (Sabre's `calculateUri`; the host is
/// not checked), either DAV alias of the own home.
fn destination(sim: &Simulator, me: usize, headers: &HeaderMap) -> Result<String, BadDestination> {
    let raw = header_str(headers, "destination")
        .map(str::trim)
        .ok_or(BadDestination::Missing)?;
    let without_origin = match raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => raw,
    };
    let path = without_origin
        .split(['?', '#'])
        .next()
        .unwrap_or(without_origin);
    let (subpath, user) = {
        let st = sim.lock();
        (st.opts.subpath.clone(), st.users[me].spec.user_id.clone())
    };
    let out_of_base = || BadDestination::OutOfBase(path.to_string());
    let below = strip_prefix_dir(path, &subpath).ok_or_else(out_of_base)?;
    let dest = dav_target(below, &subpath, &user).ok_or_else(out_of_base)?;
    if dest.user != user {
        return Err(BadDestination::OtherUser);
    }
    percent_decode(&dest.rel)
        .map(|p| normalize(&p))
        .ok_or(BadDestination::Encoding)
}

fn move_or_copy(
    sim: &Simulator,
    me: usize,
    from: &str,
    to: &str,
    headers: &HeaderMap,
    copy: bool,
) -> Resp {
    let overwrite = match header_str(headers, "overwrite").map(str::trim) {
        None | Some("T" | "t") => true,
        Some("F" | "f") => false,
        Some(_) => {
            return sabre_error(
                StatusCode::BAD_REQUEST,
                "Sabre\\DAV\\Exception\\BadRequest",
                "The HTTP Overwrite header should be either T or F",
            );
        }
    };
    if from == to {
        return sabre_error(
            StatusCode::FORBIDDEN,
            "Sabre\\DAV\\Exception\\Forbidden",
            "Source and destination uri are identical.",
        );
    }
    let mut st = sim.lock();
    if blocked(&st, me, from) || blocked(&st, me, to) {
        return storage_unavailable();
    }
    if st.entry_of(me, from).is_none() {
        return refusal(&SimError::NotFound(from.to_string()));
    }
    // Checked before the destination is deleted, so a refused move loses nothing.
    if to.starts_with(&format!("{from}/")) {
        return refusal(&SimError::InvalidMove(format!("{from} into itself ({to})")));
    }
    let replaced = st.entry_of(me, to).is_some();
    if replaced && !overwrite {
        return sabre_error(
            StatusCode::PRECONDITION_FAILED,
            "Sabre\\DAV\\Exception\\PreconditionFailed",
            "The destination node already exists, and the overwrite header is set to false",
        );
    }
    let parent = to.rsplit_once('/').map_or("", |(dir, _)| dir);
    if !st.entry_of(me, parent).is_some_and(|e| e.is_folder) {
        return sabre_error(
            StatusCode::CONFLICT,
            "Sabre\\DAV\\Exception\\Conflict",
            "The destination node is not found",
        );
    }
    if replaced && let Err(e) = st.op_delete(me, to) {
        return refusal(&e);
    }
    let result = if copy {
        st.op_copy(me, from, to)
    } else {
        st.op_move(me, from, to)
            .map(|()| st.entry_of(me, to).map_or(0, |e| e.fileid))
    };
    match result {
        Ok(id) => {
            let status = if replaced {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::CREATED
            };
            finish(created(status, id), Body::empty())
        }
        Err(e) => refusal(&e),
    }
}
