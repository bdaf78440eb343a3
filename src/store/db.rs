//! The two backends behind one set of statements. Every statement is written once, with
//! PostgreSQL's `$N` placeholders (which SQLite reads too), bound with the same Rust types and
//! decoded into the same row types; [`sql!`] runs it on whichever backend the store opened.
//! What really differs is kept here and named: how a write transaction begins, the locks it
//! takes (nothing on SQLite, whose writers queue; advisory locks on PostgreSQL), and a few SQL
//! fragments.

use std::sync::Arc;

use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection, pool::PoolConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::StoreError;
use crate::domain::EntityId;

/// The open database.
pub(crate) enum Db {
    /// One file in WAL mode. SQLite has one writer at a time: this process's writers queue on
    /// `writer` (FIFO, much cheaper than polling the database lock), and every write
    /// transaction begins `IMMEDIATE`, so one that reads before it writes can never fail to
    /// upgrade its lock. Writers of other processes (`revisit user add`) queue on the lock.
    Sqlite {
        pool: sqlx::SqlitePool,
        writer: Arc<Mutex<()>>,
    },
    /// Several processes may share it: write transactions serialise on advisory locks.
    Postgres { pool: sqlx::PgPool },
}

/// One connection of either backend, borrowed for a statement.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// A pooled connection, for reads outside a transaction.
pub(crate) enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A write transaction. Dropped without [`Tx::commit`], it rolls back.
pub(crate) struct Tx {
    inner: TxInner,
    /// SQLite: this process's turn to write, held until the transaction ends.
    _turn: Option<OwnedMutexGuard<()>>,
}

enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Db {
    pub(crate) async fn acquire(&self) -> Result<Pooled, StoreError> {
        Ok(match self {
            Db::Sqlite { pool, .. } => Pooled::Sqlite(pool.acquire().await?),
            Db::Postgres { pool } => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// A connection for one write statement, which commits by itself: on SQLite it waits its
    /// turn among this process's writers as a transaction does, but without the round trips of
    /// BEGIN and COMMIT. Keep the guard until the statement has run.
    pub(crate) async fn write_one(
        &self,
    ) -> Result<(Pooled, Option<OwnedMutexGuard<()>>), StoreError> {
        Ok(match self {
            Db::Sqlite { pool, writer } => {
                let turn = writer.clone().lock_owned().await;
                (Pooled::Sqlite(pool.acquire().await?), Some(turn))
            }
            Db::Postgres { pool } => (Pooled::Postgres(pool.acquire().await?), None),
        })
    }

    /// Begins a write transaction.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite { pool, writer } => {
                let turn = writer.clone().lock_owned().await;
                Tx {
                    inner: TxInner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
                    _turn: Some(turn),
                }
            }
            Db::Postgres { pool } => Tx {
                inner: TxInner::Postgres(pool.begin().await?),
                _turn: None,
            },
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite { pool, .. } => pool.close().await,
            Db::Postgres { pool } => pool.close().await,
        }
    }

    /// The SQL table function that turns a JSON array parameter into rows of a `value` column.
    pub(crate) fn json_rows(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "json_each",
            Db::Postgres { .. } => "jsonb_array_elements_text",
        }
    }
}

impl Tx {
    /// [`Db::json_rows`] of the transaction's database.
    pub(crate) fn json_rows(&self) -> &'static str {
        match self.inner {
            TxInner::Sqlite(_) => "json_each",
            TxInner::Postgres(_) => "jsonb_array_elements_text",
        }
    }

    /// A PostgreSQL transaction begun elsewhere (`Store::exclusive`).
    pub(crate) fn postgres(t: sqlx::Transaction<'static, Postgres>) -> Tx {
        Tx {
            inner: TxInner::Postgres(t),
            _turn: None,
        }
    }

    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            TxInner::Sqlite(t) => Conn::Sqlite(t),
            TxInner::Postgres(t) => Conn::Postgres(t),
        }
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.inner, TxInner::Postgres(_))
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// The locking hook: serialises this transaction with every other one that takes any of
    /// `keys` of `entity`, until it ends. The keys are taken in the order given (callers give
    /// them in the one order every writer uses: `followup:`, `idem:`, `book:`, `config`, `wo:`,
    /// `tech:`, each sorted). Nothing to do on SQLite, where the transaction already holds the
    /// only write lock.
    pub(crate) async fn lock(
        &mut self,
        entity: &EntityId,
        keys: &[String],
    ) -> Result<(), StoreError> {
        if let TxInner::Postgres(t) = &mut self.inner {
            // A volatile function of the select list runs after the sort: in array order.
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || k, 0)) \
                 FROM unnest($2::text[]) WITH ORDINALITY AS t(k, i) ORDER BY i",
            )
            .bind(entity.as_str())
            .bind(keys)
            .execute(&mut **t)
            .await?;
        }
        Ok(())
    }

    /// Runs one plain statement (`SAVEPOINT x`, ...).
    pub(crate) async fn run(&mut self, statement: &str) -> Result<(), StoreError> {
        sql!(self.conn(), statement; execute)?;
        Ok(())
    }
}

/// Runs one statement on a [`Conn`]: `sql!(conn, "SQL", args...; execute)` returns the rows
/// affected, `; all Row` / `; optional Row` / `; one Row` decode rows into `Row` (a
/// `sqlx::FromRow` type, or a tuple), `; scalar T` / `; optional_scalar T` / `; scalars T` read
/// the first column. The same text and binds run on either backend.
macro_rules! sql {
    (@run $conn:expr, $q:expr, $sql:expr, [$($arg:expr),*], $how:ident) => {
        match $conn {
            $crate::store::db::Conn::Sqlite(c) => $q($sql)$(.bind($arg))*.$how(&mut *c).await,
            $crate::store::db::Conn::Postgres(c) => $q($sql)$(.bind($arg))*.$how(&mut *c).await,
        }
    };
    ($conn:expr, $sql:expr $(, $arg:expr)* ; execute) => {
        match $conn {
            $crate::store::db::Conn::Sqlite(c) => sqlx::query($sql)$(.bind($arg))*.execute(&mut *c).await.map(|r| r.rows_affected()),
            $crate::store::db::Conn::Postgres(c) => sqlx::query($sql)$(.bind($arg))*.execute(&mut *c).await.map(|r| r.rows_affected()),
        }
    };
    ($conn:expr, $sql:expr $(, $arg:expr)* ; all $row:ty) => {
        sql!(@run $conn, (sqlx::query_as::<_, $row>), $sql, [$($arg),*], fetch_all)
    };
    ($conn:expr, $sql:expr $(, $arg:expr)* ; optional $row:ty) => {
        sql!(@run $conn, (sqlx::query_as::<_, $row>), $sql, [$($arg),*], fetch_optional)
    };
    ($conn:expr, $sql:expr $(, $arg:expr)* ; one $row:ty) => {
        sql!(@run $conn, (sqlx::query_as::<_, $row>), $sql, [$($arg),*], fetch_one)
    };
    ($conn:expr, $sql:expr $(, $arg:expr)* ; scalar $t:ty) => {
        sql!(@run $conn, (sqlx::query_scalar::<_, $t>), $sql, [$($arg),*], fetch_one)
    };
    ($conn:expr, $sql:expr $(, $arg:expr)* ; optional_scalar $t:ty) => {
        sql!(@run $conn, (sqlx::query_scalar::<_, $t>), $sql, [$($arg),*], fetch_optional)
    };
    ($conn:expr, $sql:expr $(, $arg:expr)* ; scalars $t:ty) => {
        sql!(@run $conn, (sqlx::query_scalar::<_, $t>), $sql, [$($arg),*], fetch_all)
    };
}
pub(crate) use sql;
