//! Finding a transaction-pooling proxy (pgBouncer, Odyssey, pgcat in transaction mode)
//! between Rivet and PostgreSQL, from what any role can see: the server backend's pid.
//! A direct connection keeps one backend for its whole life, and two live direct
//! connections never share one; behind a transaction pooler the backend may change after
//! every transaction, and a second client is often handed the backend the first one just
//! released. Rivet's reads are pooler-safe either way (every prepared statement and
//! setting lives inside one transaction); the finding is sealed in the plan for review.

use rivet_schema::plan::{ConnectionPath, Pooling};

use super::catalog::{query_err, PgCatalog};
use crate::error::SourceError;

/// The backend pid serving one transaction of `cat`.
fn backend_pid(cat: &mut PgCatalog) -> Result<i32, SourceError> {
    read_tx!(cat, "probing for a connection pooler", |tx| tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(query_err("reading pg_backend_pid()"))?
        .get(0))
}

/// Three transactions on the catalog connection and one on a second connection opened
/// between them (see the module docs).
pub(super) fn probe(cat: &mut PgCatalog) -> Result<ConnectionPath, SourceError> {
    let first = backend_pid(cat)?;
    let second = backend_pid(cat)?;
    let other = {
        let mut other = PgCatalog::connect(cat.settings())?;
        backend_pid(&mut other)?
    };
    let third = backend_pid(cat)?;
    let (pooling, evidence) = judge([first, second, third], other);
    let proxy = match pooling {
        Pooling::Transaction => recognize(cat)?,
        Pooling::Session => None,
    };
    Ok(ConnectionPath {
        pooling,
        proxy,
        evidence,
    })
}

/// The verdict from the pids one connection saw over three transactions and the pid a
/// second connection saw meanwhile (see [`crate::source::pooling_verdict`]).
fn judge(own: [i32; 3], other: i32) -> (Pooling, String) {
    crate::source::pooling_verdict(
        own,
        other,
        ("server backend", "pg_backend_pid", "transactions"),
    )
}

/// Names the pooler when it gives itself away: pgBouncer refuses a startup packet
/// carrying `options` (unless told to ignore it) with a message of its own.
fn recognize(cat: &PgCatalog) -> Result<Option<String>, SourceError> {
    let mut config = super::driver_config(cat.settings())?;
    config.options("-c application_name=rivet_probe");
    match super::open_with(cat.settings(), config) {
        Ok(_) => Ok(None),
        Err(SourceError::Connect { detail, .. })
            if detail.contains("unsupported startup parameter") =>
        {
            Ok(Some("pgbouncer".into()))
        }
        Err(SourceError::Connect { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changing_or_shared_backend_means_transaction_pooling() {
        assert_eq!(judge([7, 7, 7], 8).0, Pooling::Session);
        let (p, why) = judge([7, 9, 7], 8);
        assert_eq!(p, Pooling::Transaction);
        assert!(why.contains("changed between transactions"), "{why}");
        let (p, why) = judge([7, 7, 7], 7);
        assert_eq!(p, Pooling::Transaction);
        assert!(why.contains("second client connection"), "{why}");
    }
}
