//! Test databases: a temporary SQLite file, a fresh PostgreSQL schema, a fresh MySQL/MariaDB
//! database, each private to one test so tests run in parallel without colliding.
//!
//! PostgreSQL and MariaDB must be running: when one is unreachable the test FAILS and says to
//! run `scripts/test-db-services`. URLs: ORBITA_TEST_POSTGRES_URL (default
//! postgres://postgres@127.0.0.1:5432/test) and ORBITA_TEST_MYSQL_URL (default
//! mysql://root@127.0.0.1:3306/test).
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;

use sqlx::{AnyConnection, Connection, Executor};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    name: String,
    admin_url: String,
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn postgres_url() -> String {
    std::env::var("ORBITA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("ORBITA_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

async fn admin(url: &str, what: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    match tokio::time::timeout(std::time::Duration::from_secs(15), AnyConnection::connect(url)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "{what} at {url} is unreachable: {e}. Start the test databases with scripts/test-db-services \
             (or point ORBITA_TEST_POSTGRES_URL / ORBITA_TEST_MYSQL_URL at running servers)"
        ),
        Err(_) => panic!(
            "{what} at {url} did not answer within 15 s. Start the test databases with scripts/test-db-services"
        ),
    }
}

/// Leftovers of earlier runs that died (name: orbita_t_<unix secs>_...) older than an hour.
fn stale(name: &str) -> bool {
    name.strip_prefix("orbita_t_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|secs| secs.parse::<u64>().ok())
        .is_some_and(|t| t + 3600 < unix_secs())
}

impl TestDb {
    pub async fn new(kind: Kind, test: &str) -> TestDb {
        let name = format!(
            "orbita_t_{}_{}_{:08x}",
            unix_secs(),
            test.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(20)
                .collect::<String>()
                .to_lowercase(),
            rand::random::<u32>()
        );
        match kind {
            Kind::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDb {
                    kind,
                    url: format!("sqlite://{}", path.display()),
                    name: path.display().to_string(),
                    admin_url: String::new(),
                }
            }
            Kind::Postgres => {
                let base = postgres_url();
                let mut c = admin(&base, "PostgreSQL").await;
                let old: Vec<(String,)> = sqlx::query_as(
                    "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'orbita_t_%'",
                )
                .fetch_all(&mut c)
                .await
                .unwrap();
                for (s,) in old.into_iter().filter(|(s,)| stale(s)) {
                    let _ = c
                        .execute(format!("DROP SCHEMA IF EXISTS {s} CASCADE").as_str())
                        .await;
                }
                c.execute(format!("CREATE SCHEMA {name}").as_str())
                    .await
                    .unwrap();
                c.close().await.unwrap();
                let sep = if base.contains('?') { '&' } else { '?' };
                TestDb {
                    kind,
                    url: format!("{base}{sep}options=-c%20search_path%3D{name}"),
                    name,
                    admin_url: base,
                }
            }
            Kind::MySql => {
                let base = mysql_url();
                let mut c = admin(&base, "MariaDB/MySQL").await;
                let old: Vec<(String,)> = sqlx::query_as(
                    "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata WHERE schema_name LIKE 'orbita_t_%'",
                )
                .fetch_all(&mut c)
                .await
                .unwrap();
                for (s,) in old.into_iter().filter(|(s,)| stale(s)) {
                    let _ = c
                        .execute(format!("DROP DATABASE IF EXISTS {s}").as_str())
                        .await;
                }
                c.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
                c.close().await.unwrap();
                // Same server and credentials, the new database as the path.
                let (head, tail) = base.split_at(base.find("://").unwrap() + 3);
                let (hostpart, rest) = tail.split_once('/').unwrap_or((tail, ""));
                let query = rest
                    .split_once('?')
                    .map(|(_, q)| format!("?{q}"))
                    .unwrap_or_default();
                TestDb {
                    kind,
                    url: format!("{head}{hostpart}/{name}{query}"),
                    name,
                    admin_url: base,
                }
            }
        }
    }

    pub async fn cleanup(self) {
        match self.kind {
            Kind::Sqlite => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Kind::Postgres => {
                let mut c = admin(&self.admin_url, "PostgreSQL").await;
                c.execute(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name).as_str())
                    .await
                    .unwrap();
                let _ = c.close().await;
            }
            Kind::MySql => {
                let mut c = admin(&self.admin_url, "MariaDB/MySQL").await;
                c.execute(format!("DROP DATABASE IF EXISTS {}", self.name).as_str())
                    .await
                    .unwrap();
                let _ = c.close().await;
            }
        }
    }
}

/// Runs test `f` on a fresh database of `kind` (named after the test), then drops it.
pub async fn run(
    kind: Kind,
    name: &str,
    f: impl FnOnce(String) -> Pin<Box<dyn Future<Output = ()>>>,
) {
    let db = TestDb::new(kind, name).await;
    f(db.url.clone()).await;
    db.cleanup().await;
}

/// Declares one `#[tokio::test]` per backend for each scenario `async fn NAME(url: &str)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { $crate::support::db::run($crate::support::db::Kind::Sqlite, stringify!($name), |u| Box::pin(super::$name(u))).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { $crate::support::db::run($crate::support::db::Kind::Postgres, stringify!($name), |u| Box::pin(super::$name(u))).await } )*
        }
        mod mysql {
            $( #[tokio::test] async fn $name() { $crate::support::db::run($crate::support::db::Kind::MySql, stringify!($name), |u| Box::pin(super::$name(u))).await } )*
        }
    };
}
