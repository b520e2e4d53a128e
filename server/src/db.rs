//! `--db PATH`: what the server accepted (stored events, idempotency records) kept in SQLite so
//! it survives a restart. Memory stays the source of truth while running; the file mirrors it:
//! one writer thread applies, in order, the changes the state made under its lock, a batch per
//! transaction (group commit), and a track request is answered only once its event is committed.
//! The oldest events and records dropped from memory are deleted from the file too, and
//! `POST /reset` empties it. The file is held exclusively: a second server cannot open it.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::idempotency::{KeyOf, Remembered};
use crate::record::{EventHeaders, StoredEvent, REDACTED};
use crate::time::rfc3339;

const SCHEMA_VERSION: i64 = 1;
/// Most changes applied in one transaction.
const MAX_BATCH: usize = 4096;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    event_name TEXT NOT NULL,
    properties TEXT NOT NULL,
    idempotency_key TEXT,
    request_id TEXT NOT NULL,
    path TEXT NOT NULL,
    token_id TEXT NOT NULL,
    app TEXT NOT NULL,
    content_type TEXT,
    origin TEXT,
    user_agent TEXT
);
CREATE TABLE IF NOT EXISTS idempotency (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    event_id TEXT NOT NULL,
    response TEXT NOT NULL,
    UNIQUE (token_id, key)
);
";

/// One change to mirror, in the order the state made it.
pub enum Op {
    Event(Arc<StoredEvent>),
    /// The events before `first_seq` were dropped from memory; `dropped_oldest` is the total.
    DropEventsBefore {
        first_seq: u64,
        dropped_oldest: u64,
    },
    Remember {
        token_id: String,
        key: String,
        record: Remembered,
    },
    Forget(Vec<KeyOf>),
    /// `POST /reset`: no events, no records (event ids keep counting).
    Clear,
    /// Answered once every change sent before it is committed.
    Sync(oneshot::Sender<()>),
    /// Commit what came before, answer, and stop.
    Close(oneshot::Sender<()>),
}

/// What a file held when opened, oldest first.
#[derive(Default)]
pub struct Loaded {
    pub events: Vec<StoredEvent>,
    pub remembered: Vec<(String, String, Remembered)>,
    /// The highest `evt_<n>` ever handed out, so ids are not reused after a restart.
    pub last_event_id: u64,
    pub dropped_oldest: u64,
}

/// The handle the state sends changes through.
pub struct Db {
    path: PathBuf,
    tx: mpsc::Sender<Op>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn describe(path: &Path, e: &rusqlite::Error) -> String {
    let busy = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    if busy {
        format!(
            "--db {}: the file is in use (another inhouse-server?); stop it or choose another file",
            path.display()
        )
    } else {
        format!("--db {}: {e}", path.display())
    }
}

impl Db {
    /// Opens (creating if needed) and locks the file, reads what it holds, and starts the
    /// writer. Blocking: call it off the async runtime.
    pub fn open(path: &Path) -> Result<(Db, Loaded), String> {
        let conn = Connection::open(path).map_err(|e| describe(path, &e))?;
        let loaded = init(&conn).map_err(|e| describe(path, &e))?;
        let (tx, rx) = mpsc::channel();
        let writer_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("inhouse-db".into())
            .spawn(move || write_loop(conn, rx, &writer_path))
            .map_err(|e| format!("--db {}: cannot start the writer: {e}", path.display()))?;
        Ok((
            Db {
                path: path.to_path_buf(),
                tx,
                writer: Mutex::new(Some(writer)),
            },
            loaded,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a change; never blocks. Call it under the state lock, so the file sees changes
    /// in the order memory did.
    pub fn send(&self, op: Op) {
        let _ = self.tx.send(op);
    }

    /// Resolves once every change queued before it is committed (or the writer is gone).
    pub fn sync(&self) -> oneshot::Receiver<()> {
        let (ack, done) = oneshot::channel();
        self.send(Op::Sync(ack));
        done
    }

    /// Commits what is queued, closes the file (releasing it) and waits for the writer.
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        self.send(Op::Close(ack));
        let _ = done.await;
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }
}

fn init(conn: &Connection) -> rusqlite::Result<Loaded> {
    conn.busy_timeout(Duration::ZERO)?;
    // Exclusive before WAL: no shared-memory file, and the lock taken below is kept until the
    // connection closes.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch("BEGIN EXCLUSIVE")?;
    let loaded = (|| {
        conn.execute_batch(SCHEMA)?;
        let meta = |key: &str| -> rusqlite::Result<Option<i64>> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        };
        match meta("schema_version")? {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(rusqlite::Error::InvalidParameterName(format!(
                    "unknown schema version {other} (this server writes {SCHEMA_VERSION})"
                )))
            }
        }
        let mut loaded = Loaded {
            last_event_id: meta("last_event_id")?.unwrap_or(0).max(0) as u64,
            dropped_oldest: meta("dropped_oldest")?.unwrap_or(0).max(0) as u64,
            ..Loaded::default()
        };
        let mut events = conn.prepare(
            "SELECT seq, id, received_at_ms, event_name, properties, idempotency_key, request_id,
                    path, token_id, app, content_type, origin, user_agent
             FROM events ORDER BY seq",
        )?;
        let rows = events.query_map([], |r| {
            let received_at_ms: i64 = r.get(2)?;
            let properties: String = r.get(4)?;
            let properties: Value = serde_json::from_str(&properties).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, e.into())
            })?;
            Ok(StoredEvent {
                seq: r.get::<_, i64>(0)? as u64,
                id: r.get(1)?,
                received_at: rfc3339(received_at_ms as u64),
                received_at_ms: received_at_ms as u64,
                event_name: r.get(3)?,
                properties,
                idempotency_key: r.get(5)?,
                request_id: r.get(6)?,
                path: r.get(7)?,
                headers: EventHeaders {
                    token_id: r.get(8)?,
                    app: r.get(9)?,
                    token_secret: REDACTED,
                    content_type: r.get(10)?,
                    origin: r.get(11)?,
                    user_agent: r.get(12)?,
                },
            })
        })?;
        for event in rows {
            let event = event?;
            if let Some(n) = event_number(&event.id) {
                loaded.last_event_id = loaded.last_event_id.max(n);
            }
            loaded.events.push(event);
        }
        let mut records = conn.prepare(
            "SELECT token_id, key, body_hash, event_id, response FROM idempotency ORDER BY n",
        )?;
        let rows = records.query_map([], |r| {
            let hash: String = r.get(2)?;
            let body_hash = u128::from_str_radix(&hash, 16).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
            })?;
            let response: String = r.get(4)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                Remembered {
                    body_hash,
                    event_id: r.get(3)?,
                    response: Bytes::from(response),
                },
            ))
        })?;
        for record in rows {
            let record: (String, String, Remembered) = record?;
            if let Some(n) = event_number(&record.2.event_id) {
                loaded.last_event_id = loaded.last_event_id.max(n);
            }
            loaded.remembered.push(record);
        }
        Ok(loaded)
    })();
    match loaded {
        Ok(loaded) => {
            conn.execute_batch("COMMIT")?;
            Ok(loaded)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// `evt_<n>` → n.
fn event_number(id: &str) -> Option<u64> {
    id.strip_prefix("evt_")?.parse().ok()
}

fn write_loop(mut conn: Connection, rx: mpsc::Receiver<Op>, path: &Path) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut acks = Vec::new();
        let mut close = false;
        let result = conn.transaction().and_then(|tx| {
            for op in batch {
                match op {
                    Op::Sync(ack) => acks.push(ack),
                    Op::Close(ack) => {
                        acks.push(ack);
                        close = true;
                    }
                    op => apply(&tx, op)?,
                }
            }
            tx.commit()
        });
        if let Err(e) = result {
            eprintln!("inhouse-server: --db {}: write failed: {e}", path.display());
        }
        for ack in acks {
            let _ = ack.send(());
        }
        if close {
            break;
        }
    }
    let _ = conn.close();
}

fn set_meta(tx: &Connection, key: &str, value: u64) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value as i64])?;
    Ok(())
}

fn apply(tx: &Connection, op: Op) -> rusqlite::Result<()> {
    match op {
        Op::Event(e) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO events (seq, id, received_at_ms, event_name, properties,
                    idempotency_key, request_id, path, token_id, app, content_type, origin,
                    user_agent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                e.seq as i64,
                e.id,
                e.received_at_ms as i64,
                e.event_name,
                e.properties.to_string(),
                e.idempotency_key,
                e.request_id,
                e.path,
                e.headers.token_id,
                e.headers.app,
                e.headers.content_type,
                e.headers.origin,
                e.headers.user_agent,
            ])?;
            if let Some(n) = event_number(&e.id) {
                tx.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES ('last_event_id', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                )?
                .execute([n as i64])?;
            }
        }
        Op::DropEventsBefore {
            first_seq,
            dropped_oldest,
        } => {
            tx.prepare_cached("DELETE FROM events WHERE seq < ?1")?
                .execute([first_seq as i64])?;
            set_meta(tx, "dropped_oldest", dropped_oldest)?;
        }
        Op::Remember {
            token_id,
            key,
            record,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (token_id, key, body_hash, event_id, response)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                token_id,
                key,
                format!("{:032x}", record.body_hash),
                record.event_id,
                String::from_utf8_lossy(&record.response),
            ])?;
        }
        Op::Forget(keys) => {
            let mut stmt =
                tx.prepare_cached("DELETE FROM idempotency WHERE token_id = ?1 AND key = ?2")?;
            for (token_id, key) in keys {
                stmt.execute(params![token_id, key])?;
            }
        }
        Op::Clear => {
            tx.execute_batch("DELETE FROM events; DELETE FROM idempotency;")?;
            set_meta(tx, "dropped_oldest", 0)?;
        }
        Op::Sync(_) | Op::Close(_) => {}
    }
    Ok(())
}
