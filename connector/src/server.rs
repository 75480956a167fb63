//! What the connector knows of the server's quirks: decided at the start of
//! a run from what earlier runs found, changed only when the server shows
//! otherwise, and kept for the next run (sync point [`keys::SERVER`]), the
//! way rclone's webdav backend sets its quirks once at start-up.

use serde::{Deserialize, Serialize};

use crate::host::Host;
use crate::keys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// `PROPFIND Depth: infinity` is answered. An admin may turn it off
    /// (`dav.propfind.depth_infinity`); then a subtree is listed folder by
    /// folder without asking again. A listing of the whole account asks
    /// anyway, so a server that allows it again is noticed.
    pub depth_infinity: bool,
    /// The Activity app answers; without it changes are found by etags.
    pub activity: bool,
}

impl Server {
    /// What the last runs learned; a store from before this key knew the
    /// Activity app's absence by an empty cursor.
    pub fn load<H: Host>(host: &H) -> Server {
        host.get(keys::SERVER)
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_else(|| Server {
                depth_infinity: true,
                activity: host.get(keys::CURSOR).is_none_or(|c| !c.is_empty()),
            })
    }

    pub fn to_json(self) -> String {
        serde_json::to_string(&self).expect("two booleans serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MemoryHost, response};

    fn stored(points: &[(&str, &str)]) -> Server {
        let host = MemoryHost::new(|_| response(500, ""));
        for (key, value) in points {
            host.committed
                .borrow_mut()
                .points
                .insert(key.to_string(), value.to_string());
        }
        Server::load(&host)
    }

    #[test]
    fn a_store_without_the_key_is_read_by_its_cursor() {
        let all = Server {
            depth_infinity: true,
            activity: true,
        };
        assert_eq!(stored(&[]), all);
        assert_eq!(stored(&[(keys::CURSOR, "41")]), all);
        // An empty cursor was how the absence of the Activity app was kept.
        assert!(!stored(&[(keys::CURSOR, "")]).activity);
        let learned = Server {
            depth_infinity: false,
            activity: false,
        };
        assert_eq!(
            stored(&[(keys::CURSOR, "41"), (keys::SERVER, &learned.to_json())]),
            learned
        );
    }
}
