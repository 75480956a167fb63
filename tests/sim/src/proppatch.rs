//! PROPPATCH: the favorite flag (Nextcloud's `TagsPlugin`), `{DAV:}lastmodified`
//! (`FilesPlugin`, a touch) and dead properties (`CustomPropertiesBackend`,
//! the `oc_properties` table), with Sabre's all-or-nothing 207 answer.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::StatusCode;
use quick_xml::events::Event;
use quick_xml::reader::NsReader;

use crate::dav::Target;
use crate::dav::multistatus_builder;
use crate::encode::href_path;
use crate::error::SimError;
use crate::http::{Resp, finish, sabre_error};
use crate::props::{
    Known, MULTISTATUS_CLOSE, MULTISTATUS_OPEN, NS_DAV, Prop, namespace, propstat, write_empty,
};
use crate::sim::{Simulator, State};
use crate::write::{read_body, refusal};

/// What PROPPATCH stored on one node for one user. Both are per user in
/// Nextcloud (tags and `oc_properties` rows carry the user id) and follow the
/// node when it moves, so they are kept by fileid.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct NodeProps {
    pub favorite: bool,
    /// (namespace, local name) → text value.
    pub dead: BTreeMap<(String, String), String>,
}

/// User id → fileid → what was stored.
pub type PropStore = BTreeMap<String, BTreeMap<u64, NodeProps>>;

/// Only plain-text values are kept: every client-visible property the
/// connector could be tricked into writing is text.
struct Update {
    prop: Prop,
    /// `None` for a `<d:remove>`.
    value: Option<String>,
}

/// What each property in a PROPPATCH would do, decided before anything is
/// applied, so a refused one leaves the others untouched (Sabre answers 424
/// for them).
enum Action {
    Favorite(bool),
    Touch(i64),
    Dead((String, String), Option<String>),
    /// Live properties the server computes (etag, size, fileid, …).
    Protected,
}

fn action(u: &Update) -> Action {
    match &u.prop {
        Prop::Known(Known::Favorite) => Action::Favorite(
            u.value
                .as_deref()
                .is_some_and(|v| matches!(v.trim(), "1" | "true")),
        ),
        Prop::Known(_) => Action::Protected,
        Prop::Other { ns, local } if ns == NS_DAV && local == "lastmodified" => {
            match u.value.as_deref().map(str::trim).map(str::parse::<i64>) {
                Some(Ok(t)) if t > 0 => Action::Touch(t),
                _ => Action::Protected,
            }
        }
        Prop::Other { ns, local } => Action::Dead((ns.clone(), local.clone()), u.value.clone()),
    }
}

/// Reads a `<d:propertyupdate>`; `Err` carries a message for a 400.
fn parse(body: &[u8]) -> Result<Vec<Update>, String> {
    let mut reader = NsReader::from_reader(body);
    // (namespace, local name) from the root down.
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut out: Vec<Update> = Vec::new();
    let mut saw_root = false;
    loop {
        let (res, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let ns = namespace(&res)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match stack.len() {
                    0 if !saw_root && ns == NS_DAV && local == "propertyupdate" => saw_root = true,
                    0 => return Err("The root element must be {DAV:}propertyupdate".into()),
                    3 if stack[2] == (NS_DAV.into(), "prop".into()) => {
                        let set = stack[1].1 == "set";
                        out.push(Update {
                            prop: Prop::from_name(&ns, &local),
                            value: set.then(String::new),
                        });
                    }
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    stack.push((ns, local));
                }
            }
            Event::Text(t) if stack.len() >= 4 => {
                let text = t.decode().map_err(|e| e.to_string())?;
                push_value(&mut out, &text);
            }
            Event::CData(t) if stack.len() >= 4 => {
                push_value(&mut out, &String::from_utf8_lossy(&t));
            }
            Event::GeneralRef(r) if stack.len() >= 4 => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("unknown entity {name}"))?
                        .to_string(),
                };
                push_value(&mut out, &c);
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof if stack.is_empty() && saw_root => return Ok(out),
            Event::Eof => return Err("unexpected end of document".into()),
            _ => {}
        }
    }
}

/// Text of the property element being read (of a `<d:set>`; a remove has none).
fn push_value(out: &mut [Update], text: &str) {
    if let Some(v) = out.last_mut().and_then(|u| u.value.as_mut()) {
        v.push_str(text);
    }
}

pub async fn handle(sim: &Simulator, me: usize, target: &Target, path: &str, body: Body) -> Resp {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let updates = match parse(&bytes) {
        Ok(u) => u,
        Err(msg) => {
            return sabre_error(
                StatusCode::BAD_REQUEST,
                "Sabre\\DAV\\Exception\\BadRequest",
                &msg,
            );
        }
    };
    let mut st = sim.lock();
    let Some(entry) = st.entry_of(me, path) else {
        return refusal(&SimError::NotFound(path.to_string()));
    };
    let mut href = target.href_base.clone();
    let rel = href_path(path);
    if !rel.is_empty() {
        href.push_str(&rel);
        if entry.is_folder {
            href.push('/');
        }
    }
    let actions: Vec<Action> = updates.iter().map(action).collect();
    let refused = actions.iter().any(|a| matches!(a, Action::Protected));
    let mut statuses = Vec::with_capacity(actions.len());
    for a in actions {
        statuses.push(match a {
            Action::Protected => "HTTP/1.1 403 Forbidden",
            _ if refused => "HTTP/1.1 424 Failed Dependency",
            a => apply(&mut st, me, entry.fileid, path, a),
        });
    }
    drop(st);
    let mut out = String::from(MULTISTATUS_OPEN);
    out.push_str("<d:response><d:href>");
    out.push_str(&href);
    out.push_str("</d:href>");
    // Propstats in the order their status first comes up, as Sabre groups them.
    let mut groups: Vec<(&str, String)> = Vec::new();
    let mut adhoc = Vec::new();
    for (u, status) in updates.iter().zip(statuses) {
        let pos = match groups.iter().position(|(s, _)| *s == status) {
            Some(p) => p,
            None => {
                groups.push((status, String::new()));
                groups.len() - 1
            }
        };
        write_empty(&mut groups[pos].1, &u.prop, &mut adhoc);
    }
    for (status, inner) in &groups {
        propstat(&mut out, inner, status);
    }
    out.push_str("</d:response>");
    out.push_str(MULTISTATUS_CLOSE);
    finish(multistatus_builder(), out)
}

fn apply(st: &mut State, me: usize, id: u64, path: &str, a: Action) -> &'static str {
    let user = st.users[me].spec.user_id.clone();
    match a {
        Action::Touch(t) => match st.op_touch(me, path, t) {
            Ok(()) => "HTTP/1.1 200 OK",
            Err(_) => "HTTP/1.1 403 Forbidden",
        },
        Action::Favorite(on) => {
            st.props
                .entry(user)
                .or_default()
                .entry(id)
                .or_default()
                .favorite = on;
            "HTTP/1.1 200 OK"
        }
        Action::Dead(key, value) => {
            let dead = &mut st
                .props
                .entry(user)
                .or_default()
                .entry(id)
                .or_default()
                .dead;
            match value {
                Some(v) => dead.insert(key, v),
                None => dead.remove(&key),
            };
            "HTTP/1.1 200 OK"
        }
        Action::Protected => "HTTP/1.1 403 Forbidden",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_set_and_remove() {
        let body = br#"<?xml version="1.0"?>
<d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:x="urn:x">
  <d:set><d:prop><oc:favorite>1</oc:favorite><x:note>a &amp; b</x:note></d:prop></d:set>
  <d:remove><d:prop><x:old/></d:prop></d:remove>
</d:propertyupdate>"#;
        let u = parse(body).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u[0].prop, Prop::Known(Known::Favorite));
        assert_eq!(u[0].value.as_deref(), Some("1"));
        assert_eq!(u[1].value.as_deref(), Some("a & b"));
        assert_eq!(u[2].value, None);
    }

    #[test]
    fn rejects_other_roots_and_garbage() {
        assert!(parse(b"<d:propfind xmlns:d=\"DAV:\"/>").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<d:propertyupdate xmlns:d=\"DAV:\"><d:set>").is_err());
    }
}
