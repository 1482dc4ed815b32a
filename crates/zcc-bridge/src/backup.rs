//! `zcc-bridge backup --to FILE`: an online copy of the SQLite database, safe while the server runs.
//!
//! The copy is SQLite's `VACUUM INTO` on a connection to the configured database: one read transaction,
//! so the file is a consistent snapshot (WAL readers never block the server's writer, nor it them). It is written
//! next to FILE under a temporary name, fsynced, opened again and checked (`PRAGMA integrity_check`, the event log
//! is there), and only then renamed to FILE. A PostgreSQL database is backed up with `pg_dump`; this command says
//! how and fails.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::config::{mask_url_password, Config, DatabaseKind};

/// What a finished backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    /// The database that was copied (its file).
    pub source: PathBuf,
    /// The verified copy.
    pub path: PathBuf,
    pub bytes: u64,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// Rows of the event log in the copy.
    pub events: i64,
    /// The newest migration applied to the copied database.
    pub schema_version: Option<i64>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl BackupReport {
    pub fn describe(&self) -> String {
        format!(
            "backed up {} to {}: {:.1} MiB ({} bytes) in {:.2} s; integrity_check ok, {} events, schema version {}",
            self.source.display(),
            self.path.display(),
            self.bytes as f64 / 1_048_576.0,
            self.bytes,
            self.duration.as_secs_f64(),
            self.events,
            self.schema_version
                .map_or_else(|| "none".to_string(), |v| v.to_string()),
        )
    }
}

/// Copies the configured SQLite database into `to` (refused if it exists, unless `force`) and verifies the copy.
/// For PostgreSQL, fails with the `pg_dump` command to run instead.
pub async fn backup(config: &Config, to: &Path, force: bool) -> anyhow::Result<BackupReport> {
    let url = config.storage.database.expose();
    match config.database_kind()? {
        DatabaseKind::Postgres => anyhow::bail!(
            "storage.database is PostgreSQL; `zcc-bridge backup` copies SQLite databases only.\n\
             Back PostgreSQL up with pg_dump (a client of the server's major version or newer), e.g.\n\n  {}\n\n\
             Replace *** with the password, or leave it out of the URL and use PGPASSWORD or ~/.pgpass. \
             Restore with pg_restore (docs/operations.md, \"Backup and restore\").",
            pg_dump_command(url, to)
        ),
        DatabaseKind::Sqlite => {}
    }
    let started = Instant::now();
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("storage.database {:?}", mask_url_password(url)))?;
    let source = options.get_filename().to_path_buf();
    if source.as_os_str().is_empty() || source.to_string_lossy().contains(":memory:") {
        anyhow::bail!(
            "storage.database {url:?} is an in-memory database: there is nothing to back up"
        );
    }
    if !source.is_file() {
        anyhow::bail!(
            "no database at {} (storage.database = {url:?}; relative paths are relative to the working directory)",
            source.display()
        );
    }
    check_target(&source, to, force)?;

    let partial = partial_path(to)?;
    let mut guard = RemoveOnDrop(Some(partial.clone()));
    remove_if_exists(&partial)?;
    let partial_str = partial
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", partial.display()))?;

    // Never created, the journal mode left as the server set it, waiting for a writer's lock at most as long as
    // the server's own connections do. Not SQLITE_OPEN_READONLY although nothing is written: a read-only
    // connection to a WAL database whose server is stopped leaves -wal/-shm files behind, owned by whoever ran
    // the backup (root, say), which the server's user then cannot open. A read-write connection that is the last
    // to close removes them.
    let mut conn = options
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("opening {}", source.display()))?;
    sqlx::query("VACUUM INTO ?1")
        .bind(partial_str)
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying {} into {}", source.display(), partial.display()))?;
    conn.close().await.ok();
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", partial.display()))?;

    let (events, schema_version) = verify(&partial).await?;

    if force {
        std::fs::rename(&partial, to)
            .with_context(|| format!("renaming {} to {}", partial.display(), to.display()))?;
    } else {
        // No-clobber: a file that appeared at `to` meanwhile is not replaced.
        match std::fs::hard_link(&partial, to) {
            Ok(()) => remove_if_exists(&partial)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                anyhow::bail!("{} exists; pass --force to replace it", to.display())
            }
            // A file system without hard links.
            Err(_) => {
                check_target(&source, to, false)?;
                std::fs::rename(&partial, to).with_context(|| {
                    format!("renaming {} to {}", partial.display(), to.display())
                })?;
            }
        }
    }
    guard.0 = None;
    sync_dir(to);
    let bytes = std::fs::metadata(to)
        .with_context(|| format!("reading {}", to.display()))?
        .len();
    Ok(BackupReport {
        source,
        path: to.to_path_buf(),
        bytes,
        duration: started.elapsed(),
        events,
        schema_version,
    })
}

/// `--to -`: the verified copy written to `out` (standard output), for containers without a shell or `tar` to
/// fetch a file with (`kubectl exec ... zcc-bridge backup --to - > backup.db`). The copy is staged beside the
/// database (on its volume, which has room for it, unlike a small /tmp), then removed.
pub async fn backup_to_writer(
    config: &Config,
    out: &mut (dyn std::io::Write + Send),
) -> anyhow::Result<BackupReport> {
    let url = config.storage.database.expose();
    let staged = match config.database_kind()? {
        DatabaseKind::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("storage.database {:?}", mask_url_password(url)))?;
            let source = options.get_filename().to_path_buf();
            let dir = match source.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            dir.join(format!(".zcc-bridge-backup-{}.db", std::process::id()))
        }
        DatabaseKind::Postgres => PathBuf::from("-"),
    };
    let _cleanup = RemoveOnDrop(Some(staged.clone()));
    let mut report = backup(config, &staged, true).await?;
    let mut file =
        std::fs::File::open(&staged).with_context(|| format!("reading {}", staged.display()))?;
    std::io::copy(&mut file, out).context("writing the backup to standard output")?;
    out.flush()
        .context("writing the backup to standard output")?;
    report.path = PathBuf::from("-");
    Ok(report)
}

/// Opens the copy on its own and checks it: `PRAGMA integrity_check` says `ok`, and it is a zcc-bridge database
/// (it has the event log). Returns the number of logged events and the schema version.
///
/// The copy is switched to a rollback journal first, so that it is one self-contained file (a copy of a WAL
/// database is in WAL mode too); the server puts it back into WAL mode when it opens a restored copy.
async fn verify(path: &Path) -> anyhow::Result<(i64, Option<i64>)> {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .connect()
        .await
        .with_context(|| format!("opening the copy {}", path.display()))?;
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut conn)
        .await
        .context("setting the copy's journal mode")?;
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .context("PRAGMA integrity_check on the copy")?;
    if problems != ["ok"] {
        anyhow::bail!(
            "the copy {} failed PRAGMA integrity_check: {}",
            path.display(),
            problems.join("; ")
        );
    }
    let has_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
    )
    .fetch_one(&mut conn)
    .await?;
    if has_events == 0 {
        anyhow::bail!(
            "the database has no event log: is storage.database a zcc-bridge database that a server has opened?"
        );
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut conn)
        .await?;
    let schema_version: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .unwrap_or(None);
    conn.close().await.ok();
    Ok((events, schema_version))
}

fn check_target(source: &Path, to: &Path, force: bool) -> anyhow::Result<()> {
    if let (Ok(a), Ok(b)) = (source.canonicalize(), to.canonicalize()) {
        if a == b {
            anyhow::bail!("--to {} is the database itself", to.display());
        }
    }
    if to.is_dir() {
        anyhow::bail!("--to {} is a directory; name the backup file", to.display());
    }
    if to.exists() && !force {
        anyhow::bail!("{} exists; pass --force to replace it", to.display());
    }
    Ok(())
}

/// `FILE` → `.FILE.partial-PID` in the same directory (so the final rename stays on one file system).
fn partial_path(to: &Path) -> anyhow::Result<PathBuf> {
    let name = to
        .file_name()
        .with_context(|| format!("--to {} names no file", to.display()))?;
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        anyhow::bail!("directory {} does not exist", dir.display());
    }
    Ok(dir.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Makes the rename durable (best effort: not every platform can open a directory).
fn sync_dir(file: &Path) {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes a half-written copy (and SQLite's side files) when the backup fails.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            for suffix in ["", "-journal", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
        }
    }
}

/// The `pg_dump` command line for `url` writing `to` (custom format, for pg_restore), the password masked and
/// every argument quoted for a POSIX shell. A `password=` query parameter is masked too.
pub fn pg_dump_command(url: &str, to: &Path) -> String {
    let masked = mask_url_password(url);
    let masked = match masked.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => masked,
    };
    // `-`: pg_dump writes to standard output when it has no --file.
    let file = if to == Path::new("-") {
        String::new()
    } else {
        format!(" --file={}", shell_quote(&to.to_string_lossy()))
    };
    format!(
        "pg_dump --format=custom{file} --dbname={}",
        shell_quote(&masked)
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+,=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_dump_command_masks_the_password_and_quotes() {
        assert_eq!(
            pg_dump_command(
                "postgres://zcc:s3cr3t@db.internal:5432/zcc",
                Path::new("/backups/zcc.dump")
            ),
            "pg_dump --format=custom --file=/backups/zcc.dump --dbname='postgres://zcc:***@db.internal:5432/zcc'"
        );
        let cmd = pg_dump_command(
            "postgresql://zcc@db/zcc?sslmode=require&password=hunter2",
            Path::new("my backup's.dump"),
        );
        assert!(!cmd.contains("hunter2"), "{cmd}");
        assert_eq!(
            pg_dump_command("postgres://zcc@db/zcc", Path::new("-")),
            "pg_dump --format=custom --dbname=postgres://zcc@db/zcc"
        );
        assert_eq!(
            cmd,
            r#"pg_dump --format=custom --file='my backup'\''s.dump' --dbname='postgresql://zcc@db/zcc?sslmode=require&password=***'"#
        );
    }

    #[test]
    fn the_partial_copy_sits_next_to_the_target() {
        let p = partial_path(Path::new("zcc.db")).unwrap();
        assert_eq!(p.parent(), Some(Path::new(".")));
        assert!(p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".zcc.db.partial-"));
        assert!(partial_path(Path::new("/no/such/dir/zcc.db")).is_err());
    }
}
