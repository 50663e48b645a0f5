//! What carries over between runs of an export: incremental cursor positions and the
//! shape (columns and widest values) the last finalized run wrote.

use rusqlite::{params, OptionalExtension};

use rivet_schema::plan::CommittedCursor;

use super::{RecordedShape, StateStore, NOW};
use crate::error::ExecError;

/// Which shape history an export's run is compared with: the same export name reading
/// the same relation into the same destination. Another plan reusing the name for a
/// different table or destination has a history of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeKey {
    pub export: String,
    /// `schema.table`, or the query's text.
    pub relation: String,
    /// The destination as `plan show` names it (`out/orders`, `s3://bucket/prefix`).
    pub destination: String,
}

/// One exported column as a run recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShapeColumn {
    pub name: String,
    pub declared_type: String,
    pub nullable: bool,
}

impl StateStore {
    /// The committed position of an incremental export, if it has one.
    pub fn cursor(&self, export: &str) -> Result<Option<CommittedCursor>, ExecError> {
        let row = self
            .conn
            .query_row(
                "SELECT cursor_column, value_type, position, seq FROM cursors WHERE export = ?1",
                params![export],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, u32>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(self.err())?;
        row.map(|(column, value_type, position, seq)| {
            let value_type = serde_json::from_value(serde_json::Value::String(value_type))
                .map_err(|e| ExecError::State {
                    path: self.path.display().to_string(),
                    detail: format!("cursor of export {export}: {e}"),
                })?;
            Ok(CommittedCursor {
                column,
                value_type,
                position,
                seq,
            })
        })
        .transpose()
    }

    /// Every committed incremental position, by export name.
    pub fn cursors(&self) -> Result<Vec<(String, CommittedCursor)>, ExecError> {
        let names: Vec<String> = self
            .conn
            .prepare("SELECT export FROM cursors ORDER BY export")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(self.err())?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(c) = self.cursor(&name)? {
                out.push((name, c));
            }
        }
        Ok(out)
    }

    /// Records an incremental export's new position and journals the move, in one
    /// transaction. Called only after the window's files, manifest and `_SUCCESS` are
    /// durable, so the position is never ahead of the committed files.
    pub fn commit_cursor(
        &mut self,
        export: &str,
        cursor: &CommittedCursor,
        digest: &str,
        run_id: &str,
    ) -> Result<(), ExecError> {
        let value_type = rivet_schema::variant_name(&cursor.value_type);
        let state_err = |e: rusqlite::Error| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        };
        // Durable before it returns, even through a power loss: a lost position would
        // re-plan a window whose files consumers may already have loaded.
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(state_err)?;
        let committed = self.commit_cursor_tx(export, cursor, &value_type, digest, run_id);
        let restored = self.conn.pragma_update(None, "synchronous", "NORMAL");
        committed?;
        restored.map_err(|e| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })
    }

    fn commit_cursor_tx(
        &mut self,
        export: &str,
        cursor: &CommittedCursor,
        value_type: &str,
        digest: &str,
        run_id: &str,
    ) -> Result<(), ExecError> {
        let tx = self.conn.transaction().map_err(|e| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })?;
        tx.execute(
            &format!(
                "INSERT INTO cursors (export, cursor_column, value_type, position, seq, plan_digest, run_id, committed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOW}) \
                 ON CONFLICT (export) DO UPDATE SET cursor_column = excluded.cursor_column, \
                 value_type = excluded.value_type, position = excluded.position, seq = excluded.seq, \
                 plan_digest = excluded.plan_digest, run_id = excluded.run_id, committed_at = excluded.committed_at"
            ),
            params![export, cursor.column, value_type, cursor.position, cursor.seq, digest, run_id],
        )
        .and_then(|_| {
            tx.execute(
                &format!("INSERT INTO journal (run_id, at, event, export, detail) VALUES (?1, {NOW}, 'cursor_committed', ?2, ?3)"),
                params![
                    run_id,
                    export,
                    serde_json::json!({"column": cursor.column, "position": cursor.position, "window": cursor.seq}).to_string()
                ],
            )
        })
        .and_then(|_| tx.commit())
        .map_err(|e| ExecError::State {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        })
    }

    /// The shape the last finalized run of this export wrote to this destination
    /// (None before the first one).
    pub fn shape(&self, key: &ShapeKey) -> Result<Option<RecordedShape>, ExecError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT columns, widths FROM export_shapes \
                 WHERE export = ?1 AND relation = ?2 AND destination = ?3",
                params![key.export, key.relation, key.destination],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())?;
        let Some((columns, widths)) = row else {
            return Ok(None);
        };
        let bad = |what: &str, e: serde_json::Error| {
            self.error(format!(
                "the recorded {what} of export {} cannot be read ({e}); the state database was edited or written by another version — `rivet state reset-shape {}` forgets it",
                key.export, key.export
            ))
        };
        Ok(Some(RecordedShape {
            columns: serde_json::from_str(&columns).map_err(|e| bad("columns", e))?,
            widths: serde_json::from_str(&widths).map_err(|e| bad("value widths", e))?,
        }))
    }

    /// Remembers the shape an export's finalized run wrote to its destination.
    pub fn record_shape(
        &self,
        key: &ShapeKey,
        shape: &RecordedShape,
        digest: &str,
        run_id: &str,
    ) -> Result<(), ExecError> {
        self.conn
            .execute(
                &format!(
                    "INSERT INTO export_shapes (export, relation, destination, columns, widths, plan_digest, run_id, recorded_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOW}) ON CONFLICT (export, relation, destination) DO UPDATE SET \
                     columns = excluded.columns, widths = excluded.widths, plan_digest = excluded.plan_digest, \
                     run_id = excluded.run_id, recorded_at = excluded.recorded_at"
                ),
                params![
                    key.export,
                    key.relation,
                    key.destination,
                    serde_json::to_string(&shape.columns).expect("shape columns always serialize"),
                    serde_json::to_string(&shape.widths).expect("widths always serialize"),
                    digest,
                    run_id
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Forgets the recorded shapes of an export (every relation and destination), so
    /// its next run compares with nothing. Returns how many were forgotten.
    pub fn reset_shape(&self, export: &str) -> Result<usize, ExecError> {
        self.conn
            .execute(
                "DELETE FROM export_shapes WHERE export = ?1",
                params![export],
            )
            .map_err(self.err())
    }

    /// Forgets an incremental export's position: its next plan starts from the
    /// beginning (window 1). Returns whether there was one.
    pub fn reset_cursor(&self, export: &str) -> Result<bool, ExecError> {
        let n = self
            .conn
            .execute("DELETE FROM cursors WHERE export = ?1", params![export])
            .map_err(self.err())?;
        if n > 0 {
            self.conn
                .execute(
                    &format!("INSERT INTO journal (run_id, at, event, export) VALUES ('', {NOW}, 'cursor_reset', ?1)"),
                    params![export],
                )
                .map_err(self.err())?;
        }
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_shape_that_does_not_parse_is_an_error_not_an_empty_history() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateStore::open(&dir.path().join("s.db")).unwrap();
        let key = ShapeKey {
            export: "e".into(),
            relation: "public.t".into(),
            destination: "out".into(),
        };
        state
            .record_shape(
                &key,
                &RecordedShape {
                    columns: vec![ShapeColumn {
                        name: "a b".into(),
                        declared_type: "text".into(),
                        nullable: true,
                    }],
                    widths: Default::default(),
                },
                "d",
                "r",
            )
            .unwrap();
        assert_eq!(state.shape(&key).unwrap().unwrap().columns[0].name, "a b");
        state
            .conn
            .execute("UPDATE export_shapes SET columns = 'not json'", [])
            .unwrap();
        let err = state.shape(&key).unwrap_err().to_string();
        assert!(err.contains("cannot be read"), "{err}");
    }
}
