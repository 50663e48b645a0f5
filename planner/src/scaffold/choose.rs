//! Choosing a mode for one discovered table: full when it is small, incremental when an
//! indexed date/time column can carry a cursor, chunked on an integer key, and for a
//! large table with neither, full with the cost said out loud.

use rivet_schema::config::ExportMode;
use rivet_schema::LogicalType;
use rivet_sources::{IndexFacts, TableInfo};

use super::{
    Choice, CursorCandidate, DiscoveredColumn, DiscoveredTable, InitRequest, DEFAULT_ROW_BYTES,
};
use crate::error::PlanError;

/// Human size: `12.3 MB`.
pub(crate) fn size_text(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 1000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else if mb >= 1.0 {
        format!("{mb:.1} MB")
    } else {
        format!("{:.0} kB", (bytes as f64 / 1e3).ceil())
    }
}

fn is_time(l: &LogicalType) -> bool {
    matches!(
        l,
        LogicalType::Timestamp | LogicalType::TimestampUtc | LogicalType::Date
    )
}

fn is_key_int(l: &LogicalType) -> bool {
    l.is_integer() && *l != LogicalType::UInt64
}

/// How much a column's name suggests "last changed" (higher first).
fn cursor_rank(name: &str) -> u8 {
    let n = name.to_ascii_lowercase();
    if ["updated", "modified", "changed", "last_update"]
        .iter()
        .any(|w| n.contains(w))
    {
        2
    } else if ["created", "inserted", "_at", "time", "date"]
        .iter()
        .any(|w| n.contains(w))
    {
        1
    } else {
        0
    }
}

/// The discovered table with its choice.
pub(super) fn table(
    info: TableInfo,
    indexes: Vec<IndexFacts>,
    export: String,
    req: &InitRequest,
) -> Result<DiscoveredTable, PlanError> {
    let leads = |c: &str| indexes.iter().any(|ix| ix.leads_with(c));
    let columns: Vec<DiscoveredColumn> = info
        .columns
        .iter()
        .map(|c| DiscoveredColumn {
            name: c.name.clone(),
            declared_type: c.declared_type.clone(),
            nullable: c.nullable,
            refused: c.logical.as_ref().err().cloned(),
            logical: c.logical.as_ref().ok().cloned(),
        })
        .collect();
    let usable = |c: &&DiscoveredColumn| c.refused.is_none();
    // The integer key: a single-column integer primary key, else an integer column
    // leading a unique index, else any index.
    let int_col = |name: &str| {
        columns
            .iter()
            .filter(usable)
            .find(|c| c.name == name && c.logical.as_ref().is_some_and(is_key_int))
            .map(|c| c.name.clone())
    };
    let pk_key = (info.primary_key.len() == 1)
        .then(|| int_col(&info.primary_key[0]))
        .flatten();
    let integer_key = pk_key.clone().or_else(|| {
        let mut ordered: Vec<&IndexFacts> = indexes.iter().collect();
        ordered.sort_by_key(|ix| !ix.unique);
        ordered
            .iter()
            .filter_map(|ix| ix.columns.first())
            .find_map(|c| int_col(c))
    });
    let mut cursor_candidates: Vec<CursorCandidate> = columns
        .iter()
        .filter(usable)
        .filter(|c| c.logical.as_ref().is_some_and(is_time))
        .map(|c| CursorCandidate {
            column: c.name.clone(),
            kind: "timestamp",
            indexed: leads(&c.name),
            nullable: c.nullable,
        })
        .collect();
    cursor_candidates.sort_by_key(|c| {
        (
            !c.indexed,
            std::cmp::Reverse(cursor_rank(&c.column)),
            c.nullable,
        )
    });
    if let Some(k) = &pk_key {
        cursor_candidates.push(CursorCandidate {
            column: k.clone(),
            kind: "monotonic_key",
            indexed: true,
            nullable: false,
        });
    }
    let row_bytes = info.avg_row_bytes.unwrap_or(DEFAULT_ROW_BYTES);
    let estimated_bytes = info.row_estimate.saturating_mul(row_bytes);
    let ctx = Ctx {
        export,
        columns: &columns,
        integer_key: integer_key.as_deref(),
        pk_key: pk_key.is_some(),
        has_primary_key: !info.primary_key.is_empty(),
        cursors: &cursor_candidates,
        size: format!(
            "about {} rows, {}{}",
            info.row_estimate,
            size_text(estimated_bytes),
            if info.avg_row_bytes.is_none() {
                " (no statistics: run ANALYZE for a better estimate)"
            } else {
                ""
            }
        ),
        small: estimated_bytes < req.full_below_bytes,
        table: format!("{}.{}", info.schema, info.name),
    };
    let choice = match req.mode {
        None => ctx.auto(),
        Some(mode) => ctx.forced(mode)?,
    };
    Ok(DiscoveredTable {
        schema: info.schema,
        name: info.name,
        row_estimate: info.row_estimate,
        avg_row_bytes: info.avg_row_bytes,
        estimated_bytes,
        primary_key: info.primary_key,
        indexes,
        columns,
        integer_key,
        cursor_candidates,
        choice,
    })
}

struct Ctx<'a> {
    export: String,
    columns: &'a [DiscoveredColumn],
    integer_key: Option<&'a str>,
    pk_key: bool,
    /// Change rows are replayed by primary key: a `cdc` export needs one.
    has_primary_key: bool,
    cursors: &'a [CursorCandidate],
    size: String,
    small: bool,
    table: String,
}

impl Ctx<'_> {
    fn choice(&self, mode: ExportMode, reason: String) -> Choice {
        Choice {
            export: self.export.clone(),
            mode,
            chunk_column: None,
            cursor_column: None,
            cursor_fallback_column: None,
            time_column: None,
            reason,
        }
    }

    /// The best indexed date/time cursor, if any.
    fn indexed_cursor(&self) -> Option<&CursorCandidate> {
        self.cursors
            .iter()
            .find(|c| c.kind == "timestamp" && c.indexed)
    }

    /// A NOT NULL date/time column of the same type to fall back on when the cursor is
    /// nullable.
    fn fallback_for(&self, cursor: &CursorCandidate) -> Option<String> {
        if !cursor.nullable {
            return None;
        }
        let ty = self
            .columns
            .iter()
            .find(|c| c.name == cursor.column)
            .and_then(|c| c.logical.clone());
        self.columns
            .iter()
            .filter(|c| c.refused.is_none() && !c.nullable && c.name != cursor.column)
            .find(|c| c.logical.is_some() && c.logical == ty)
            .map(|c| c.name.clone())
    }

    fn incremental(&self, cursor: &CursorCandidate, lead: &str) -> Choice {
        let fallback = self.fallback_for(cursor);
        let mut reason = format!(
            "{lead}`{}` is {} date/time column: incremental reads only rows past the last run's high-water mark.",
            cursor.column,
            if cursor.indexed { "an indexed" } else { "a (not indexed) " }
        );
        match (&fallback, cursor.nullable) {
            (Some(fb), _) => reason.push_str(&format!(
                " It is nullable, so `{fb}` (NOT NULL) stands in where it is NULL."
            )),
            (None, true) => reason.push_str(
                " It is nullable and no NOT NULL column of its type can stand in: rows where it is NULL are never exported.",
            ),
            _ => {}
        }
        if cursor_rank(&cursor.column) < 2 {
            reason.push_str(" Updates that do not change it are not seen; prefer an `updated_at`-like column if the table has one.");
        }
        Choice {
            cursor_column: Some(cursor.column.clone()),
            cursor_fallback_column: fallback,
            ..self.choice(ExportMode::Incremental, reason)
        }
    }

    fn chunked(&self, key: &str, lead: &str) -> Choice {
        let how = if self.pk_key {
            "the integer primary key"
        } else {
            "an indexed integer column"
        };
        Choice {
            chunk_column: Some(key.to_owned()),
            ..self.choice(
                ExportMode::Chunked,
                format!(
                    "{lead}`{key}` is {how}: chunked reads key ranges, each in its own short transaction."
                ),
            )
        }
    }

    fn auto(&self) -> Choice {
        let size = &self.size;
        if self.small {
            let mut reason = format!("{size}: small enough to read whole in one chunk.");
            if let Some(c) = self.indexed_cursor() {
                reason.push_str(&format!(
                    " `{}` could carry an incremental cursor if it grows.",
                    c.column
                ));
            }
            return self.choice(ExportMode::Full, reason);
        }
        if let Some(c) = self.indexed_cursor() {
            return self.incremental(c, &format!("{size}; "));
        }
        if let Some(k) = self.integer_key {
            return self.chunked(k, &format!("{size}; "));
        }
        self.choice(
            ExportMode::Full,
            format!(
                "{size}, and no integer key or indexed date/time column: read whole through one \
                 server-side cursor, which holds one snapshot for the whole read. To split it, \
                 index an integer column and use `mode: chunked` with `chunk_column`."
            ),
        )
    }

    fn forced(&self, mode: ExportMode) -> Result<Choice, PlanError> {
        let refuse = |why: String| PlanError::Config {
            path: "--mode".into(),
            message: format!("{}: {why}", self.table),
        };
        let lead = format!("{}; --mode asked for it: ", self.size);
        match mode {
            ExportMode::Full => Ok(self.choice(
                ExportMode::Full,
                format!("{lead}read whole through one server-side cursor."),
            )),
            ExportMode::Chunked => match self.integer_key {
                Some(k) => Ok(self.chunked(k, &lead)),
                None => Err(refuse(
                    "chunked mode needs an integer column leading an index, and this table has none; name the other tables with --table, or leave --mode out to choose per table".into(),
                )),
            },
            ExportMode::Incremental => match self.cursors.first() {
                Some(c) => Ok(self.incremental(c, &lead)),
                None => Err(refuse(
                    "incremental mode needs a date/time column or an integer key as cursor, and this table has neither; leave --mode out to choose per table".into(),
                )),
            },
            ExportMode::TimeWindow => match self.cursors.iter().find(|c| c.kind == "timestamp") {
                Some(c) => Ok(Choice {
                    time_column: Some(c.column.clone()),
                    ..self.choice(
                        ExportMode::TimeWindow,
                        format!(
                            "{lead}`{}` holds each row's time; the window is the day before --as-of (change days_window to widen it).",
                            c.column
                        ),
                    )
                }),
                None => Err(refuse(
                    "time_window mode needs a date/time column, and this table has none".into(),
                )),
            },
            ExportMode::Cdc if self.has_primary_key => Ok(self.choice(
                ExportMode::Cdc,
                format!(
                    "{lead}every insert, update and delete from the source's log, one sealed window per run; run `rivet cdc setup -c <config>` first (docs/cdc.md)."
                ),
            )),
            ExportMode::Cdc => Err(refuse(
                "cdc mode replays changes by primary key, and this table has none; add one, or leave --mode out to choose per table".into(),
            )),
        }
    }
}
