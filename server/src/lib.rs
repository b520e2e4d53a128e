//! A strict local implementation of the Inhouse event API for tests and development.
//!
//! - [`config`]: configuration and command-line parsing
//! - [`api`]: the track endpoint and its checks (API port)
//! - [`listener`]: TCP accept loop, connection faults, going down and up
//! - [`control`]: inspection and fault scripting (control port)
//! - [`faults`], [`record`], [`idempotency`], [`ratelimit`]: the state those act on
//! - [`envelope`]: Inhouse's error envelope

pub mod api;
pub mod config;
pub mod control;
pub mod envelope;
pub mod faults;
pub mod idempotency;
pub mod listener;
pub mod ratelimit;
pub mod record;
pub mod state;
pub mod time;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{Config, RateLimit, Token};

use crate::control::Control;
use crate::listener::ApiListener;
use crate::state::State;

/// A running server. Dropping it stops both ports; [`Running::shutdown`] also waits for that.
pub struct Running {
    api: Arc<ApiListener>,
    control_addr: SocketAddr,
    root: CancellationToken,
    control_task: Option<JoinHandle<()>>,
}

/// Binds both ports on 127.0.0.1 and starts serving.
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
    let state = Arc::new(State::new(&config));
    let root = CancellationToken::new();
    let api = ApiListener::start(loopback(config.api_port), state.clone(), root.clone()).await?;

    let control_listener = tokio::net::TcpListener::bind(loopback(config.control_port)).await?;
    let control_addr = control_listener.local_addr()?;
    let app = control::router(Control {
        state,
        api: api.clone(),
    });
    let stop = root.clone();
    let control_task = tokio::spawn(async move {
        let _ = axum::serve(control_listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok(Running {
        api,
        control_addr,
        root,
        control_task: Some(control_task),
    })
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

    /// Stops both ports, drops open connections and waits until that is done.
    pub async fn shutdown(mut self) {
        self.root.cancel();
        self.api.shutdown().await;
        if let Some(task) = self.control_task.take() {
            // Graceful on the control port, but bounded: a client may hold a keep-alive open.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.root.cancel();
    }
}
