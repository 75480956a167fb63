//! Where a run reads: the user's files over WebDAV, with the server's quirks
//! applied and learned.

use crate::body::read_body;
use crate::entry::Identity;
use crate::error::Error;
use crate::host::{Host, Level, Request, send_each};
use crate::href::DavRoot;
use crate::keys;
use crate::propfind::{PROPFIND_BODY, is_finite_depth_error};
use crate::server::Server;

/// Enough to read a refusal's body.
const SMALL_BODY: usize = 64 * 1024;

pub fn propfind(url: String, depth: &str) -> Request {
    Request::new("PROPFIND", url)
        .header("Depth", depth)
        .header("Content-Type", "application/xml; charset=utf-8")
        .body(PROPFIND_BODY.as_bytes().to_vec())
}

/// What a `Depth: infinity` PROPFIND got.
pub enum Infinity<B> {
    Listing(B),
    /// The folder is gone (404).
    Gone,
    /// The server lists no subtree at once: folder by folder, then.
    Refused,
}

pub struct Dav<'h, H: Host> {
    pub host: &'h H,
    pub root: &'h DavRoot,
    pub who: &'h Identity,
    server: Server,
    server_at_start: Server,
}

impl<'h, H: Host> Dav<'h, H> {
    pub fn new(host: &'h H, root: &'h DavRoot, who: &'h Identity, server: Server) -> Self {
        Dav {
            host,
            root,
            who,
            server,
            server_at_start: server,
        }
    }

    pub fn log(&self, level: Level, message: &str) {
        self.host.log(level, message);
    }

    /// `scope` and everything below it at once, unless the server is known
    /// to refuse that; the whole account is always asked, so that a server
    /// that allows it again is noticed.
    pub fn infinity(&mut self, scope: &str) -> Result<Infinity<H::Body>, Error> {
        if !self.server.depth_infinity && scope != "/" {
            return Ok(Infinity::Refused);
        }
        let response = self
            .host
            .send(propfind(self.root.url_of(scope), "infinity"))?;
        match response.status {
            207 => {
                self.server.depth_infinity = true;
                Ok(Infinity::Listing(response.body))
            }
            404 => Ok(Infinity::Gone),
            403 | 412 | 501 => {
                let body = read_body(response.body, SMALL_BODY)?;
                if response.status == 403 && !is_finite_depth_error(&body) {
                    return Err(Error::status(&format!("listing {scope}"), 403));
                }
                self.log(
                    Level::Info,
                    &format!(
                        "the server refuses Depth: infinity ({}); listing {scope} folder by folder",
                        response.status
                    ),
                );
                self.server.depth_infinity = false;
                Ok(Infinity::Refused)
            }
            status => Err(Error::status(&format!("listing {scope}"), status)),
        }
    }

    /// PROPFINDs every path at `depth` at once; the body of each 207, `None`
    /// for a 404, an error for anything else.
    pub fn propfind_all(
        &self,
        paths: &[String],
        depth: &str,
    ) -> Result<Vec<Option<H::Body>>, Error> {
        let requests = paths
            .iter()
            .map(|p| propfind(self.root.url_of(p), depth))
            .collect();
        let responses = send_each(self.host, requests)?;
        paths
            .iter()
            .zip(responses)
            .map(|(path, response)| {
                let response = response?;
                match response.status {
                    207 => Ok(Some(response.body)),
                    404 => Ok(None),
                    status => Err(Error::status(&format!("reading {path}"), status)),
                }
            })
            .collect()
    }

    /// Stages what this run learned of the server, whether or not the run
    /// covered everything: it holds either way.
    pub fn keep_what_was_learned(&self) {
        if self.server != self.server_at_start {
            self.host.set(keys::SERVER, &self.server.to_json());
        }
    }
}
