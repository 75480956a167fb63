//! What tests read to prove a hostile client changed nothing: which requests
//! could have written, and a fingerprint of every piece of server state a
//! write could change.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::share::ShareWith;
use crate::sim::State;

/// Methods that never change state on Nextcloud.
const READ_METHODS: [&str; 6] = ["GET", "HEAD", "PROPFIND", "SEARCH", "REPORT", "OPTIONS"];

pub fn is_read_method(method: &str) -> bool {
    READ_METHODS.contains(&method)
}

/// Whether a request (raw path, query included) is an attempted write:
/// any method but the read ones, plus `core/getapppassword`, a GET that
/// mints a credential on a login-password session.
pub fn is_write(method: &str, raw_path: &str) -> bool {
    let path = raw_path.split('?').next().unwrap_or(raw_path);
    !is_read_method(method) || path.ends_with("/core/getapppassword")
}

impl State {
    /// Changes whenever the tree (trash included), the shares, the stored
    /// properties or any account's app password change.
    pub fn fingerprint(&self) -> u64 {
        // `DefaultHasher::new` uses fixed keys: equal states hash equally
        // within one build, which is all a before/after comparison needs.
        let mut h = DefaultHasher::new();
        self.tree.hash_state(&mut h);
        self.shares.len().hash(&mut h);
        for s in &self.shares {
            (s.id, &s.sharer, &s.file_owner, s.node, s.permissions).hash(&mut h);
            (&s.token, &s.targets, &s.default_target, s.stime).hash(&mut h);
            match &s.with {
                ShareWith::User(x)
                | ShareWith::Group(x)
                | ShareWith::Email(x)
                | ShareWith::Federated(x) => (s.with.share_type(), x).hash(&mut h),
                ShareWith::Link { expires } => (s.with.share_type(), expires).hash(&mut h),
            }
        }
        self.props.hash(&mut h);
        for u in &self.users {
            (&u.spec.user_id, &u.spec.login, &u.spec.app_password).hash(&mut h);
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_methods_and_paths() {
        for m in READ_METHODS {
            assert!(!is_write(m, "/remote.php/dav/files/alice/"));
        }
        for m in [
            "PUT",
            "MKCOL",
            "DELETE",
            "MOVE",
            "COPY",
            "PROPPATCH",
            "LOCK",
            "TRACE",
            "POST",
        ] {
            assert!(is_write(m, "/remote.php/dav/files/alice/x"));
        }
        assert!(is_write(
            "GET",
            "/ocs/v2.php/core/getapppassword?format=json"
        ));
        assert!(!is_write("GET", "/ocs/v2.php/cloud/user?format=json"));
    }
}
