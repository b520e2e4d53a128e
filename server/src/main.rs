//! `inhouse-server`: see README.md for the command line.

use std::io::Write;
use std::process::ExitCode;

use inhouse_server::config::{Cli, USAGE};
use inhouse_server::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(Cli::Run(config)) => config,
        Ok(Cli::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("inhouse-server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if config.tokens.is_empty() {
        eprintln!("inhouse-server: no credentials configured; every track request will get 401 (use --token or POST /tokens)");
    }
    let running = match inhouse_server::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("inhouse-server: cannot start: {e}");
            if e.kind() == std::io::ErrorKind::AddrInUse {
                eprintln!(
                    "inhouse-server: (with make server: INHOUSE_PORT=N / INHOUSE_CONTROL_PORT=N make server)"
                );
            }
            return ExitCode::FAILURE;
        }
    };
    // Scripts wait for the first line, exactly so, so it goes out whole and flushed; the
    // lines after it are for people (and must not contain `api=` or `control=`, which
    // scripts grep for).
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "inhouse-server listening api={} control={}",
        running.api_url(),
        running.control_url()
    );
    let _ = writeln!(stdout, "  SDK baseUrl:   {}/v1/api", running.api_url());
    let _ = writeln!(stdout, "  event viewer:  {}/", running.control_url());
    let _ = writeln!(
        stdout,
        "  watch events:  curl '{}/events?format=text'",
        running.control_url()
    );
    if let Some(path) = running.db_path() {
        let _ = writeln!(stdout, "  events kept in {}", path.display());
    }
    let _ = stdout.flush();
    drop(stdout);

    wait_for_signal().await;
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
