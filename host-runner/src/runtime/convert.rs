//! Conversions between the generated WIT types and the host's own, and the
//! bounded lifting of list arguments.
//!
//! The generated bindings lift a `list<record>` argument whole before the
//! import runs, and a guest can make a million list elements whose strings
//! all point at the same megabyte of its memory: a small guest, terabytes on
//! the host. So the imports that take lists are linked again (see
//! `session::bound_list_imports`) with the `Guest*` shapes below, whose
//! strings and lists stay in the guest's memory ([`WasmStr`], [`WasmList`])
//! until a [`Lifter`] copies them one by one, counting what it copies and
//! refusing before it copies past its budget.

use super::bindings::exports::nextcloud::connector::lifecycle as wit_life;
use super::bindings::nextcloud::connector::{
    http as wit_http, storage as wit_storage, types as wit,
};
use super::host::{RecordCaps, SandboxLimit};
use crate::config::Config;
use crate::http::{HttpError, OutgoingRequest};
use crate::model;
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, WasmList, WasmStr};

pub fn record_from_wit(r: wit::Record) -> model::Record {
    model::Record {
        external_id: r.external_id,
        parent_external_id: r.parent_external_id,
        path: r.path,
        name: r.name,
        is_folder: r.is_folder,
        etag: r.etag,
        size: r.size,
        mime_type: r.mime_type,
        modified: r.modified,
        created: r.created,
        permission_letters: r.permission_letters,
        permissions: r.permissions.into_iter().map(permission_from_wit).collect(),
        owner_id: r.owner_id,
        checksums: r.checksums,
    }
}

pub fn record_to_wit(r: model::Record) -> wit::Record {
    wit::Record {
        external_id: r.external_id,
        parent_external_id: r.parent_external_id,
        path: r.path,
        name: r.name,
        is_folder: r.is_folder,
        etag: r.etag,
        size: r.size,
        mime_type: r.mime_type,
        modified: r.modified,
        created: r.created,
        permission_letters: r.permission_letters,
        permissions: r.permissions.into_iter().map(permission_to_wit).collect(),
        owner_id: r.owner_id,
        checksums: r.checksums,
    }
}

fn permission_from_wit(p: wit::Permission) -> model::Permission {
    model::Permission {
        principal: match p.principal {
            wit::Principal::User(u) => model::Principal::User {
                id: u.id,
                email: u.email,
            },
            wit::Principal::Group(id) => model::Principal::Group { id },
            wit::Principal::AnyoneWithLink(l) => model::Principal::AnyoneWithLink {
                share_id: l.share_id,
                expires: l.expires,
            },
            wit::Principal::Federated(id) => model::Principal::Federated { id },
        },
        level: level_from_wit(p.level),
    }
}

fn permission_to_wit(p: model::Permission) -> wit::Permission {
    wit::Permission {
        principal: match p.principal {
            model::Principal::User { id, email } => {
                wit::Principal::User(wit::UserPrincipal { id, email })
            }
            model::Principal::Group { id } => wit::Principal::Group(id),
            model::Principal::AnyoneWithLink { share_id, expires } => {
                wit::Principal::AnyoneWithLink(wit::LinkPrincipal { share_id, expires })
            }
            model::Principal::Federated { id } => wit::Principal::Federated(id),
        },
        level: match p.level {
            model::PermissionLevel::Owner => wit::PermissionLevel::Owner,
            model::PermissionLevel::Write => wit::PermissionLevel::Write,
            model::PermissionLevel::Read => wit::PermissionLevel::Read,
        },
    }
}

pub fn change_from_wit(c: wit::RecordChange) -> model::RecordChange {
    match c {
        wit::RecordChange::New(r) => model::RecordChange::New(record_from_wit(r)),
        wit::RecordChange::ContentUpdated(r) => {
            model::RecordChange::ContentUpdated(record_from_wit(r))
        }
        wit::RecordChange::MetadataUpdated(r) => {
            model::RecordChange::MetadataUpdated(record_from_wit(r))
        }
        wit::RecordChange::Deleted(id) => model::RecordChange::Deleted(id),
    }
}

pub fn user_from_wit(u: wit::User) -> model::User {
    model::User {
        id: u.id,
        display_name: u.display_name,
        email: u.email,
    }
}

pub fn group_from_wit(g: wit::RecordGroup) -> model::RecordGroup {
    model::RecordGroup {
        external_id: g.external_id,
        name: g.name,
        kind: match g.kind {
            wit::RecordGroupKind::Drive => model::RecordGroup::DRIVE.to_string(),
        },
        owner: g.owner,
    }
}

pub fn order_from_wit(o: wit_storage::Order) -> model::Order {
    match o {
        wit_storage::Order::ParentsFirst => model::Order::ParentsFirst,
        wit_storage::Order::ChildrenFirst => model::Order::ChildrenFirst,
    }
}

pub fn request_from_wit(r: wit_http::Request) -> OutgoingRequest {
    OutgoingRequest {
        method: r.method,
        url: r.url,
        headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body: r.body,
    }
}

pub fn headers_to_wit(headers: Vec<(String, String)>) -> Vec<wit_http::Header> {
    headers
        .into_iter()
        .map(|(name, value)| wit_http::Header { name, value })
        .collect()
}

pub fn http_error_to_wit(e: HttpError) -> wit_http::HttpError {
    match e {
        HttpError::Refused(m) => wit_http::HttpError::Refused(m),
        HttpError::Unauthorized(m) => wit_http::HttpError::Unauthorized(m),
        HttpError::Timeout(m) => wit_http::HttpError::Timeout(m),
        HttpError::Connection(m) => wit_http::HttpError::Connection(m),
        HttpError::TooLarge(m) => wit_http::HttpError::TooLarge(m),
    }
}

/// The WIT `record`, its strings and lists left in the guest's memory.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct GuestRecord {
    #[component(name = "external-id")]
    external_id: WasmStr,
    #[component(name = "parent-external-id")]
    parent_external_id: Option<WasmStr>,
    path: WasmStr,
    name: WasmStr,
    #[component(name = "is-folder")]
    is_folder: bool,
    etag: WasmStr,
    size: u64,
    #[component(name = "mime-type")]
    mime_type: WasmStr,
    modified: i64,
    created: Option<i64>,
    #[component(name = "permission-letters")]
    permission_letters: WasmStr,
    permissions: WasmList<GuestPermission>,
    #[component(name = "owner-id")]
    owner_id: Option<WasmStr>,
    checksums: WasmList<WasmStr>,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct GuestPermission {
    principal: GuestPrincipal,
    level: wit::PermissionLevel,
}

#[derive(ComponentType, Lift)]
#[component(variant)]
pub enum GuestPrincipal {
    #[component(name = "user")]
    User(GuestUserPrincipal),
    #[component(name = "group")]
    Group(WasmStr),
    #[component(name = "anyone-with-link")]
    AnyoneWithLink(GuestLinkPrincipal),
    #[component(name = "federated")]
    Federated(WasmStr),
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct GuestUserPrincipal {
    id: WasmStr,
    email: Option<WasmStr>,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct GuestLinkPrincipal {
    #[component(name = "share-id")]
    share_id: WasmStr,
    expires: Option<i64>,
}

/// The WIT `record-change`, lazily.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub enum GuestChange {
    #[component(name = "new")]
    New(GuestRecord),
    #[component(name = "content-updated")]
    ContentUpdated(GuestRecord),
    #[component(name = "metadata-updated")]
    MetadataUpdated(GuestRecord),
    #[component(name = "deleted")]
    Deleted(WasmStr),
}

/// The WIT `http.request`, lazily.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct GuestRequest {
    method: WasmStr,
    url: WasmStr,
    headers: WasmList<GuestHeader>,
    body: Option<WasmList<u8>>,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct GuestHeader {
    name: WasmStr,
    value: WasmStr,
}

/// Why a lift stopped.
#[derive(Debug)]
pub enum Refusal {
    /// A value breaks a rule of its shape (a path too long, too many
    /// checksums): the call's error channel says so, or the call traps.
    Invalid(String),
    /// A budget ran out, or the guest's memory does not hold what it claims:
    /// the call traps.
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for Refusal {
    fn from(e: wasmtime::Error) -> Self {
        Refusal::Trap(e)
    }
}

/// What one call may make the host allocate, and the setting that says so.
pub struct Budget {
    pub left: u64,
    /// The `limits.*` key, without the prefix.
    pub setting: &'static str,
    /// Its value, as the user wrote it.
    pub limit: String,
    /// The import, for the message: `storage.put`.
    pub call: &'static str,
}

/// Copies a call's arguments out of the guest's memory under a [`Budget`]:
/// each list's elements are counted before any is lifted, each string before
/// it is copied.
pub struct Lifter<'a, 'b, T: 'static> {
    store: &'a mut StoreContextMut<'b, T>,
    budget: Budget,
}

impl<'a, 'b, T: 'static> Lifter<'a, 'b, T> {
    pub fn new(store: &'a mut StoreContextMut<'b, T>, budget: Budget) -> Self {
        Lifter { store, budget }
    }

    fn charge(budget: &mut Budget, bytes: usize) -> Result<(), Refusal> {
        match budget.left.checked_sub(bytes as u64) {
            Some(left) => {
                budget.left = left;
                Ok(())
            }
            None => Err(Refusal::Trap(wasmtime::Error::new(SandboxLimit {
                setting: budget.setting,
                limit: budget.limit.clone(),
                detail: format!(
                    "the connector passed `{}` more than the host may hold for it",
                    budget.call
                ),
            }))),
        }
    }

    /// A string of at most `cap` bytes.
    fn string(
        &mut self,
        s: &WasmStr,
        cap: usize,
        what: impl Fn() -> String,
    ) -> Result<String, Refusal> {
        // UTF-8 (what Rust guests use) is borrowed from the guest's memory, so
        // nothing is copied before the checks.
        let text = s.to_str(&*self.store)?;
        if text.len() > cap {
            return Err(Refusal::Invalid(format!(
                "{} is {} bytes long, more than the {cap} the host keeps",
                what(),
                text.len()
            )));
        }
        Self::charge(&mut self.budget, text.len())?;
        Ok(text.into_owned())
    }

    fn optional(
        &mut self,
        s: &Option<WasmStr>,
        cap: usize,
        what: impl Fn() -> String,
    ) -> Result<Option<String>, Refusal> {
        s.as_ref().map(|s| self.string(s, cap, what)).transpose()
    }

    /// A list of at most `cap` elements, each lifted by `each`; the host's
    /// copies of all of them are counted before the first is lifted.
    pub fn list<E: Lift, U>(
        &mut self,
        list: &WasmList<E>,
        cap: usize,
        what: impl Fn() -> String,
        mut each: impl FnMut(&mut Self, E) -> Result<U, Refusal>,
    ) -> Result<Vec<U>, Refusal> {
        if list.len() > cap {
            return Err(Refusal::Invalid(format!(
                "{} has {} entries, more than the {cap} the host keeps",
                what(),
                list.len()
            )));
        }
        Self::charge(&mut self.budget, list.len().saturating_mul(size_of::<U>()))?;
        let mut out = Vec::with_capacity(list.len());
        for i in 0..list.len() {
            let element = list
                .get(&mut *self.store, i)
                .expect("an index below the length")?;
            out.push(each(self, element)?);
        }
        Ok(out)
    }

    pub fn id(&mut self, s: WasmStr) -> Result<String, Refusal> {
        self.string(&s, RecordCaps::ID, || "an external id".into())
    }

    pub fn record(&mut self, r: GuestRecord) -> Result<model::Record, Refusal> {
        let external_id =
            self.string(&r.external_id, RecordCaps::ID, || "an external id".into())?;
        let of = |field: &'static str| {
            let id = external_id.clone();
            move || format!("the {field} of record `{id}`")
        };
        Ok(model::Record {
            parent_external_id: self.optional(
                &r.parent_external_id,
                RecordCaps::ID,
                of("parent id"),
            )?,
            path: self.string(&r.path, RecordCaps::PATH, of("path"))?,
            name: self.string(&r.name, RecordCaps::TEXT, of("name"))?,
            is_folder: r.is_folder,
            etag: self.string(&r.etag, RecordCaps::TEXT, of("etag"))?,
            size: r.size,
            mime_type: self.string(&r.mime_type, RecordCaps::TEXT, of("mime type"))?,
            modified: r.modified,
            created: r.created,
            permission_letters: self.string(
                &r.permission_letters,
                RecordCaps::TEXT,
                of("permission letters"),
            )?,
            permissions: self.list(
                &r.permissions,
                RecordCaps::PERMISSIONS,
                of("permission list"),
                |l, p| l.permission(p),
            )?,
            owner_id: self.optional(&r.owner_id, RecordCaps::ID, of("owner id"))?,
            checksums: self.list(
                &r.checksums,
                RecordCaps::CHECKSUMS,
                of("checksum list"),
                |l, c| l.string(&c, RecordCaps::TEXT, || "a checksum".into()),
            )?,
            external_id,
        })
    }

    fn permission(&mut self, p: GuestPermission) -> Result<model::Permission, Refusal> {
        let id = |s: &WasmStr, l: &mut Self| l.string(s, RecordCaps::ID, || "a principal".into());
        let principal = match p.principal {
            GuestPrincipal::User(u) => model::Principal::User {
                id: id(&u.id, self)?,
                email: self.optional(&u.email, RecordCaps::ID, || "an email".into())?,
            },
            GuestPrincipal::Group(g) => model::Principal::Group { id: id(&g, self)? },
            GuestPrincipal::AnyoneWithLink(l) => model::Principal::AnyoneWithLink {
                share_id: id(&l.share_id, self)?,
                expires: l.expires,
            },
            GuestPrincipal::Federated(f) => model::Principal::Federated { id: id(&f, self)? },
        };
        Ok(model::Permission {
            principal,
            level: level_from_wit(p.level),
        })
    }

    pub fn change(&mut self, c: GuestChange) -> Result<model::RecordChange, Refusal> {
        Ok(match c {
            GuestChange::New(r) => model::RecordChange::New(self.record(r)?),
            GuestChange::ContentUpdated(r) => model::RecordChange::ContentUpdated(self.record(r)?),
            GuestChange::MetadataUpdated(r) => {
                model::RecordChange::MetadataUpdated(self.record(r)?)
            }
            GuestChange::Deleted(id) => model::RecordChange::Deleted(self.id(id)?),
        })
    }

    /// A request; only the budget bounds it (the HTTP policy judges it next).
    pub fn request(&mut self, r: GuestRequest) -> Result<OutgoingRequest, Refusal> {
        let any = usize::MAX;
        let headers = self.list(
            &r.headers,
            any,
            || "the header list".into(),
            |l, h| {
                Ok((
                    l.string(&h.name, any, String::new)?,
                    l.string(&h.value, any, String::new)?,
                ))
            },
        )?;
        let body = match &r.body {
            Some(body) => {
                Self::charge(&mut self.budget, body.len())?;
                Some(body.as_le_slice(&*self.store).to_vec())
            }
            None => None,
        };
        Ok(OutgoingRequest {
            method: self.string(&r.method, any, String::new)?,
            url: self.string(&r.url, any, String::new)?,
            headers,
            body,
        })
    }

    /// A string that only the budget bounds.
    pub fn text(&mut self, s: WasmStr) -> Result<String, Refusal> {
        self.string(&s, usize::MAX, String::new)
    }
}

fn level_from_wit(l: wit::PermissionLevel) -> model::PermissionLevel {
    match l {
        wit::PermissionLevel::Owner => model::PermissionLevel::Owner,
        wit::PermissionLevel::Write => model::PermissionLevel::Write,
        wit::PermissionLevel::Read => model::PermissionLevel::Read,
    }
}

/// The configuration the connector sees: everything but the secret.
pub fn guest_config(config: &Config, now: i64) -> wit_life::Config {
    let f = &config.filters;
    wit_life::Config {
        base_url: config.base_url.clone(),
        username: config.username.clone(),
        batch_size: config.batch_size,
        filters: wit_life::Filters {
            include_extensions: f.include_extensions.clone(),
            exclude_extensions: f.exclude_extensions.clone(),
            modified_after: f.modified_after,
            modified_before: f.modified_before,
            created_after: f.created_after,
            created_before: f.created_before,
        },
        reconcile_interval: config.reconcile_interval_minutes * 60,
        now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn records_round_trip_through_the_wit_shape() {
        let r = model::Record {
            external_id: "42".into(),
            parent_external_id: Some("1".into()),
            path: "/Docs/a.pdf".into(),
            name: "a.pdf".into(),
            is_folder: false,
            etag: "e".into(),
            size: 7,
            mime_type: "application/pdf".into(),
            modified: 1,
            created: Some(0),
            permission_letters: "RGDNVW".into(),
            permissions: vec![
                model::Permission {
                    principal: model::Principal::User {
                        id: "alice".into(),
                        email: None,
                    },
                    level: model::PermissionLevel::Owner,
                },
                model::Permission {
                    principal: model::Principal::Group { id: "staff".into() },
                    level: model::PermissionLevel::Write,
                },
                model::Permission {
                    principal: model::Principal::AnyoneWithLink {
                        share_id: "s".into(),
                        expires: Some(9),
                    },
                    level: model::PermissionLevel::Read,
                },
                model::Permission {
                    principal: model::Principal::Federated {
                        id: "bob@other".into(),
                    },
                    level: model::PermissionLevel::Read,
                },
            ],
            owner_id: Some("alice".into()),
            checksums: vec!["SHA1:00".into()],
        };
        assert_eq!(record_from_wit(record_to_wit(r.clone())), r);
    }

    #[test]
    fn guest_config_carries_no_secret() {
        let config = Config::from_toml_str(
            "base_url = \"https://h.example/nc/\"\nusername = \"alice\"\ndatabase = \"d\"\nreconcile_interval_minutes = 2\n[filters]\ninclude_extensions = [\"PDF\"]\n",
            std::path::Path::new("/tmp"),
        )
        .unwrap()
        .with_secret(Secret::new("very-secret-pw"));
        let g = guest_config(&config, 1234);
        assert_eq!(g.base_url, "https://h.example/nc");
        assert_eq!(g.username, "alice");
        assert_eq!(g.reconcile_interval, 120);
        assert_eq!(g.now, 1234);
        assert_eq!(g.filters.include_extensions, vec!["pdf"]);
        assert!(!format!("{g:?}").contains("very-secret-pw"));
    }
}
