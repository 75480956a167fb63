//! The HTTP server: a background thread with its own tokio runtime, one
//! fallback handler that routes by path (PROPFIND is no axum method), and the
//! request log.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::serve::ListenerExt as _;
use tokio::sync::oneshot;

use crate::dav::{self, Target};
use crate::encode::href_segment;
use crate::fault::{self, Early, InterceptAction, RequestInfo, ResetConnection};
use crate::http::{Auth, Resp, builder, check_auth, dav_unauthorized, finish, sabre_error};
use crate::sim::{RequestLog, SimOptions, Simulator};
use crate::{activity, apppassword, ocs, search, share};

pub struct Server {
    base_url: String,
    sim: Simulator,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1 on a free port; returns once listening.
    pub fn start(sim: Simulator) -> anyhow::Result<Server> {
        Self::start_on(sim, SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn start_on(sim: Simulator, addr: SocketAddr) -> anyhow::Result<Server> {
        let std_listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
        std_listener.set_nonblocking(true)?;
        let local = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nextcloud-sim")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        // A streamed answer ends with a separate small write (the last chunk);
        // with Nagle on, it waits for the client's delayed ACK, ~40 ms on every
        // other request of a keep-alive connection. Real deployments do not
        // stall so (nginx `tcp_nodelay on`, Apache sets TCP_NODELAY), and
        // sequential clients such as `rclone --checkers 1` would measure it.
        // Failing to set it only costs speed.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app_sim = sim.clone();
        let app = Router::new().fallback(move |req: Request| {
            let sim = app_sim.clone();
            async move { handle(sim, req).await }
        });
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nextcloud-sim-server".into())
            .spawn(move || {
                rt.block_on(async move {
                    let serve = axum::serve(listener, app);
                    tokio::select! {
                        result = async { serve.await } => {
                            if let Err(e) = result {
                                eprintln!("nextcloud-sim: server error: {e}");
                            }
                        }
                        _ = rx => {}
                    }
                });
                // Open connections and half-read streams are cut off here.
                rt.shutdown_timeout(Duration::from_secs(2));
            })?;
        let subpath = sim.lock().opts.subpath.clone();
        Ok(Server {
            base_url: format!("http://{local}{subpath}"),
            sim,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// "http://127.0.0.1:PORT" plus the subpath, no trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn handle(sim: Simulator, req: Request) -> Resp {
    let method = req.method().clone();
    let raw = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let depth = req
        .headers()
        .get("depth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (opts, (auth, me), plan) = {
        let mut st = sim.lock();
        let auth = check_auth(req.headers(), &st);
        let below = strip_prefix_dir(req.uri().path(), &st.opts.subpath).unwrap_or("");
        let plan = st.faults.plan(&RequestInfo {
            method: method.as_str(),
            path: below,
            query: req.uri().query().unwrap_or(""),
            depth: depth.as_deref(),
        });
        (st.opts.clone(), auth, plan)
    };
    if let Some(ms) = plan.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let log = |status: u16| RequestLog {
        method: method.to_string(),
        path: raw.clone(),
        depth: depth.clone(),
        status,
        authorized: auth == Auth::Ok,
    };
    let resp = match plan.early {
        Some(Early::Reset) => {
            sim.record(log(0));
            // Ends this connection's task without a byte of an answer.
            std::panic::resume_unwind(Box::new(ResetConnection));
        }
        Some(Early::Respond(resp)) => resp,
        None => match plan.intercept {
            Some(InterceptAction::Respond(canned)) => canned.into_response(),
            Some(InterceptAction::Rewrite(f)) => {
                fault::rewrite(route(&sim, req, auth, me, &opts).await, &f).await
            }
            Some(InterceptAction::Hold(gate)) => {
                gate.pass().await;
                route(&sim, req, auth, me, &opts).await
            }
            None => route(&sim, req, auth, me, &opts).await,
        },
    };
    let resp = match plan.cut {
        Some((cut, at)) if resp.status() == StatusCode::MULTI_STATUS => {
            sim.lock().faults.count_cut(cut);
            fault::cut_body(resp, cut, at)
        }
        _ => resp,
    };
    sim.record(log(resp.status().as_u16()));
    resp
}

async fn route(
    sim: &Simulator,
    req: Request,
    auth: Auth,
    me: Option<usize>,
    opts: &SimOptions,
) -> Resp {
    let (parts, body) = req.into_parts();
    let full_path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let headers = &parts.headers;
    let Some(path) = strip_prefix_dir(full_path, &opts.subpath) else {
        return plain_not_found();
    };
    let method = &parts.method;
    let get_like = *method == Method::GET || *method == Method::HEAD;
    let me_id = me.map(|i| sim.lock().users[i].spec.user_id.clone());

    if path == "/status.php" && get_like {
        return ocs::status();
    }
    for script in ["/ocs/v2.php", "/ocs/v1.php"] {
        let Some(ocs_path) = path.strip_prefix(script) else {
            continue;
        };
        if ocs_path == "/cloud/capabilities" && get_like {
            let base = base_url(headers, &opts.subpath);
            let activity = sim.lock().activity.enabled;
            return ocs::capabilities(&base, query, headers, auth, me_id.as_deref(), activity);
        }
        let (Auth::Ok, Some(me), Some(user)) = (auth, me, me_id.as_deref()) else {
            return ocs::unauthorized(auth, query, headers);
        };
        if ocs_path == "/cloud/user" && get_like {
            let (spec, used, started) = {
                let st = sim.lock();
                let u = &st.users[me];
                (
                    u.spec.clone(),
                    st.tree.node(u.root).map_or(0, |n| n.size),
                    st.started,
                )
            };
            return ocs::user(&spec, used, started, query, headers);
        }
        if let Some(rest) = ocs_path.strip_prefix("/apps/activity/api/v2/activity")
            && (rest.is_empty() || rest.starts_with('/'))
            && get_like
            && sim.lock().activity.enabled
        {
            let base = base_url(headers, &opts.subpath);
            return activity::handle(sim, me, script, rest, query, headers, &base);
        }
        if let Some(rest) = ocs_path.strip_prefix("/apps/files_sharing/api/v1/shares")
            && (rest.is_empty() || rest.starts_with('/'))
        {
            if let Some(resp) = ocs::csrf_check(headers, user) {
                return resp;
            }
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let base = base_url(headers, &opts.subpath);
            return share::api::handle(sim, me, method, rest, query, headers, &bytes, &base);
        }
        if let Some(resp) = apppassword::handle(sim, me, method, ocs_path, query, headers) {
            return resp;
        }
        return ocs::not_found(query, headers, user);
    }
    if path == "/remote.php/webdav"
        || path.starts_with("/remote.php/webdav/")
        || path.starts_with("/remote.php/dav")
    {
        let (Auth::Ok, Some(me), Some(user)) = (auth, me, me_id.as_deref()) else {
            return dav_unauthorized(auth);
        };
        if (path == "/remote.php/dav" || path == "/remote.php/dav/") && method.as_str() == "SEARCH"
        {
            let bytes = match axum::body::to_bytes(body, 1 << 20).await {
                Ok(b) => b,
                Err(e) => {
                    return sabre_error(
                        StatusCode::BAD_REQUEST,
                        "Sabre\\DAV\\Exception\\BadRequest",
                        &e.to_string(),
                    );
                }
            };
            return search::handle(sim, me, &opts.subpath, &bytes);
        }
        let Some(target) = dav_target(path, &opts.subpath, user) else {
            return sabre_error(
                StatusCode::NOT_FOUND,
                "Sabre\\DAV\\Exception\\NotFound",
                "The simulator only serves files/{user}/ below /remote.php/dav",
            );
        };
        return dav::handle(sim, me, method, target, headers, body).await;
    }
    plain_not_found()
}

/// `path` below `prefix` when `prefix` is a whole leading directory of it.
pub fn strip_prefix_dir<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(if rest.is_empty() { "/" } else { rest })
}

pub fn dav_target(path: &str, subpath: &str, own_user: &str) -> Option<Target> {
    if let Some(rest) = strip_prefix_dir(path, "/remote.php/webdav") {
        return Some(Target {
            href_base: format!("{subpath}/remote.php/webdav/"),
            user: own_user.to_string(),
            rel: rest.to_string(),
        });
    }
    let rest = path.strip_prefix("/remote.php/dav/files/")?;
    let (user_enc, rel) = rest.split_once('/').unwrap_or((rest, ""));
    let user = crate::encode::percent_decode(user_enc).filter(|u| !u.is_empty())?;
    let mut href_base = format!("{subpath}/remote.php/dav/files/");
    href_segment(&mut href_base, &user);
    href_base.push('/');
    Some(Target {
        href_base,
        user,
        rel: rel.to_string(),
    })
}

/// The server's own URL as the client addressed it, for absolute links.
fn base_url(headers: &HeaderMap, subpath: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}{subpath}")
}

fn plain_not_found() -> Resp {
    finish(
        builder(StatusCode::NOT_FOUND).header(header::CONTENT_TYPE, "text/html; charset=UTF-8"),
        "<!DOCTYPE html>\n<html><head><title>Nextcloud</title></head><body><h2>Page not found</h2></body></html>\n",
    )
}
