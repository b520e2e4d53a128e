//! The API port's TCP side: accept loop, per-connection tasks, and the ability to go down and
//! come back on the same port, drop a single connection, or close idle keep-alive connections.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use crate::state::State;

/// HTTP/1 as both ports serve it: slow or stalled clients may not hold a connection open
/// forever before sending a request head.
fn http1_builder(header_read_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
}

/// Serves the control port's router until `stop`, with the same HTTP/1 settings (header-read
/// timeout included) as the API port. On `stop`, open connections finish their request in
/// flight and close.
pub async fn serve_control(
    listener: TcpListener,
    app: axum::Router,
    stop: CancellationToken,
    header_read_timeout: Duration,
) {
    let conns = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        conns.spawn(async move {
            let conn =
                http1_builder(header_read_timeout).serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
}

/// Handle a request handler uses to act on its own connection.
#[derive(Clone)]
pub struct ConnCtx {
    kill: CancellationToken,
}

impl ConnCtx {
    /// Drops the TCP connection (with a reset) without sending a response.
    pub fn kill(&self) {
        self.kill.cancel();
    }

    /// Resolves once the connection is being dropped (server shutdown, down, or `kill`).
    pub async fn killed(&self) {
        self.kill.cancelled().await
    }
}

/// One period of listening; ends when the API goes down or the server stops.
struct Generation {
    cancel: CancellationToken,
    accept: JoinHandle<()>,
    conns: TaskTracker,
}

pub struct ApiListener {
    addr: SocketAddr,
    state: Arc<State>,
    root: CancellationToken,
    current: Mutex<Option<Generation>>,
    down: AtomicBool,
    /// Bumped to make every connection close once it is idle.
    close_idle: watch::Sender<u64>,
}

impl ApiListener {
    /// Binds `addr` (port 0 = ephemeral) and starts serving.
    pub async fn start(
        addr: SocketAddr,
        state: Arc<State>,
        root: CancellationToken,
    ) -> io::Result<Arc<Self>> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let this = Arc::new(ApiListener {
            addr,
            state,
            root,
            current: Mutex::new(None),
            down: AtomicBool::new(false),
            close_idle: watch::Sender::new(0),
        });
        *this.current.lock().await = Some(this.spawn_generation(listener));
        Ok(this)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// `true`: close the listener and drop every open connection; returns once the port refuses
    /// connections. `false`: listen again on the same port.
    pub async fn set_down(&self, down: bool) -> io::Result<()> {
        let mut current = self.current.lock().await;
        if down {
            if let Some(generation) = current.take() {
                stop(generation).await;
            }
        } else if current.is_none() {
            *current = Some(self.spawn_generation(bind(self.addr)?));
        }
        self.down.store(down, Ordering::SeqCst);
        Ok(())
    }

    /// Asks every connection to close as soon as it has no request in flight.
    pub fn close_idle_connections(&self) {
        self.close_idle.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Stops listening and drops all connections, for server shutdown.
    pub async fn shutdown(&self) {
        if let Some(generation) = self.current.lock().await.take() {
            stop(generation).await;
        }
    }

    fn spawn_generation(&self, listener: TcpListener) -> Generation {
        let cancel = self.root.child_token();
        let conns = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            self.state.clone(),
            cancel.clone(),
            conns.clone(),
            self.close_idle.subscribe(),
        ));
        Generation {
            cancel,
            accept,
            conns,
        }
    }
}

async fn stop(generation: Generation) {
    generation.cancel.cancel();
    // The accept task owns the listener; once it has finished, the port refuses connections.
    let _ = generation.accept.await;
    generation.conns.close();
    generation.conns.wait().await;
}

/// SO_REUSEADDR lets the port be bound again right after going down, despite TIME_WAIT.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    cancel: CancellationToken,
    conns: TaskTracker,
    close_idle: watch::Receiver<u64>,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_connection(
                    stream,
                    state.clone(),
                    cancel.child_token(),
                    close_idle.clone(),
                ));
            }
            // Typically EMFILE or a connection reset before accept; back off briefly, keep going.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    state: Arc<State>,
    kill: CancellationToken,
    mut close_idle: watch::Receiver<u64>,
) {
    close_idle.mark_unchanged();
    let ctx = ConnCtx { kill: kill.clone() };
    let header_read_timeout = state.header_read_timeout;
    let service = service_fn(move |req| {
        let state = state.clone();
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(api::handle(state, ctx, req).await) }
    });
    let mut conn =
        http1_builder(header_read_timeout).serve_connection(TokioIo::new(stream), service);
    let mut watching = true;
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = kill.cancelled() => break,
            changed = close_idle.changed(), if watching => match changed {
                Ok(()) => std::pin::Pin::new(&mut conn).graceful_shutdown(),
                Err(_) => watching = false,
            },
        }
    }
    // Killed: reset rather than close, so the client sees a network error at once instead of
    // an orderly end of stream.
    let io = conn.into_parts().io.into_inner();
    let _ = io.set_zero_linger();
}
