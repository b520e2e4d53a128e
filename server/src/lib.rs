//! A strict local implementation of the Inhouse event API for tests and development.
//!
//! - [`config`]: configuration and command-line parsing
//! - [`api`]: the track endpoint and its checks (API port)
//! - [`listener`]: TCP accept loop, connection faults, going down and up
//! - [`control`]: inspection and fault scripting (control port)
//! - [`viewer`]: the control port's page, events live and faults as buttons (`GET /`)
//! - [`faults`], [`record`], [`idempotency`], [`ratelimit`]: the state those act on
//! - [`chunklog`]: the bounded logs behind [`record`], cheap to snapshot
//! - [`db`]: `--db`, the SQLite file that keeps events and idempotency records across restarts
//! - [`envelope`]: Inhouse's error envelope

pub mod api;
pub mod chunklog;
pub mod config;
pub mod control;
pub mod db;
pub mod envelope;
pub mod faults;
pub mod idempotency;
pub mod listener;
pub mod ratelimit;
pub mod record;
pub mod state;
pub mod time;
pub mod viewer;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{Config, RateLimit, Token};

use crate::control::Control;
use crate::db::Db;
use crate::listener::ApiListener;
use crate::state::State;

/// A running server. Dropping it stops both ports; [`Running::shutdown`] also waits for that
/// (and, with `--db`, for the file to be written and released).
pub struct Running {
    api: Arc<ApiListener>,
    control_addr: SocketAddr,
    root: CancellationToken,
    control_task: Option<JoinHandle<()>>,
    state: Arc<State>,
}

/// A port that cannot be bound, said in terms of the flag that chose it.
fn bind_error(e: io::Error, port: u16, flag: &str) -> io::Error {
    let message = if e.kind() == io::ErrorKind::AddrInUse {
        format!(
            "port {port} is already in use (another inhouse-server?); choose another with {flag} N, or {flag} 0 for any free port"
        )
    } else {
        format!("cannot listen on 127.0.0.1:{port} ({flag}): {e}")
    };
    io::Error::new(e.kind(), message)
}

/// Opens `--db` (if any), binds both ports on 127.0.0.1 and starts serving. A port already in
/// use is an [`io::ErrorKind::AddrInUse`] error naming the port and its flag.
pub async fn start(config: Config) -> io::Result<Running> {
    config::validate_tokens(&config.tokens)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    if let Some(rl) = config.rate_limit {
        if rl.limit == 0 || rl.window_secs == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rate limit must be positive",
            ));
        }
    }
    let (db, loaded) = match config.db.clone() {
        Some(path) => {
            let opened = tokio::task::spawn_blocking(move || Db::open(&path))
                .await
                .map_err(io::Error::other)?;
            let (db, loaded) = opened.map_err(io::Error::other)?;
            (Some(db), Some(loaded))
        }
        None => (None, None),
    };
    let state = Arc::new(State::new(&config, db, loaded));
    let root = CancellationToken::new();
    let api = match ApiListener::start(loopback(config.api_port), state.clone(), root.clone()).await
    {
        Ok(api) => api,
        Err(e) => {
            close_db(&state).await;
            return Err(bind_error(e, config.api_port, "--port"));
        }
    };
    let control_listener = match tokio::net::TcpListener::bind(loopback(config.control_port))
        .await
        .and_then(|l| l.local_addr().map(|addr| (l, addr)))
    {
        Ok(bound) => bound,
        Err(e) => {
            root.cancel();
            api.shutdown().await;
            close_db(&state).await;
            return Err(bind_error(e, config.control_port, "--control-port"));
        }
    };
    let (control_listener, control_addr) = control_listener;
    let app = control::router(Control {
        state: state.clone(),
        api: api.clone(),
    });
    let control_task = tokio::spawn(listener::serve_control(
        control_listener,
        app,
        root.clone(),
        config.header_read_timeout,
    ));
    Ok(Running {
        api,
        control_addr,
        root,
        control_task: Some(control_task),
        state,
    })
}

async fn close_db(state: &State) {
    if let Some(db) = &state.db {
        db.close().await;
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

impl Running {
    pub fn api_addr(&self) -> SocketAddr {
        self.api.addr()
    }

    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// `http://127.0.0.1:<port>`, the base for API paths.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr())
    }

    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// `--db`'s file, if any.
    pub fn db_path(&self) -> Option<&std::path::Path> {
        self.state.db.as_ref().map(Db::path)
    }

    /// Stops both ports, drops open connections and waits until that is done; with `--db`,
    /// then writes what is queued and closes the file.
    pub async fn shutdown(mut self) {
        self.root.cancel();
        self.api.shutdown().await;
        if let Some(task) = self.control_task.take() {
            // Graceful on the control port, but bounded: a client may hold a keep-alive open.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
        close_db(&self.state).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.root.cancel();
    }
}
