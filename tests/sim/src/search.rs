//! WebDAV SEARCH (RFC 5323 basicsearch) on `/remote.php/dav/`, as
//! `FileSearchBackend` answers it: recursive below the scope folder, shares
//! included, at most 100 results unless `nresults` says otherwise.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use quick_xml::events::Event;
use quick_xml::reader::NsReader;

use crate::content::mime_for;
use crate::encode::href_path;
use crate::http::{CSP_DAV, Resp, builder, finish, sabre_error};
use crate::props::{
    MULTISTATUS_CLOSE, MULTISTATUS_OPEN, NS_DAV, NS_NC, NS_OC, Prop, Selection, namespace,
    write_response,
};
use crate::sim::Simulator;
use crate::time::parse_atom;
use crate::tree::Kind;
use crate::view::{Ctx, Cursor, Seen, UserView};

const OPERATOR_LIMIT: usize = 100;
const DEFAULT_RESULTS: usize = 100;
const NS_NC_COM: &str = "http://nextcloud.com/ns";
const BAD_REQUEST: &str = "Sabre\\DAV\\Exception\\BadRequest";

/// A parsed element: (namespace, local name), children, text.
struct El {
    ns: String,
    local: String,
    children: Vec<El>,
    text: String,
}

impl El {
    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    fn child(&self, ns: &str, local: &str) -> Option<&El> {
        self.children.iter().find(|c| c.is(ns, local))
    }
}

fn parse_dom(body: &[u8]) -> Result<El, String> {
    let mut reader = NsReader::from_reader(body);
    let mut stack: Vec<El> = Vec::new();
    let mut root: Option<El> = None;
    loop {
        let (res, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let ns = namespace(&res)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let el = El {
                    ns,
                    local: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    children: Vec::new(),
                    text: String::new(),
                };
                if matches!(event, Event::Start(_)) {
                    stack.push(el);
                } else if let Some(parent) = stack.last_mut() {
                    parent.children.push(el);
                } else {
                    root = Some(el);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let text = t.decode().map_err(|e| e.to_string())?;
                    let text = quick_xml::escape::unescape(&text).map_err(|e| e.to_string())?;
                    top.text.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    let c = match name.as_str() {
                        "amp" => "&".to_string(),
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "quot" => "\"".to_string(),
                        "apos" => "'".to_string(),
                        n => match n
                            .strip_prefix("#x")
                            .map(|h| u32::from_str_radix(h, 16))
                            .or_else(|| n.strip_prefix('#').map(str::parse::<u32>))
                        {
                            Some(Ok(cp)) => {
                                char::from_u32(cp).map(String::from).unwrap_or_default()
                            }
                            _ => return Err(format!("unknown entity {n}")),
                        },
                    };
                    top.text.push_str(&c);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced document")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Eof if stack.is_empty() => break,
            Event::Eof => return Err("unexpected end of document".into()),
            _ => {}
        }
    }
    root.ok_or_else(|| "empty document".into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    DisplayName,
    ContentType,
    LastModified,
    CreationDate,
    UploadTime,
    Size,
    Favorite,
    FileId,
    OwnerId,
    LastActivity,
}

fn field(el: &El) -> Result<Field, String> {
    Ok(match (el.ns.as_str(), el.local.as_str()) {
        (NS_DAV, "displayname") => Field::DisplayName,
        (NS_DAV, "getcontenttype") => Field::ContentType,
        (NS_DAV, "getlastmodified") => Field::LastModified,
        (NS_DAV, "creationdate") => Field::CreationDate,
        (NS_NC, "upload_time") => Field::UploadTime,
        (NS_NC, "last_activity") => Field::LastActivity,
        (NS_OC, "size") => Field::Size,
        (NS_OC, "favorite") => Field::Favorite,
        (NS_OC, "fileid") => Field::FileId,
        (NS_OC, "owner-id") => Field::OwnerId,
        (ns, local) => {
            return Err(format!(
                "Unsupported property for search or order: {{{ns}}}{local}"
            ));
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
}

enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Op, Field, Literal),
    IsCollection,
    True,
}

/// A literal cast the way `FileSearchBackend::castValue` does it.
enum Literal {
    Int(i64),
    Text(String),
}

/// PHP's `(int)` cast.
fn php_int(s: &str) -> i64 {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let n = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |a, b| {
            a.saturating_mul(10).saturating_add((b - b'0') as i64)
        });
    if neg { -n } else { n }
}

fn literal(f: Field, text: &str) -> Literal {
    let text = text.trim();
    match f {
        Field::LastModified | Field::CreationDate | Field::UploadTime | Field::LastActivity => {
            // Unix seconds or ATOM; anything else is silently 0.
            if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                Literal::Int(php_int(text))
            } else {
                Literal::Int(parse_atom(text).unwrap_or(0))
            }
        }
        Field::Size | Field::FileId => Literal::Int(php_int(text)),
        Field::Favorite => Literal::Int(i64::from(
            text == "1" || text.eq_ignore_ascii_case("true") || text == "yes",
        )),
        Field::DisplayName | Field::ContentType | Field::OwnerId => Literal::Text(text.to_string()),
    }
}

fn parse_expr(el: &El, count: &mut usize) -> Result<Expr, String> {
    if el.ns != NS_DAV {
        return Err(format!("Unsupported operator {{{}}}{}", el.ns, el.local));
    }
    let elements: Vec<&El> = el.children.iter().collect();
    let cmp = |op: Op, count: &mut usize| -> Result<Expr, String> {
        *count += 1;
        let prop = el
            .child(NS_DAV, "prop")
            .and_then(|p| p.children.first())
            .ok_or_else(|| format!("Invalid number of arguments for {} operation", el.local))?;
        let lit = el.child(NS_DAV, "literal").ok_or_else(|| {
            format!(
                "Invalid argument 2 for {} operation, expected literal",
                el.local
            )
        })?;
        let f = field(prop)?;
        Ok(Expr::Cmp(op, f, literal(f, &lit.text)))
    };
    match el.local.as_str() {
        "and" | "or" => {
            let args = elements
                .iter()
                .map(|c| parse_expr(c, count))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if el.local == "and" {
                Expr::And(args)
            } else {
                Expr::Or(args)
            })
        }
        "not" => {
            let inner = elements.first().ok_or("not needs an operand")?;
            Ok(Expr::Not(Box::new(parse_expr(inner, count)?)))
        }
        "eq" => cmp(Op::Eq, count),
        "gt" => cmp(Op::Gt, count),
        "gte" => cmp(Op::Gte, count),
        "lt" => cmp(Op::Lt, count),
        "lte" => cmp(Op::Lte, count),
        "like" => cmp(Op::Like, count),
        "is-collection" => {
            *count += 1;
            Ok(Expr::IsCollection)
        }
        other => Err(format!("Unsupported operator {{DAV:}}{other}")),
    }
}

/// SQL `LIKE` (case-insensitive, `%`, `_`, backslash escapes).
fn like(value: &str, pattern: &str) -> bool {
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let mut p: Vec<(char, bool)> = Vec::new();
    let mut chars = pattern
        .to_lowercase()
        .chars()
        .collect::<Vec<_>>()
        .into_iter();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    p.push((n, true));
                }
            }
            c => p.push((c, false)),
        }
    }
    // dp[j]: pattern[..i] matches value[..j]
    let mut dp = vec![false; v.len() + 1];
    dp[0] = true;
    for &(pc, literal) in &p {
        let mut next = vec![false; v.len() + 1];
        if pc == '%' && !literal {
            let mut any = false;
            for j in 0..=v.len() {
                any |= dp[j];
                next[j] = any;
            }
        } else {
            for j in 1..=v.len() {
                next[j] = dp[j - 1] && ((pc == '_' && !literal) || v[j - 1] == pc);
            }
        }
        dp = next;
    }
    dp[v.len()]
}

struct Hit<'a> {
    id: u64,
    ctx: Ctx,
    path: String,
    node: &'a crate::tree::Node,
}

struct Eval;

fn value_int(f: Field, h: &Hit) -> i64 {
    match f {
        Field::LastModified => h.node.mtime,
        Field::UploadTime => match h.node.kind {
            Kind::File { upload_time, .. } => upload_time,
            Kind::Folder { .. } => 0,
        },
        Field::Size => h.node.size as i64,
        Field::FileId => h.id as i64,
        Field::CreationDate | Field::Favorite | Field::LastActivity => 0,
        Field::DisplayName | Field::ContentType | Field::OwnerId => 0,
    }
}

fn value_text(f: Field, h: &Hit, owner: &str) -> String {
    match f {
        Field::DisplayName => h.node.name.to_string(),
        Field::ContentType => {
            if h.node.is_folder() {
                "httpd/unix-directory".to_string()
            } else {
                mime_for(&h.node.name).to_string()
            }
        }
        Field::OwnerId => owner.to_string(),
        _ => value_int(f, h).to_string(),
    }
}

impl Eval {
    fn matches(&self, e: &Expr, h: &Hit, owner: &str) -> bool {
        match e {
            Expr::True => true,
            Expr::And(a) => a.iter().all(|x| self.matches(x, h, owner)),
            Expr::Or(a) => a.iter().any(|x| self.matches(x, h, owner)),
            Expr::Not(x) => !self.matches(x, h, owner),
            Expr::IsCollection => h.node.is_folder(),
            Expr::Cmp(op, f, lit) => {
                let ord = match lit {
                    Literal::Int(n) => {
                        if *op == Op::Like {
                            return like(&value_int(*f, h).to_string(), &n.to_string());
                        }
                        value_int(*f, h).cmp(n)
                    }
                    Literal::Text(t) => {
                        let v = value_text(*f, h, owner);
                        if *op == Op::Like {
                            return like(&v, t);
                        }
                        v.as_str().cmp(t.as_str())
                    }
                };
                match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Gte => ord != Ordering::Less,
                    Op::Lt => ord == Ordering::Less,
                    Op::Lte => ord != Ordering::Greater,
                    Op::Like => unreachable!("handled above"),
                }
            }
        }
    }
}

/// The fileids a query can only match, when it says so (`fileid` equalities
/// combined with `or`, possibly inside an `and`).
fn candidates(e: &Expr) -> Option<BTreeSet<u64>> {
    match e {
        Expr::Cmp(Op::Eq, Field::FileId, Literal::Int(n)) => Some(
            u64::try_from(*n)
                .map(|n| BTreeSet::from([n]))
                .unwrap_or_default(),
        ),
        Expr::Or(args) => {
            let mut all = BTreeSet::new();
            for a in args {
                all.extend(candidates(a)?);
            }
            Some(all)
        }
        Expr::And(args) => args.iter().find_map(candidates),
        _ => None,
    }
}

/// `owner-id eq <me>` limits the search to the home storage.
fn owner_filter(e: &Expr) -> Option<&str> {
    match e {
        Expr::Cmp(Op::Eq, Field::OwnerId, Literal::Text(t)) => Some(t),
        Expr::And(args) => args.iter().find_map(owner_filter),
        _ => None,
    }
}

fn bad_request(msg: &str) -> Resp {
    sabre_error(StatusCode::BAD_REQUEST, BAD_REQUEST, msg)
}

struct Order {
    field: Field,
    asc: bool,
}

pub fn handle(sim: &Simulator, me: usize, subpath: &str, body: &Bytes) -> Resp {
    let root = match parse_dom(body) {
        Ok(r) => r,
        Err(e) => return bad_request(&e),
    };
    let Some(basic) = root
        .is(NS_DAV, "searchrequest")
        .then(|| root.child(NS_DAV, "basicsearch"))
        .flatten()
    else {
        return bad_request(
            "The root element must be {DAV:}searchrequest with a {DAV:}basicsearch",
        );
    };
    let sel = match basic.child(NS_DAV, "select") {
        Some(select) if select.child(NS_DAV, "allprop").is_some() => Selection::All,
        Some(select) => Selection::Props(
            select
                .child(NS_DAV, "prop")
                .map(|p| {
                    let mut out: Vec<Prop> = Vec::new();
                    for c in &p.children {
                        let prop = Prop::from_name(&c.ns, &c.local);
                        if !out.contains(&prop) {
                            out.push(prop);
                        }
                    }
                    out
                })
                .unwrap_or_default(),
        ),
        None => Selection::All,
    };
    let Some(href) = basic
        .child(NS_DAV, "from")
        .and_then(|f| f.child(NS_DAV, "scope"))
        .and_then(|s| s.child(NS_DAV, "href"))
        .map(|h| h.text.trim().to_string())
    else {
        return bad_request("You need to specify a scope for the search.");
    };
    let mut count = 0;
    let expr = match basic.child(NS_DAV, "where") {
        None => Expr::True,
        Some(w) => match w.children.first() {
            None => Expr::True,
            Some(e) => match parse_expr(e, &mut count) {
                Ok(e) => e,
                Err(m) => return bad_request(&m),
            },
        },
    };
    if count > OPERATOR_LIMIT {
        return bad_request(&format!(
            "Invalid search query, maximum operator limit of {OPERATOR_LIMIT} exceeded, got {count} operators"
        ));
    }
    let mut orders = Vec::new();
    if let Some(ob) = basic.child(NS_DAV, "orderby") {
        for o in ob.children.iter().filter(|c| c.is(NS_DAV, "order")) {
            let Some(p) = o.child(NS_DAV, "prop").and_then(|p| p.children.first()) else {
                continue;
            };
            match field(p) {
                Ok(f) => orders.push(Order {
                    field: f,
                    asc: o.child(NS_DAV, "descending").is_none(),
                }),
                Err(m) => return bad_request(&m),
            }
        }
    }
    let (nresults, first) = match basic.child(NS_DAV, "limit") {
        None => (0, 0),
        Some(l) => (
            l.child(NS_DAV, "nresults")
                .map(|n| php_int(&n.text).max(0) as usize)
                .unwrap_or(0),
            l.child(NS_NC, "firstresult")
                .or_else(|| l.child(NS_NC_COM, "firstresult"))
                .map(|n| php_int(&n.text).max(0) as usize)
                .unwrap_or(0),
        ),
    };
    let max = if nresults == 0 {
        DEFAULT_RESULTS
    } else {
        nresults
    };

    let st = sim.lock();
    let view = UserView::new(&st, me);
    let user = view.user.spec.user_id.clone();
    let limit_home = match owner_filter(&expr) {
        Some(o) if o == user => true,
        Some(_) => {
            return bad_request(
                "Invalid search value for '{http://owncloud.org/ns}owner-id', only the current user id is allowed",
            );
        }
        None => false,
    };
    let base = format!("/files/{user}");
    let rel = match href.strip_prefix(&base) {
        Some(r) if r.is_empty() || r.starts_with('/') => r,
        _ => {
            return sabre_error(
                StatusCode::NOT_FOUND,
                "Sabre\\DAV\\Exception\\NotFound",
                &format!(
                    "File with name {} could not be located",
                    href.trim_start_matches('/')
                ),
            );
        }
    };
    let (scope, scope_ctx) = match view.resolve(rel) {
        Ok(x) => x,
        Err(msg) => {
            return sabre_error(
                StatusCode::NOT_FOUND,
                "Sabre\\DAV\\Exception\\NotFound",
                &msg,
            );
        }
    };
    if !st.tree.node(scope).is_some_and(|n| n.is_folder()) {
        return bad_request("Search is only supported on directories");
    }
    let scope_path = view
        .path_of(scope)
        .map(|(p, _)| p)
        .unwrap_or_else(|| "/".to_string());
    let eval = Eval;
    let owner_of = |ctx: Ctx| -> String {
        match ctx.share().and_then(|s| view.mount(s)) {
            Some(m) => m.owner.spec.user_id.clone(),
            None => user.clone(),
        }
    };
    let in_scope = |path: &str| scope_path == "/" || path.starts_with(&format!("{scope_path}/"));
    let mut hits: Vec<Hit> = Vec::new();
    match candidates(&expr) {
        Some(ids) => {
            for id in ids {
                let Some(node) = st.tree.node(id) else {
                    continue;
                };
                let Some((path, ctx)) = view.path_of(id) else {
                    continue;
                };
                if id == scope || !in_scope(&path) {
                    continue;
                }
                hits.push(Hit {
                    id,
                    ctx,
                    path,
                    node,
                });
            }
        }
        None => {
            // Everything below the scope, pre-order.
            let mut stack = vec![(scope, scope_path.clone(), scope_ctx)];
            while let Some((id, path, ctx)) = stack.pop() {
                let mut cursor = Cursor::Start;
                let mut kids = Vec::new();
                while let Some((name, child, cctx)) = view.next_child(id, ctx, &cursor) {
                    kids.push((child, crate::view::join(&path, &name), cctx));
                    cursor = Cursor::after(name, cctx);
                }
                for (child, cpath, cctx) in kids.into_iter().rev() {
                    let node = st.tree.node(child).expect("children exist");
                    if node.is_folder() {
                        stack.push((child, cpath.clone(), cctx));
                    }
                    hits.push(Hit {
                        id: child,
                        ctx: cctx,
                        path: cpath,
                        node,
                    });
                }
            }
        }
    }
    let owner_ids: Vec<String> = hits.iter().map(|h| owner_of(h.ctx)).collect();
    let mut matched: Vec<(Hit, String)> = hits
        .into_iter()
        .zip(owner_ids)
        .filter(|(h, o)| (!limit_home || h.ctx == Ctx::Own) && eval.matches(&expr, h, o))
        .collect();
    matched.sort_by(|(a, ao), (b, bo)| {
        for o in &orders {
            let ord = match o.field {
                Field::DisplayName | Field::ContentType | Field::OwnerId => {
                    value_text(o.field, a, ao).cmp(&value_text(o.field, b, bo))
                }
                f => value_int(f, a).cmp(&value_int(f, b)),
            };
            let ord = if o.asc { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
    let mut out = String::from(MULTISTATUS_OPEN);
    for (h, _) in matched.iter().skip(first).take(max) {
        let mut href = format!("{subpath}/remote.php/dav/files/");
        crate::encode::href_segment(&mut href, &user);
        href.push('/');
        href.push_str(&href_path(&h.path));
        if h.node.is_folder() {
            href.push('/');
        }
        let nv = view.node_view(h.id, h.node, h.ctx, Seen::Searched);
        write_response(&mut out, &href, h.id, h.node, &sel, &nv, false);
    }
    out.push_str(MULTISTATUS_CLOSE);
    finish(
        builder(StatusCode::MULTI_STATUS)
            .header("Content-Security-Policy", CSP_DAV)
            .header(header::CONTENT_TYPE, "application/xml; charset=\"utf-8\""),
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_patterns() {
        assert!(like("image/png", "image/%"));
        assert!(like("Report.PDF", "%.pdf"));
        assert!(like("a_c", "a\\_c"));
        assert!(!like("abc", "a\\_c"));
        assert!(like("abc", "a_c"));
        assert!(!like("abcd", "a_c"));
        assert!(like("", "%"));
    }
}
