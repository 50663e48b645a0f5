//! MySQL/MariaDB change capture from the binary log: the facts a plan seals (log end,
//! format, row image, retention, the table's columns as row images hold them) and
//! reading one sealed window of the log into Arrow batches, as a replica would.
//!
//! Nothing on the server holds the log for Rivet (there is no slot): a window is read
//! with `COM_BINLOG_DUMP` from its start position, non-blocking, until its end
//! position; both are transaction boundaries because the server writes a transaction's
//! events together at commit. Row images carry values by column position and in the
//! storage encoding, so each value is first brought to what the binary protocol sends
//! for the column (`normalize`: ENUM/SET labels, TIMESTAMP as a UTC date-time, the
//! column's character set to UTF-8, unsigned integers by the planned type) and then
//! decoded by the batch path's `Decoder`: one type mapping for batch and capture.
//!
//! A window is refused, never read wrong, when the log holds what row events cannot
//! show: statements on the table (`binlog_format` STATEMENT/MIXED in some session, or
//! DDL inside the window), images without every column (`binlog_row_image` MINIMAL or
//! NOBLOB), partial JSON updates, compressed transactions, or a table map whose column
//! types are not the table's types now.

use arrow::record_batch::RecordBatch;
use mysql::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql::binlog::value::BinlogValue;
use mysql::consts::ColumnType;
use mysql::prelude::Queryable;
use mysql::Value;
use rivet_schema::plan::BinlogPos;
use rivet_schema::LogicalType;

use super::reader::Decoder;
use super::{connect, error_text, query_err, Flavor};
use crate::builders::Batcher;
use crate::connection::ConnectionSettings;
use crate::error::SourceError;
use crate::source::{ReadFailure, SinkClosed};
use crate::{BinlogColumn, BinlogFacts, ChunkRead, ReadStats};

/// MariaDB's GTID event (it starts a transaction; `mysql_common` does not parse it).
const MARIADB_GTID_EVENT: u8 = 0xA2;
/// `@mariadb_slave_capability` at which the server sends its GTID events as they are.
const MARIADB_CAPABILITY_GTID: u8 = 4;

/// How long the server keeps binary logs, from `binlog_expire_logs_seconds` (MySQL 8,
/// MariaDB 10.6+) or `expire_logs_days`; None when neither expires anything.
pub(crate) fn retention_seconds(
    expire_seconds: Option<f64>,
    expire_days: Option<f64>,
) -> Option<f64> {
    match (expire_seconds, expire_days) {
        (Some(s), _) if s > 0.0 => Some(s),
        (_, Some(d)) if d > 0.0 => Some(d * 86_400.0),
        _ => None,
    }
}

/// The end of the binary log now: `SHOW MASTER STATUS` (MySQL 8.4 renamed it `SHOW
/// BINARY LOG STATUS`). None when binary logging is off.
fn log_end(conn: &mut mysql::Conn) -> Result<Option<BinlogPos>, SourceError> {
    let row: Option<mysql::Row> = match conn.query_first("SHOW MASTER STATUS") {
        Ok(r) => r,
        Err(mysql::Error::MySqlError(e)) if e.code == 1064 => conn
            .query_first("SHOW BINARY LOG STATUS")
            .map_err(query_err(
                "reading the binary log's end (SHOW BINARY LOG STATUS)",
            ))?,
        Err(e) => {
            return Err(privilege(
                e,
                "reading the binary log's end (SHOW MASTER STATUS)",
            ))
        }
    };
    let Some(row) = row else { return Ok(None) };
    let file: Option<String> = row.get(0);
    let offset: Option<u64> = row.get(1);
    match (file, offset) {
        (Some(f), Some(o)) => BinlogPos::new(&f, o)
            .map(Some)
            .map_err(|d| SourceError::Query {
                context: "reading the binary log's end".into(),
                detail: d,
                transient: false,
            }),
        _ => Err(SourceError::Query {
            context: "reading the binary log's end".into(),
            detail: "SHOW MASTER STATUS returned no file and position".into(),
            transient: false,
        }),
    }
}

/// An access-denied error as the privilege that is missing.
fn privilege(e: mysql::Error, context: &str) -> SourceError {
    match &e {
        mysql::Error::MySqlError(m) if matches!(m.code, 1227 | 1142 | 1045 | 1044) => {
            SourceError::Settings {
                key: "source".into(),
                detail: format!(
                    "{context}: {}; change capture needs `GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO <user>` (MariaDB 10.5+: `BINLOG MONITOR, REPLICATION SLAVE`)",
                    error_text(&e)
                ),
            }
        }
        _ => query_err(context)(e),
    }
}

/// The facts `rivet plan` seals for a binlog `cdc` export, and that apply reads again
/// before a window.
pub(crate) fn facts(
    conn: &mut mysql::Conn,
    schema: &str,
    table: &str,
) -> Result<BinlogFacts, SourceError> {
    let vars: Vec<(String, String)> = conn
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', \
             'binlog_row_image', 'server_id', 'binlog_expire_logs_seconds', 'expire_logs_days', \
             'gtid_binlog_pos', 'gtid_executed')",
        )
        .map_err(query_err("reading the binary log settings"))?;
    let var = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    // A retention setting the server prints but that does not read as a number is an
    // error: reading it as "no expiry" would misstate how long the log is kept.
    let num = |k: &str| -> Result<Option<f64>, SourceError> {
        var(k)
            .map(|v| {
                v.parse::<f64>().map_err(|_| SourceError::Query {
                    context: "reading the binary log settings".into(),
                    detail: format!("@@{k} is `{v}`, not a number"),
                    transient: false,
                })
            })
            .transpose()
    };
    let log_bin = var("log_bin").is_some_and(|v| v.eq_ignore_ascii_case("ON") || v == "1");
    let server_id = var("server_id")
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| SourceError::Query {
            context: "reading the binary log settings".into(),
            detail: format!(
                "@@server_id is `{}`, not a number",
                var("server_id").unwrap_or_default()
            ),
            transient: false,
        })?;
    let (current, files) = if log_bin {
        let current = log_end(conn)?.ok_or_else(|| SourceError::Query {
            context: "reading the binary log's end".into(),
            detail: "log_bin is ON but SHOW MASTER STATUS returned no row".into(),
            transient: false,
        })?;
        let files = binary_logs(conn)?;
        (current, files)
    } else {
        (
            BinlogPos {
                index: 0,
                file: String::new(),
                offset: 0,
            },
            Vec::new(),
        )
    };
    let columns: Vec<(String, String, String, Option<String>)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? \
             ORDER BY ORDINAL_POSITION",
            (schema, table),
        )
        .map_err(query_err(
            "reading the table's columns from information_schema.COLUMNS",
        ))?;
    if columns.is_empty() {
        return Err(SourceError::TableNotFound {
            table: format!("{schema}.{table}"),
        });
    }
    Ok(BinlogFacts {
        log_bin,
        binlog_format: var("binlog_format").unwrap_or_default(),
        row_image: var("binlog_row_image").unwrap_or_default(),
        server_id,
        current,
        files,
        retention_seconds: retention_seconds(
            num("binlog_expire_logs_seconds")?,
            num("expire_logs_days")?,
        )
        .map(|s| s as u64),
        gtid_position: var("gtid_binlog_pos")
            .or_else(|| var("gtid_executed"))
            .filter(|g| !g.is_empty()),
        columns: columns
            .into_iter()
            .map(|(name, data_type, column_type, charset)| BinlogColumn {
                name,
                data_type: data_type.to_ascii_lowercase(),
                column_type,
                charset,
            })
            .collect(),
    })
}

/// Asks for the binary log as replica `server_id` at `at` (the log's end), non-blocking,
/// and reads until the server ends the stream: proves the REPLICATION SLAVE grant and
/// that the id is accepted, reading nothing of the log.
pub(crate) fn probe_replica(
    settings: &ConnectionSettings,
    server_id: u32,
    at: &BinlogPos,
) -> Result<(), SourceError> {
    let (conn, _) = connect(settings)?;
    let request = mysql::BinlogRequest::new(server_id)
        .with_filename(at.file.as_bytes())
        .with_pos(at.offset)
        .with_flags(mysql::BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK);
    let context = format!("reading the binary log as replica {server_id}");
    let stream = conn
        .get_binlog_stream(request)
        .map_err(|e| privilege(e, &context))?;
    // A few events at most (the rotate and format description the server sends first),
    // then the end of the stream.
    for event in stream.take(16) {
        event.map_err(|e| privilege(e, &context))?;
    }
    Ok(())
}

/// The server settings binary log capture needs: the log on, ROW events, FULL images
/// (other images leave columns out of updates and deletes, and rivet never writes a
/// value it was not sent as NULL).
pub fn unmet_prerequisite(f: &BinlogFacts) -> Option<crate::Unmet> {
    let unmet = |problem: String, fix: &str| {
        Some(crate::Unmet {
            key: "mode",
            problem,
            fix: fix.to_owned(),
        })
    };
    if !f.log_bin {
        return unmet(
            "binary logging is off (log_bin=OFF)".into(),
            "start the server with `log_bin` and `binlog_format=ROW` (a restart), then plan again",
        );
    }
    if !f.binlog_format.eq_ignore_ascii_case("ROW") {
        return unmet(
            format!("binlog_format is `{}`: statement events cannot be read as rows", f.binlog_format),
            "run `SET GLOBAL binlog_format = 'ROW';` and set it in the server's configuration (sessions already open keep their format until they reconnect)",
        );
    }
    if !f.row_image.eq_ignore_ascii_case("FULL") {
        return unmet(
            format!(
                "binlog_row_image is `{}`: other images leave columns out of updates and deletes, and rivet never writes a value it was not sent as NULL",
                f.row_image
            ),
            "run `SET GLOBAL binlog_row_image = 'FULL';` and set it in the server's configuration",
        );
    }
    None
}

/// `rivet cdc setup` for MySQL/MariaDB exports: nothing is created on the server (a
/// replica needs no slot), so this checks every prerequisite a plan would refuse and
/// says where the first window will start. One line per export.
pub fn setup(
    settings: &ConnectionSettings,
    objects: &[crate::CdcObjects],
) -> Result<Vec<String>, SourceError> {
    let (mut conn, _) = connect(settings)?;
    let default_db: Option<String> = conn
        .query_first("SELECT DATABASE()")
        .map_err(query_err("reading the default database"))?
        .flatten();
    let mut out = Vec::new();
    for o in objects {
        let schema = o.schema.clone().or_else(|| default_db.clone()).ok_or_else(|| {
            SourceError::Settings {
                key: "source".into(),
                detail: format!(
                    "export {}: table `{}` names no database and the connection has none; write it as `database.table`",
                    o.export, o.table
                ),
            }
        })?;
        let f = facts(&mut conn, &schema, &o.table)?;
        let unmet = |what: String| SourceError::Settings {
            key: "source".into(),
            detail: format!("export {}: {what}", o.export),
        };
        if let Some(u) = unmet_prerequisite(&f) {
            return Err(unmet(format!("{}; {}", u.problem, u.fix)));
        }
        let problems: Vec<String> = f.columns.iter().filter_map(column_problem).collect();
        if !problems.is_empty() {
            return Err(unmet(format!(
                "{}; leave these columns out with `columns:`",
                problems.join("; ")
            )));
        }
        out.push(format!(
            "export {}: {schema}.{} can be captured from the binary log (ROW, FULL images); nothing is created on the server: the first window planned starts at the log's end then (now {}), and the binary log is kept {}",
            o.export,
            o.table,
            f.current,
            f.retention_seconds.map_or("until purged by hand".to_owned(), |s| format!("for {:.1} day(s)", s as f64 / 86_400.0))
        ));
    }
    Ok(out)
}

/// Rivet's committed binary log positions against the log on the server now, for
/// `rivet-mcp`'s `source_health`: per export, whether the position is still readable
/// (its file not purged), and how much log lies after it. Nothing on the server holds
/// the log for Rivet, so this is the one place the risk shows before a plan fails.
pub fn checkpoint_section(
    settings: &ConnectionSettings,
    positions: &[(String, BinlogPos)],
) -> crate::health::HealthSection {
    use crate::health::HealthSection;
    const NAME: &str = "rivet_binlog_positions";
    let health = connect(settings)
        .and_then(|(mut conn, _)| binary_logs(&mut conn))
        .map(|files| {
            let health = positions_health(&files, positions);
            (files, health)
        });
    let (files, health) = match health {
        Ok(h) => h,
        Err(e) => return HealthSection::missing(NAME, settings.redact(&e.to_string())),
    };
    let lost = health.iter().filter(|h| !h.readable).count();
    let rows = health
        .iter()
        .map(|h| {
            let mut row = serde_json::Map::new();
            row.insert("export".into(), h.export.clone().into());
            row.insert("position".into(), h.position.to_string().into());
            row.insert("readable".into(), h.readable.into());
            row.insert("files_after".into(), h.files_after.into());
            row.insert("bytes_after".into(), h.bytes_after.into());
            row.insert(
                "oldest_file".into(),
                files
                    .first()
                    .map_or(serde_json::Value::Null, |(f, _)| f.file.clone().into()),
            );
            row
        })
        .collect();
    HealthSection::rows(NAME, rows).with_note(if lost > 0 {
        format!("{lost} export(s) committed a position whose binary log file is purged: those changes are gone; `rivet state reset-cursor <export>` and take a new snapshot")
    } else {
        "every committed position is still on the server; bytes_after is the log the next window reads (the server purges by age whether Rivet read it or not)".to_owned()
    })
}

/// A committed binary log position against the log on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionHealth {
    pub export: String,
    pub position: BinlogPos,
    /// Its file is still on the server.
    pub readable: bool,
    /// Files and bytes of log from the position to the end of the newest file.
    pub files_after: u64,
    pub bytes_after: u64,
}

/// Each committed position against the server's binary logs `files`.
pub fn positions_health(
    files: &[(BinlogPos, u64)],
    positions: &[(String, BinlogPos)],
) -> Vec<PositionHealth> {
    positions
        .iter()
        .map(|(export, pos)| {
            let (files_after, bytes_after) = log_span(files, pos, None);
            PositionHealth {
                export: export.clone(),
                position: pos.clone(),
                readable: files.iter().any(|(f, _)| f.file == pos.file),
                files_after,
                bytes_after,
            }
        })
        .collect()
}

/// Live positions for `rivet state -c`: a connection, the server's binary logs, then
/// [`positions_health`].
pub fn live_positions(
    settings: &ConnectionSettings,
    positions: &[(String, BinlogPos)],
) -> Result<Vec<PositionHealth>, SourceError> {
    let (mut conn, _) = connect(settings)?;
    let files = binary_logs(&mut conn)?;
    Ok(positions_health(&files, positions))
}

/// The binary log files on the server, oldest first (`SHOW BINARY LOGS`), each as its
/// start position; a row without a name and size, or a name that is not a binary log
/// file name, is an error.
fn binary_logs(conn: &mut mysql::Conn) -> Result<Vec<(BinlogPos, u64)>, SourceError> {
    let bad = |detail: String| SourceError::Query {
        context: "listing the binary logs (SHOW BINARY LOGS)".into(),
        detail,
        transient: false,
    };
    let rows: Vec<mysql::Row> = conn
        .query("SHOW BINARY LOGS")
        .map_err(|e| privilege(e, "listing the binary logs (SHOW BINARY LOGS)"))?;
    rows.into_iter()
        .map(|r| {
            match (
                r.get::<Option<String>, _>(0).flatten(),
                r.get::<Option<u64>, _>(1).flatten(),
            ) {
                (Some(n), Some(size)) => Ok((BinlogPos::new(&n, 0).map_err(bad)?, size)),
                _ => Err(bad("a row without a name and size".into())),
            }
        })
        .collect()
}

/// Files and bytes of log from `from` to `to` (None: the end of the newest file): the
/// rest of `from`'s file, the files between, and `to`'s file up to `to`.
pub fn log_span(
    files: &[(BinlogPos, u64)],
    from: &BinlogPos,
    to: Option<&BinlogPos>,
) -> (u64, u64) {
    let mut count = 0;
    let mut bytes = 0;
    for (f, size) in files {
        if f.index < from.index || to.is_some_and(|t| f.index > t.index) {
            continue;
        }
        let start = if f.index == from.index {
            from.offset
        } else {
            0
        };
        let end = match to {
            Some(t) if t.index == f.index => t.offset,
            _ => *size,
        };
        count += 1;
        bytes += end.saturating_sub(start);
    }
    (count, bytes)
}

/// The row-event column types a column of this `DATA_TYPE` is logged as; None for
/// types this version does not decode from row images.
fn logged_as(data_type: &str) -> Option<&'static [ColumnType]> {
    use ColumnType::*;
    Some(match data_type {
        "tinyint" => &[MYSQL_TYPE_TINY],
        "smallint" => &[MYSQL_TYPE_SHORT],
        "mediumint" => &[MYSQL_TYPE_INT24],
        "int" | "integer" => &[MYSQL_TYPE_LONG],
        "bigint" => &[MYSQL_TYPE_LONGLONG],
        "decimal" | "numeric" => &[MYSQL_TYPE_NEWDECIMAL],
        "float" => &[MYSQL_TYPE_FLOAT],
        "double" | "real" => &[MYSQL_TYPE_DOUBLE],
        "bit" => &[MYSQL_TYPE_BIT],
        "char" | "binary" => &[MYSQL_TYPE_STRING],
        "varchar" | "varbinary" => &[MYSQL_TYPE_VARCHAR, MYSQL_TYPE_VAR_STRING],
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => &[
            MYSQL_TYPE_BLOB,
            MYSQL_TYPE_TINY_BLOB,
            MYSQL_TYPE_MEDIUM_BLOB,
            MYSQL_TYPE_LONG_BLOB,
        ],
        "json" => &[MYSQL_TYPE_JSON, MYSQL_TYPE_BLOB],
        "enum" => &[MYSQL_TYPE_ENUM],
        "set" => &[MYSQL_TYPE_SET],
        "date" => &[MYSQL_TYPE_DATE, MYSQL_TYPE_NEWDATE],
        "datetime" => &[MYSQL_TYPE_DATETIME2, MYSQL_TYPE_DATETIME],
        "timestamp" => &[MYSQL_TYPE_TIMESTAMP2, MYSQL_TYPE_TIMESTAMP],
        "time" => &[MYSQL_TYPE_TIME2, MYSQL_TYPE_TIME],
        "year" => &[MYSQL_TYPE_YEAR],
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => &[MYSQL_TYPE_GEOMETRY],
        _ => return None,
    })
}

/// Character sets whose bytes this version turns into UTF-8 text.
fn charset_supported(charset: &str) -> bool {
    matches!(
        charset,
        "utf8mb4" | "utf8mb3" | "utf8" | "ascii" | "latin1" | "binary"
    )
}

/// Why a column cannot be captured from row images, if it cannot: a type this version
/// does not decode from them, or text in a character set it does not convert.
pub fn column_problem(c: &BinlogColumn) -> Option<String> {
    if logged_as(&c.data_type).is_none() {
        return Some(format!(
            "`{}` ({}) is not decoded from binary log row images in this version",
            c.name, c.column_type
        ));
    }
    if c.data_type == "time" && matches!(c.column_type.as_str(), "time(1)" | "time(2)") {
        // The row-image decoder of mysql_common 0.35 mis-reads negative TIME values
        // with one or two fractional digits (an unsigned subtraction), so they are
        // refused rather than written wrong.
        return Some(format!(
            "`{}` ({}) cannot be read from row images in this version: negative values with 1 or 2 fractional digits are decoded wrong by the binary log decoder; widen it to time(3) or leave it out",
            c.name, c.column_type
        ));
    }
    match c.charset.as_deref() {
        Some(cs) if !charset_supported(cs) => Some(format!(
            "`{}` is stored in character set {cs}, which this version does not convert from row images (utf8mb4, utf8mb3, ascii and latin1 are converted)",
            c.name
        )),
        _ => None,
    }
}

/// The labels of an `enum('a','b')` or `set('a','b')` column type, in order (quotes
/// doubled or backslash-escaped inside a label, as `COLUMN_TYPE` prints them).
fn labels(column_type: &str) -> Result<Vec<String>, String> {
    let bad = || format!("cannot read the labels of `{column_type}`");
    let open = column_type.find('(').ok_or_else(bad)?;
    let inner = column_type[open + 1..].strip_suffix(')').ok_or_else(bad)?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        match chars.next() {
            Some('\'') => {}
            None if out.is_empty() => return Err(bad()),
            _ => return Err(bad()),
        }
        let mut label = String::new();
        loop {
            match chars.next().ok_or_else(bad)? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => label.push(chars.next().ok_or_else(bad)?),
                c => label.push(c),
            }
        }
        out.push(label);
        match chars.next() {
            Some(',') => continue,
            None => return Ok(out),
            Some(_) => return Err(bad()),
        }
    }
}

/// MySQL's `latin1` is Windows-1252; the five bytes 1252 leaves undefined map to the
/// C1 control characters of the same value, as MySQL converts them.
fn latin1_to_utf8(raw: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}',
        '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}',
        '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}',
        '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
    ];
    raw.iter()
        .map(|&b| match b {
            0x80..=0x9F => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// What decoding one column of the table needs, prepared once per window.
struct ColumnPlan {
    /// Ordinal position in the table (and in full row images).
    ordinal: usize,
    column: BinlogColumn,
    /// ENUM/SET labels.
    labels: Vec<String>,
    logical: LogicalType,
}

/// A UTC date-time as the binary protocol's date value.
fn utc_value(secs: i64, micros: u32) -> Result<Value, String> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp(secs, micros * 1000)
        .ok_or_else(|| format!("{secs} seconds since 1970 is out of range"))?
        .naive_utc();
    Ok(Value::Date(
        t.year() as u16,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        micros,
    ))
}

/// Brings one row-image value to what the binary protocol sends for the column, so the
/// batch path's decoder reads it (see the module docs). Takes the value: text, the bulk
/// of most rows, moves through without a copy.
fn normalize(v: BinlogValue<'_>, c: &ColumnPlan, logged: ColumnType) -> Result<Value, String> {
    use ColumnType::*;
    let v = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            let dom = j.parse().map_err(|e| format!("JSON value: {e}"))?;
            let json: serde_json::Value = dom.into();
            return Ok(Value::Bytes(json.to_string().into_bytes()));
        }
        BinlogValue::JsonDiff(_) => {
            return Err("the log holds a partial JSON update (only the change, not the value); set `binlog_row_value_options = ''` on the server, plan again and take a new snapshot".into())
        }
    };
    match (logged, v) {
        (
            MYSQL_TYPE_STRING
            | MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB,
            Value::Bytes(b),
        ) if c.column.data_type != "binary" => {
            Ok(Value::Bytes(match c.column.charset.as_deref() {
                Some("latin1") => latin1_to_utf8(&b).into_bytes(),
                _ => b,
            }))
        }
        (_, Value::NULL) => Ok(Value::NULL),
        (_, v) => Ok(converted(&v, c, logged)?.unwrap_or(v)),
    }
}

/// The protocol form of a value whose storage form differs (ENUM, SET, TIMESTAMP,
/// YEAR, integers of the other signedness, BINARY padding); None when it is the same.
fn converted(v: &Value, c: &ColumnPlan, logged: ColumnType) -> Result<Option<Value>, String> {
    use ColumnType::*;
    Ok(Some(match (logged, v) {
        (MYSQL_TYPE_ENUM, Value::Int(i)) => {
            let label = match *i {
                0 => String::new(),
                i => c
                    .labels
                    .get(usize::try_from(i - 1).unwrap_or(usize::MAX))
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "enum index {i} is past the column's {} label(s)",
                            c.labels.len()
                        )
                    })?,
            };
            Value::Bytes(label.into_bytes())
        }
        (MYSQL_TYPE_SET, Value::Bytes(bits)) => {
            let mut chosen = Vec::new();
            for (k, label) in c.labels.iter().enumerate() {
                if bits.get(k / 8).is_some_and(|b| b & (1 << (k % 8)) != 0) {
                    chosen.push(label.as_str());
                }
            }
            Value::Bytes(chosen.join(",").into_bytes())
        }
        (MYSQL_TYPE_TIMESTAMP, Value::Int(secs)) => utc_value(*secs, 0)?,
        (MYSQL_TYPE_TIMESTAMP2, Value::Bytes(b)) => {
            let s = std::str::from_utf8(b).map_err(|_| "TIMESTAMP is not text".to_owned())?;
            let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
            let secs: i64 = secs.parse().map_err(|_| format!("TIMESTAMP `{s}`"))?;
            let micros: u32 = format!("{frac:0<6}")[..6]
                .parse()
                .map_err(|_| format!("TIMESTAMP `{s}`"))?;
            if secs == 0 && micros == 0 {
                // The zero TIMESTAMP, as the binary protocol sends it.
                Value::Date(0, 0, 0, 0, 0, 0, 0)
            } else {
                utc_value(secs, micros)?
            }
        }
        (MYSQL_TYPE_YEAR, Value::Bytes(b)) => {
            let y: i64 = std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "YEAR is not a number".to_owned())?;
            // YEAR 0000 is stored as 0, which the reader prints as 1900.
            Value::Int(if y == 1900 { 0 } else { y })
        }
        (
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG,
            Value::Int(_) | Value::UInt(_),
        ) => {
            // Row images say nothing of signedness without binlog_row_metadata=FULL,
            // so the stored bits are read as the planned type says.
            let bits = match logged {
                MYSQL_TYPE_TINY => 8,
                MYSQL_TYPE_SHORT => 16,
                MYSQL_TYPE_INT24 => 24,
                _ => 32,
            };
            let raw = match v {
                Value::Int(i) => *i as u64,
                Value::UInt(u) => *u,
                _ => unreachable!("matched above"),
            } & ((1u64 << bits) - 1);
            if is_unsigned(&c.logical) || raw < (1u64 << (bits - 1)) {
                Value::Int(raw as i64)
            } else {
                Value::Int(raw as i64 - (1i64 << bits))
            }
        }
        (MYSQL_TYPE_LONGLONG, Value::Int(i)) if is_unsigned(&c.logical) => Value::UInt(*i as u64),
        (MYSQL_TYPE_LONGLONG, Value::UInt(u)) if !is_unsigned(&c.logical) => Value::Int(*u as i64),
        (MYSQL_TYPE_STRING, Value::Bytes(b)) if c.column.data_type == "binary" => {
            // BINARY(n) is logged without its trailing 0x00 padding; the server returns
            // it padded to n bytes.
            let n: usize = c
                .column
                .column_type
                .strip_prefix("binary(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("cannot read the length of `{}`", c.column.column_type))?;
            if b.len() > n {
                return Err(format!("a BINARY({n}) value of {} bytes", b.len()));
            }
            let mut padded = b.clone();
            padded.resize(n, 0);
            Value::Bytes(padded)
        }
        _ => return Ok(None),
    }))
}

fn is_unsigned(l: &LogicalType) -> bool {
    matches!(
        l,
        LogicalType::UInt8 | LogicalType::UInt16 | LogicalType::UInt32 | LogicalType::UInt64
    )
}

/// A table map's column types against the table's columns now: the same count and,
/// per position, a type the column's `DATA_TYPE` is logged as.
fn check_table_map(tme: &TableMapEvent<'_>, columns: &[BinlogColumn]) -> Result<Layout, String> {
    let n = tme.columns_count() as usize;
    if n != columns.len() {
        return Err(format!(
            "the log's row images have {n} column(s) and the table has {} now: its shape changed inside the window",
            columns.len()
        ));
    }
    let mut types = Vec::with_capacity(n);
    let mut meta = Vec::with_capacity(n);
    for (i, c) in columns.iter().enumerate() {
        let ty = tme
            .get_column_type(i)
            .map_err(|e| format!("column {} (`{}`): {e}", i + 1, c.name))?
            .ok_or_else(|| {
                format!(
                    "column {} (`{}`) has no type in the table map",
                    i + 1,
                    c.name
                )
            })?;
        // A type this version does not decode is never planned (refused by name): its
        // values are only parsed past, whatever the log calls them.
        let expected = logged_as(&c.data_type);
        if expected.is_some_and(|e| !e.contains(&ty)) {
            return Err(format!(
                "column {} `{}` is {} now but the log holds it as {ty:?}: it changed type inside the window",
                i + 1,
                c.name,
                c.column_type
            ));
        }
        types.push(ty);
        // Types without metadata have an empty slice; None means the table map itself
        // cannot be read past this column, and values must not be parsed by guesswork.
        let m = tme.get_column_metadata(i).ok_or_else(|| {
            format!(
                "column {} (`{}`) has no readable metadata in the table map",
                i + 1,
                c.name
            )
        })?;
        meta.push(m.to_vec());
    }
    Ok(Layout { types, meta })
}

/// How a table's row images are laid out, from its table map: each column's logged
/// type and metadata (lengths, precision), computed once per table id.
struct Layout {
    types: Vec<ColumnType>,
    meta: Vec<Vec<u8>>,
}

/// One row image read straight from the event bytes: per column (by ordinal) its value,
/// or None when the image does not hold the column. The same parser per value as the
/// `mysql_common` row type, without its per-row column descriptors (which dominated a
/// profile: a formatted name, an `Arc` and several allocations for every value).
fn read_image<'d>(
    buf: &mut mysql_common::io::ParseBuf<'d>,
    present: &[bool],
    layout: &'d Layout,
) -> Result<Vec<Option<BinlogValue<'static>>>, String> {
    let n = layout.types.len();
    let count = present.iter().take(n).filter(|p| **p).count();
    let nulls = buf
        .checked_eat(count.div_ceil(8))
        .ok_or("a row image ends inside its NULL bitmap")?;
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    for i in 0..n {
        if !present.get(i).copied().unwrap_or(false) {
            out.push(None);
            continue;
        }
        let null = nulls[k / 8] & (1 << (k % 8)) != 0;
        k += 1;
        if null {
            out.push(Some(BinlogValue::Value(Value::NULL)));
            continue;
        }
        let v: BinlogValue<'d> = buf
            .parse((layout.types[i], layout.meta[i].as_slice(), false, false))
            .map_err(|e| format!("column {}: {e}", i + 1))?;
        out.push(Some(v.into_owned()));
    }
    Ok(out)
}

/// Whether a statement text names `table` as an identifier (backticked, or bare with
/// non-identifier characters around it).
fn mentions(sql: &str, table: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let t = table.to_ascii_lowercase();
    if lower.contains(&format!("`{}`", t.replace('`', "``"))) {
        return true;
    }
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    lower.match_indices(&t).any(|(at, _)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + t.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// The first keyword of a statement, after comments and spaces, uppercased.
fn first_word(sql: &str) -> String {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("--").or_else(|| s.strip_prefix('#')) {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    s.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// One row image to write: its values by ordinal (taken as they are written), and the
/// table map's column types.
type Image<'r> = (&'r mut [Option<BinlogValue<'static>>], &'r [ColumnType]);

/// The transaction being read: where it starts in the log, its time and id.
#[derive(Clone, Copy)]
struct Txn {
    file_index: u64,
    offset: u64,
    ts: u32,
    id: Option<i64>,
}

/// Reads one window of the binary log into batches (see the module docs). `conn` is
/// the reader's connection, used for the facts; the log is read on a connection of its
/// own, which the dump turns into a replica stream and which is closed after.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_window(
    settings: &ConnectionSettings,
    conn: &mut mysql::Conn,
    req: &ChunkRead,
    w: &crate::CdcWindow,
    server_id: u32,
    start: &BinlogPos,
    end: &BinlogPos,
    label: &str,
    sink: &mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
) -> Result<ReadStats, ReadFailure> {
    let ntable = req.columns.len() - 4;
    let fail = |detail: String| refused(label, detail);
    let facts = facts(conn, &w.schema, &w.table)?;
    if !facts.log_bin {
        return Err(fail("binary logging is off on the server now (log_bin=OFF); enable it, take a new snapshot and plan again".into()));
    }
    if !facts.files.iter().any(|(f, _)| f.file == start.file) {
        return Err(fail(format!(
            "binary log {} holding this window's start ({start}) is no longer on the server (purged; the oldest is {}): the changes since cannot be read; reset the position with `rivet state reset-cursor <export>` and take a new snapshot of the table (docs/cdc.md)",
            start.file,
            facts.files.first().map_or("none", |(f, _)| f.file.as_str())
        )));
    }
    if facts.current < *end {
        return Err(fail(format!(
            "the binary log ends at {} now, before this window's end {end}: the log was reset (RESET MASTER) or this is another server; take a new snapshot and plan again",
            facts.current
        )));
    }
    let mut plans = Vec::with_capacity(ntable);
    for rc in &req.columns[..ntable] {
        let ordinal = facts
            .columns
            .iter()
            .position(|c| c.name == rc.name)
            .ok_or_else(|| {
                fail(format!(
                    "column `{}` of {}.{} is gone; plan again and take a new snapshot",
                    rc.name, w.schema, w.table
                ))
            })?;
        let column = facts.columns[ordinal].clone();
        if let Some(p) = column_problem(&column) {
            return Err(fail(p));
        }
        let labels = if matches!(column.data_type.as_str(), "enum" | "set") {
            labels(&column.column_type).map_err(fail)?
        } else {
            Vec::new()
        };
        plans.push(ColumnPlan {
            ordinal,
            column,
            labels,
            logical: rc.logical.clone(),
        });
    }
    let key_ordinals: Vec<usize> = plans
        .iter()
        .filter(|p| w.key.contains(&p.column.name))
        .map(|p| p.ordinal)
        .collect();
    let mut decoders = req
        .columns
        .iter()
        .map(|c| {
            Decoder::new(&c.logical, &c.wire_type).map_err(|d| {
                ReadFailure::from(SourceError::Decode {
                    relation: label.to_owned(),
                    column: c.name.clone(),
                    detail: d,
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut batcher = Batcher::new(req, label);
    let mut read = Reader {
        req,
        plans: &plans,
        key_ordinals: &key_ordinals,
        label,
        decoders: &mut decoders,
        batcher: &mut batcher,
        sink,
        seq: 0,
    };
    if start < end {
        read.stream(settings, w, &facts.columns, server_id, start, end)?;
    }
    read.batcher.flush(read.decoders, read.sink)?;
    Ok(batcher.stats(decoders.iter().map(|d| d.nulled)))
}

/// A window that cannot be read as planned: not transient, retrying changes nothing.
fn refused(label: &str, detail: String) -> ReadFailure {
    SourceError::Query {
        context: label.to_owned(),
        detail,
        transient: false,
    }
    .into()
}

/// The state of one window read: where values go and the change counter of the
/// transaction being read.
struct Reader<'a, 'b> {
    req: &'a ChunkRead,
    plans: &'a [ColumnPlan],
    key_ordinals: &'a [usize],
    label: &'a str,
    decoders: &'a mut Vec<Decoder>,
    batcher: &'a mut Batcher<'b>,
    sink: &'a mut dyn FnMut(RecordBatch) -> Result<(), SinkClosed>,
    seq: u64,
}

impl Reader<'_, '_> {
    fn stream(
        &mut self,
        settings: &ConnectionSettings,
        w: &crate::CdcWindow,
        columns: &[BinlogColumn],
        server_id: u32,
        start: &BinlogPos,
        end: &BinlogPos,
    ) -> Result<(), ReadFailure> {
        let label = self.label;
        let fail = |detail: String| refused(label, detail);
        let (mut dump, flavor) = connect(settings)?;
        if flavor == Flavor::MariaDb {
            dump.query_drop(format!(
                "SET @mariadb_slave_capability = {MARIADB_CAPABILITY_GTID}"
            ))
            .map_err(query_err("announcing the replica's capabilities"))?;
        }
        let request = mysql::BinlogRequest::new(server_id)
            .with_filename(start.file.as_bytes())
            .with_pos(start.offset)
            .with_flags(mysql::BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK);
        let mut stream = dump.get_binlog_stream(request).map_err(|e| {
            privilege(
                e,
                &format!("{label}: requesting the binary log from {start} as replica {server_id}"),
            )
        })?;
        let mut file = start.file.clone();
        let mut file_index = start.index;
        let mut txn: Option<Txn> = None;
        let mut types_of: std::collections::HashMap<u64, Layout> = Default::default();
        let mut reached = false;
        let mut seen_fde = false;
        while let Some(event) = stream.next() {
            let event = event.map_err(|e| {
                fail(format!(
                    "reading the binary log after {file}: {}",
                    error_text(&e)
                ))
            })?;
            let header = event.header();
            let end_pos = u64::from(header.log_pos());
            let at = BinlogPos {
                index: file_index,
                file: file.clone(),
                offset: end_pos,
            };
            let event_start = end_pos.saturating_sub(u64::from(header.event_size()));
            // A transaction starting at this event.
            let here = |id: Option<i64>| Txn {
                file_index,
                offset: event_start,
                ts: header.timestamp(),
                id,
            };
            if event.header().event_type_raw() == MARIADB_GTID_EVENT {
                let data = event.data();
                let seq_no = data
                    .get(..8)
                    .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes")))
                    .ok_or_else(|| fail(format!("a GTID event at {at} is too short")))?;
                let id = i64::try_from(seq_no).map_err(|_| {
                    fail(format!(
                        "GTID sequence {seq_no} at {at} does not fit a signed 64-bit id"
                    ))
                })?;
                txn = Some(here(Some(id)));
                self.seq = 0;
            }
            let data = event
                .read_data()
                .map_err(|e| fail(format!("cannot parse the event at {at}: {e}")))?;
            match data {
                Some(EventData::FormatDescriptionEvent(_)) => seen_fde = true,
                Some(EventData::RotateEvent(r)) => {
                    // The dump starts with an artificial rotate sent before the format
                    // description that announces checksums, so its CRC32 (which the
                    // driver asked for) is still on the end of the name.
                    let raw = r.name_raw();
                    let raw = if seen_fde {
                        raw
                    } else {
                        raw.get(..raw.len().saturating_sub(4)).unwrap_or_default()
                    };
                    let name = String::from_utf8_lossy(raw);
                    let next = BinlogPos::new(&name, r.position()).map_err(fail)?;
                    file = next.file;
                    file_index = next.index;
                    continue;
                }
                Some(EventData::GtidEvent(g)) => {
                    let id = i64::try_from(g.gno()).map_err(|_| {
                        fail(format!(
                            "GTID number {} at {at} does not fit a signed 64-bit id",
                            g.gno()
                        ))
                    })?;
                    txn = Some(here(Some(id)));
                    self.seq = 0;
                }
                Some(EventData::AnonymousGtidEvent(_)) => {
                    txn = Some(here(None));
                    self.seq = 0;
                }
                Some(EventData::QueryEvent(q)) if end_pos != 0 => {
                    let sql = q.query();
                    match first_word(&sql).as_str() {
                        "BEGIN" if txn.is_none() => {
                            txn = Some(here(None));
                            self.seq = 0;
                        }
                        "COMMIT" | "ROLLBACK" | "SAVEPOINT" | "XA" => {}
                        word @ ("TRUNCATE" | "ALTER" | "DROP" | "RENAME" | "CREATE") => {
                            let ours = ddl_targets(&sql).iter().any(|(db, t)| {
                                t == &w.table && db.as_deref().unwrap_or(&q.schema()) == w.schema
                            });
                            if ours && word == "TRUNCATE" {
                                let t = txn.unwrap_or(here(None));
                                self.emit("truncate", &t, None)?;
                            } else if ours {
                                return Err(self.statement_refused(word, w, &at, &sql));
                            }
                        }
                        word @ ("INSERT" | "REPLACE" | "UPDATE" | "DELETE" | "LOAD")
                            if mentions(&sql, &w.table)
                                && (q.schema() == w.schema.as_str()
                                    || mentions(&sql, &w.schema)) =>
                        {
                            return Err(self.statement_refused(word, w, &at, &sql));
                        }
                        _ => {}
                    }
                    if matches!(first_word(&sql).as_str(), "COMMIT" | "ROLLBACK") {
                        txn = None;
                    }
                }
                Some(EventData::XidEvent(_)) => txn = None,
                Some(EventData::TransactionPayloadEvent(_)) => {
                    return Err(fail(format!("the transaction at {at} is compressed (binlog_transaction_compression=ON), which this version does not read; turn it off, plan again and take a new snapshot")));
                }
                Some(EventData::RowsEvent(rows)) => {
                    let table_id = rows.table_id();
                    let tme = stream.get_tme(table_id).ok_or_else(|| {
                        fail(format!(
                            "rows at {at} name table id {table_id}, which no table map announced"
                        ))
                    })?;
                    if tme.database_name() == w.schema.as_str()
                        && tme.table_name() == w.table.as_str()
                    {
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            types_of.entry(table_id)
                        {
                            let types = check_table_map(tme, columns).map_err(|d| {
                                fail(format!("{}.{} at {at}: {d}; plan again and take a new snapshot of the table", w.schema, w.table))
                            })?;
                            slot.insert(types);
                        }
                        let t = txn.unwrap_or(here(None));
                        self.rows(&rows, &types_of[&table_id], &t, &at)?;
                    }
                }
                _ => {}
            }
            if end_pos != 0 && at >= *end {
                reached = true;
                break;
            }
        }
        drop(stream);
        if !reached {
            return Err(fail(format!(
                "the binary log ended at {file} before this window's end {end}; the log was reset or purged while reading: take a new snapshot and plan again"
            )));
        }
        Ok(())
    }

    /// The error for a statement on the table inside the window.
    fn statement_refused(
        &self,
        word: &str,
        w: &crate::CdcWindow,
        at: &BinlogPos,
        sql: &str,
    ) -> ReadFailure {
        refused(
            self.label,
            format!(
                "the binary log holds a {word} statement on {}.{} at {at} (`{}`): a statement-format change or DDL inside the window, which row events cannot show, so nothing of this window is written; plan again (DDL: take a new snapshot of the table; statements: make every writer use binlog_format=ROW)",
                w.schema,
                w.table,
                sql.chars().take(200).collect::<String>()
            ),
        )
    }

    /// Appends the changes of one rows event.
    fn rows(
        &mut self,
        rows: &RowsEventData<'_>,
        layout: &Layout,
        t: &Txn,
        at: &BinlogPos,
    ) -> Result<(), ReadFailure> {
        let types = layout.types.as_slice();
        let label = self.label;
        let fail = |detail: String| -> ReadFailure {
            SourceError::Decode {
                relation: label.to_owned(),
                column: String::new(),
                detail: format!("{detail} (rows event ending at {at})"),
            }
            .into()
        };
        let n = types.len();
        let before_bits: Option<Vec<bool>> = rows
            .columns_before_image()
            .map(|b| b.iter().map(|x| *x).collect());
        let after_bits: Option<Vec<bool>> = rows
            .columns_after_image()
            .map(|b| b.iter().map(|x| *x).collect());
        for (image, which) in [(&before_bits, "before"), (&after_bits, "after")] {
            if let Some(bits) = image {
                if let Some(missing) = self
                    .plans
                    .iter()
                    .find(|p| !bits.get(p.ordinal).copied().unwrap_or(false))
                {
                    return Err(fail(format!(
                        "the {which} image lacks column `{}`: the server logs partial row images (binlog_row_image MINIMAL or NOBLOB, perhaps set by one session); set binlog_row_image=FULL globally, plan again and take a new snapshot",
                        missing.column.name
                    )));
                }
                if bits.len() < n {
                    return Err(fail(
                        "the row image has fewer columns than the table map".into(),
                    ));
                }
            }
        }
        let (op, partial) = match rows {
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => {
                ("insert", false)
            }
            RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_) => {
                ("update", false)
            }
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => {
                ("delete", false)
            }
            RowsEventData::PartialUpdateRowsEvent(_) => ("update", true),
        };
        if partial {
            return Err(fail("the log holds a partial JSON update (only the change, not the value); set `binlog_row_value_options = ''` on the server, plan again and take a new snapshot".into()));
        }
        // Each row: the before image (updates, deletes), then the after image (inserts,
        // updates), each a NULL bitmap over its columns and their values.
        let mut buf = mysql_common::io::ParseBuf(rows.rows_data());
        while !buf.is_empty() {
            let mut image = |bits: &Option<Vec<bool>>| {
                bits.as_deref()
                    .map(|b| read_image(&mut buf, b, layout))
                    .transpose()
                    .map_err(|e| fail(format!("cannot parse a row: {e}")))
            };
            let mut before = image(&before_bits)?;
            let mut after = image(&after_bits)?;
            if op == "update" {
                let moved = match (&before, &after) {
                    (Some(b), Some(a)) => self.key_ordinals.iter().any(|&o| b[o] != a[o]),
                    _ => false,
                };
                if moved {
                    let b = before.as_mut().expect("matched above");
                    self.emit("delete", t, Some((b, types)))?;
                }
            }
            let image = match op {
                "delete" => before.as_mut(),
                _ => after.as_mut(),
            }
            .ok_or_else(|| fail(format!("a {op} row without its image")))?;
            self.emit(op, t, Some((image, types)))?;
        }
        Ok(())
    }

    /// Appends one change row: the image's values (all NULL for a truncate), then op,
    /// position, commit time and transaction id.
    fn emit(&mut self, op: &str, t: &Txn, mut image: Option<Image<'_>>) -> Result<(), ReadFailure> {
        self.seq += 1;
        let label = self.label;
        let ntable = self.plans.len();
        let mut bytes = 0usize;
        let seq = self.seq;
        let pos = position_text(t.file_index, t.offset, seq);
        let decode_err = |column: &str, detail: String| -> ReadFailure {
            SourceError::Decode {
                relation: label.to_owned(),
                column: column.to_owned(),
                detail: format!(
                    "{detail} ({op} at log position {})",
                    String::from_utf8_lossy(&position_text(t.file_index, t.offset, seq))
                ),
            }
            .into()
        };
        for (i, p) in self.plans.iter().enumerate() {
            let value = match &mut image {
                None => Value::NULL,
                Some((row, types)) => {
                    let raw = row[p.ordinal].take().ok_or_else(|| {
                        decode_err(&p.column.name, "the row image has no value here".into())
                    })?;
                    normalize(raw, p, types[p.ordinal])
                        .map_err(|d| decode_err(&p.column.name, d))?
                }
            };
            bytes += self.decoders[i]
                .append(&value)
                .map_err(|d| decode_err(&p.column.name, d))?;
        }
        let ts = utc_value(i64::from(t.ts), 0).map_err(|d| decode_err("_rivet_commit_ts", d))?;
        let extra = [
            Value::Bytes(op.as_bytes().to_vec()),
            Value::Bytes(pos),
            ts,
            t.id.map_or(Value::NULL, Value::Int),
        ];
        for (k, v) in extra.iter().enumerate() {
            self.decoders[ntable + k]
                .append(v)
                .map_err(|d| decode_err(&self.req.columns[ntable + k].name, d))?;
        }
        self.batcher.row(bytes + 64, self.decoders, self.sink)?;
        Ok(())
    }
}

/// `_rivet_pos` of a change: binary log file number (10 digits), offset of the
/// transaction's first event (20 digits) and change number in the transaction (10
/// digits), zero-padded and `-`-separated so text order is log order. Written by hand:
/// it is made for every change.
fn position_text(file_index: u64, offset: u64, seq: u64) -> Vec<u8> {
    fn digits(out: &mut Vec<u8>, mut n: u64, width: usize) {
        let start = out.len();
        out.resize(start + width, b'0');
        for slot in out[start..].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    let mut out = Vec::with_capacity(42);
    digits(&mut out, file_index, 10);
    out.push(b'-');
    digits(&mut out, offset, 20);
    out.push(b'-');
    digits(&mut out, seq, 10);
    out
}

/// The tables a DDL statement changes (`ALTER TABLE a`, `DROP TABLE a, b`, `RENAME
/// TABLE a TO b`, `TRUNCATE [TABLE] a`, `CREATE TABLE a …`), each with its database when
/// qualified. Tables a statement only reads (`CREATE TABLE x LIKE t`) are not targets.
fn ddl_targets(sql: &str) -> Vec<(Option<String>, String)> {
    // Tokens: backquoted identifiers (`` `` `` doubled inside), bare words, `.` and `,`.
    let mut tokens: Vec<(bool, String)> = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                let mut id = String::new();
                while let Some(c) = chars.next() {
                    if c == '`' {
                        if chars.peek() == Some(&'`') {
                            chars.next();
                            id.push('`');
                        } else {
                            break;
                        }
                    } else {
                        id.push(c);
                    }
                }
                tokens.push((true, id));
            }
            '.' | ',' => tokens.push((false, c.to_string())),
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '$' {
                        word.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push((false, word));
            }
            _ => tokens.push((false, " ".into())),
        }
    }
    tokens.retain(|(q, t)| *q || t != " ");
    const SKIP: [&str; 13] = [
        "TABLE",
        "TABLES",
        "IF",
        "EXISTS",
        "NOT",
        "TEMPORARY",
        "OR",
        "REPLACE",
        "ONLINE",
        "IGNORE",
        "NOWAIT",
        "WAIT",
        "NO_WRITE_TO_BINLOG",
    ];
    let word = |i: usize| {
        tokens
            .get(i)
            .filter(|(q, _)| !*q)
            .map(|(_, t)| t.to_ascii_uppercase())
    };
    let mut i = 1;
    while word(i)
        .is_some_and(|w| SKIP.contains(&w.as_str()) || w.bytes().all(|b| b.is_ascii_digit()))
    {
        i += 1;
    }
    let mut out = Vec::new();
    while let Some((_, first)) = tokens.get(i).cloned() {
        if first == "," || first == "." {
            break;
        }
        let (db, name) = if tokens.get(i + 1).is_some_and(|(q, t)| !*q && t == ".") {
            match tokens.get(i + 2) {
                Some((_, n)) => {
                    i += 3;
                    (Some(first), n.clone())
                }
                None => break,
            }
        } else {
            i += 1;
            (None, first)
        };
        out.push((db, name));
        // `RENAME TABLE a TO b, c TO d` and `DROP TABLE a, b` list several.
        match word(i).as_deref() {
            Some(",") | Some("TO") => i += 1,
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_spans_count_the_rest_of_the_first_file_whole_files_and_the_last_up_to_its_end() {
        let p = |f: &str, o: u64| BinlogPos::new(f, o).unwrap();
        let files = [
            (p("b.000001", 0), 100),
            (p("b.000002", 0), 200),
            (p("b.000003", 0), 50),
        ];
        assert_eq!(
            log_span(&files, &p("b.000001", 40), Some(&p("b.000003", 20))),
            (3, 280)
        );
        assert_eq!(log_span(&files, &p("b.000001", 40), None), (3, 310));
        assert_eq!(
            log_span(&files, &p("b.000002", 200), Some(&p("b.000002", 200))),
            (1, 0)
        );
        assert_eq!(log_span(&files, &p("b.000003", 50), None), (1, 0));
    }

    #[test]
    fn enum_and_set_labels_read_back_with_their_escapes() {
        assert_eq!(labels("enum('a','b c')").unwrap(), ["a", "b c"]);
        assert_eq!(
            labels("set('it''s','x\\'y',',')").unwrap(),
            ["it's", "x'y", ","]
        );
        assert!(labels("enum(").is_err());
        assert!(labels("enum('a'").is_err());
        assert!(labels("enum('a' 'b')").is_err());
    }

    #[test]
    fn latin1_is_windows_1252_as_mysql_reads_it() {
        assert_eq!(latin1_to_utf8(b"caf\xE9 \x80 \x81"), "café € \u{81}");
    }

    #[test]
    fn statements_name_a_table_only_as_a_whole_identifier() {
        assert!(mentions("TRUNCATE TABLE `orders`", "orders"));
        assert!(mentions("truncate app.orders", "orders"));
        assert!(!mentions("UPDATE orders_archive SET x = 1", "orders"));
        assert!(!mentions("INSERT INTO t2 VALUES (1)", "t"));
        assert!(mentions("alter table t add c int", "t"));
        assert_eq!(first_word("/* x */ -- y\n  begin"), "BEGIN");
        assert_eq!(
            position_text(42, 1234, 7),
            format!("{:010}-{:020}-{:010}", 42, 1234, 7).into_bytes()
        );
        assert_eq!(position_text(u64::from(u32::MAX), u64::MAX, 1).len(), 42);
        let t = |db: Option<&str>, n: &str| (db.map(str::to_owned), n.to_owned());
        assert_eq!(
            ddl_targets("TRUNCATE TABLE `a``b`.`t`"),
            [t(Some("a`b"), "t")]
        );
        assert_eq!(ddl_targets("truncate t"), [t(None, "t")]);
        assert_eq!(
            ddl_targets("ALTER ONLINE TABLE db.t ADD c INT"),
            [t(Some("db"), "t")]
        );
        assert_eq!(
            ddl_targets("DROP TABLE IF EXISTS `x`, db.t /* generated by server */"),
            [t(None, "x"), t(Some("db"), "t")]
        );
        assert_eq!(
            ddl_targets("RENAME TABLE a TO b, c TO d"),
            [t(None, "a"), t(None, "b"), t(None, "c"), t(None, "d")]
        );
        assert_eq!(ddl_targets("CREATE TABLE x LIKE t"), [t(None, "x")]);
        assert_eq!(
            ddl_targets("CREATE OR REPLACE TABLE `at_end` (`id` int)"),
            [t(None, "at_end")]
        );
        assert_eq!(first_word("# c\nTRUNCATE t"), "TRUNCATE");
    }

    #[test]
    fn unsigned_and_storage_forms_become_protocol_values() {
        let plan = |data_type: &str, column_type: &str, logical: LogicalType| ColumnPlan {
            ordinal: 0,
            column: BinlogColumn {
                name: "c".into(),
                data_type: data_type.into(),
                column_type: column_type.into(),
                charset: None,
            },
            labels: if data_type == "enum" || data_type == "set" {
                labels(column_type).unwrap()
            } else {
                Vec::new()
            },
            logical,
        };
        let v = |x: Value| BinlogValue::Value(x);
        let p = plan("int", "int(10) unsigned", LogicalType::UInt32);
        assert_eq!(
            normalize(v(Value::Int(-1)), &p, ColumnType::MYSQL_TYPE_LONG).unwrap(),
            Value::Int(4_294_967_295)
        );
        let p = plan("mediumint", "mediumint unsigned", LogicalType::UInt32);
        assert_eq!(
            normalize(v(Value::Int(-1)), &p, ColumnType::MYSQL_TYPE_INT24).unwrap(),
            Value::Int(16_777_215)
        );
        let p = plan("bigint", "bigint unsigned", LogicalType::UInt64);
        assert_eq!(
            normalize(v(Value::Int(-1)), &p, ColumnType::MYSQL_TYPE_LONGLONG).unwrap(),
            Value::UInt(u64::MAX)
        );
        let p = plan("int", "int", LogicalType::Int32);
        assert_eq!(
            normalize(v(Value::Int(-1)), &p, ColumnType::MYSQL_TYPE_LONG).unwrap(),
            Value::Int(-1)
        );
        let p = plan("mediumint", "mediumint", LogicalType::Int32);
        assert_eq!(
            normalize(v(Value::Int(8_388_608)), &p, ColumnType::MYSQL_TYPE_INT24).unwrap(),
            Value::Int(-8_388_608)
        );
        assert_eq!(
            normalize(v(Value::Int(-5)), &p, ColumnType::MYSQL_TYPE_INT24).unwrap(),
            Value::Int(-5)
        );
        let p = plan("enum", "enum('x','y')", LogicalType::Utf8);
        assert_eq!(
            normalize(v(Value::Int(2)), &p, ColumnType::MYSQL_TYPE_ENUM).unwrap(),
            Value::Bytes(b"y".to_vec())
        );
        assert!(normalize(v(Value::Int(3)), &p, ColumnType::MYSQL_TYPE_ENUM).is_err());
        let p = plan("set", "set('a','b','c')", LogicalType::Utf8);
        assert_eq!(
            normalize(v(Value::Bytes(vec![0b101])), &p, ColumnType::MYSQL_TYPE_SET).unwrap(),
            Value::Bytes(b"a,c".to_vec())
        );
        let p = plan("timestamp", "timestamp(6)", LogicalType::TimestampUtc);
        assert_eq!(
            normalize(
                v(Value::Bytes(b"86401.5".to_vec())),
                &p,
                ColumnType::MYSQL_TYPE_TIMESTAMP2
            )
            .unwrap(),
            Value::Date(1970, 1, 2, 0, 0, 1, 500_000)
        );
        let p = plan("binary", "binary(4)", LogicalType::Binary);
        assert_eq!(
            normalize(v(Value::Bytes(vec![1])), &p, ColumnType::MYSQL_TYPE_STRING).unwrap(),
            Value::Bytes(vec![1, 0, 0, 0])
        );
        let p = plan("year", "year", LogicalType::Int16);
        assert_eq!(
            normalize(
                v(Value::Bytes(b"1900".to_vec())),
                &p,
                ColumnType::MYSQL_TYPE_YEAR
            )
            .unwrap(),
            Value::Int(0)
        );
        assert_eq!(
            normalize(
                v(Value::Bytes(b"2024".to_vec())),
                &p,
                ColumnType::MYSQL_TYPE_YEAR
            )
            .unwrap(),
            Value::Int(2024)
        );
    }

    #[test]
    fn types_without_a_row_image_decoding_are_named() {
        let c = |data_type: &str, charset: Option<&str>| BinlogColumn {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            charset: charset.map(str::to_owned),
        };
        assert!(column_problem(&c("uuid", None))
            .unwrap()
            .contains("not decoded"));
        assert!(column_problem(&c("varchar", Some("sjis")))
            .unwrap()
            .contains("sjis"));
        assert!(column_problem(&c("varchar", Some("latin1"))).is_none());
        assert!(column_problem(&c("int", None)).is_none());
        let mut t2 = c("time", None);
        t2.column_type = "time(2)".into();
        assert!(column_problem(&t2).unwrap().contains("time(3)"));
        t2.column_type = "time(3)".into();
        assert!(column_problem(&t2).is_none());
    }
}
