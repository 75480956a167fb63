//! Conversions between the generated WIT types and the host's own.

use super::bindings::exports::nextcloud::connector::lifecycle as wit_life;
use super::bindings::nextcloud::connector::{
    http as wit_http, storage as wit_storage, types as wit,
};
use crate::config::Config;
use crate::http::{HttpError, OutgoingRequest};
use crate::model;

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
        level: match p.level {
            wit::PermissionLevel::Owner => model::PermissionLevel::Owner,
            wit::PermissionLevel::Write => model::PermissionLevel::Write,
            wit::PermissionLevel::Read => model::PermissionLevel::Read,
        },
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
            wit::RecordGroupKind::Drive => "drive".to_string(),
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
