//! `core/getapppassword` and `core/apppassword[/rotate]`
//! (`AppPasswordController`): the OCS endpoints that mint, rotate and delete
//! the credential a client holds. Rotation and deletion really take effect,
//! so a client that reaches them visibly locks its owner out.

use axum::http::{HeaderMap, Method, StatusCode};

use crate::content::splitmix64;
use crate::http::Resp;
use crate::json::{J, obj, s};
use crate::ocs::{csrf_check, ocs_failure, ocs_ok};
use crate::sim::Simulator;

/// `ISecureRandom::CHAR_UPPER . CHAR_LOWER . CHAR_DIGITS`.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// `$this->random->generate(72, …)`.
const LENGTH: usize = 72;

/// `None` when `ocs_path` is none of these endpoints.
pub fn handle(
    sim: &Simulator,
    me: usize,
    method: &Method,
    ocs_path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Option<Resp> {
    let endpoint = match (method.as_str(), ocs_path) {
        ("GET", "/core/getapppassword") => Endpoint::Get,
        ("POST", "/core/apppassword/rotate") => Endpoint::Rotate,
        ("DELETE", "/core/apppassword") => Endpoint::Delete,
        _ => return None,
    };
    let user = sim.lock().users[me].spec.user_id.clone();
    if let Some(resp) = csrf_check(headers, &user) {
        return Some(resp);
    }
    let resp = match endpoint {
        // Every session here is an app-password one: Nextcloud refuses to
        // mint another from it.
        Endpoint::Get => ocs_failure(
            StatusCode::FORBIDDEN,
            "You cannot request an new apppassword with an apppassword",
            query,
            headers,
            &user,
        ),
        Endpoint::Rotate => {
            let new = {
                let mut st = sim.lock();
                st.passwords_issued += 1;
                let new = generate(splitmix64(st.passwords_issued ^ ((me as u64) << 32)));
                set_password(&mut st, me, &new);
                new
            };
            ocs_ok(obj([("apppassword", s(&new))]), query, headers, &user)
        }
        Endpoint::Delete => {
            // An empty password never authenticates (`State::authenticate`).
            set_password(&mut sim.lock(), me, "");
            ocs_ok(J::Arr(vec![]), query, headers, &user)
        }
    };
    Some(resp)
}

enum Endpoint {
    Get,
    Rotate,
    Delete,
}

fn set_password(st: &mut crate::sim::State, me: usize, password: &str) {
    st.users[me].spec.app_password = password.to_string();
    // The first account's password is also in the options tests read.
    if me == 0 {
        st.opts.app_password = password.to_string();
    }
}

fn generate(mut x: u64) -> String {
    (0..LENGTH)
        .map(|_| {
            x = splitmix64(x);
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}
