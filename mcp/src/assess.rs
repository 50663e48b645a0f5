//! `safe_to_apply`: weighs what a sealed plan will ask of the source (connections at
//! once, chunks, rows) against what the source is doing now (a [`HealthReport`]) and
//! answers `safe`, `caution` or `unsafe`, every answer with its reasons. The rules are
//! deliberately few and written out in docs/mcp.md, so an operator can check them.

use rivet_schema::Plan;
use rivet_sources::health::HealthReport;
use serde::Serialize;

/// A statement older than this (seconds) makes a long read riskier: it holds a snapshot
/// or locks that the extract's own reads will queue behind or add to.
pub const LONG_QUERY_SECONDS: f64 = 300.0;
/// An idle transaction older than this (seconds) already holds back vacuum / purge.
pub const LONG_IDLE_TRANSACTION_SECONDS: f64 = 60.0;
/// Share of the connection limit above which the apply's connections are too many.
pub const CONNECTION_HEADROOM: f64 = 0.9;
/// Share of forced (requested) checkpoints above which the server is under write
/// pressure.
pub const CHECKPOINT_PRESSURE: f64 = 0.5;

/// What the plan will ask of the source.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlannedLoad {
    pub exports: usize,
    pub chunks: usize,
    pub estimated_rows: u64,
    /// Chunk-reading connections at the busiest moment, plus the catalog connection of
    /// the staleness check.
    pub peak_connections: u64,
}

/// The answer, with the numbers it was made from.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// `safe`, `caution` or `unsafe`.
    pub verdict: &'static str,
    pub reasons: Vec<String>,
    pub planned_load: PlannedLoad,
    pub source_pressure: rivet_sources::health::Pressure,
}

/// The plan's load: per wave, the exports' chunk readers (each export uses at most
/// `parallelism` connections and no more than it has chunks), summed when the wave's
/// exports run together, capped by `max_source_connections`.
pub fn planned_load(plan: &Plan) -> PlannedLoad {
    let body = &plan.body;
    let readers = |name: &str| -> u64 {
        body.export(name)
            .map(|e| u64::from(e.tuning.parallelism.max(1)).min(e.chunks.len() as u64))
            .unwrap_or(0)
    };
    let peak = body
        .waves
        .iter()
        .map(|w| {
            let each = w.exports.iter().map(|n| readers(n));
            if body.concurrency.concurrent_exports {
                each.sum::<u64>()
            } else {
                each.max().unwrap_or(0)
            }
        })
        .max()
        .unwrap_or(0)
        .min(u64::from(body.concurrency.max_source_connections.max(1)));
    PlannedLoad {
        exports: body.exports.len(),
        chunks: body.exports.iter().map(|e| e.chunks.len()).sum(),
        estimated_rows: body.exports.iter().map(|e| e.row_estimate).sum(),
        peak_connections: peak + 1,
    }
}

/// Weighs the plan's load against the source's health now.
pub fn assess(plan: &Plan, health: &HealthReport) -> Assessment {
    judge(planned_load(plan), health)
}

/// The rules, on the load and the health.
pub fn judge(load: PlannedLoad, health: &HealthReport) -> Assessment {
    let p = &health.pressure;
    let mut unsafe_reasons = Vec::new();
    let mut cautions = Vec::new();
    if let Some(max) = p.max_connections.filter(|m| *m > 0) {
        let after = p.connections + load.peak_connections;
        if after as f64 > max as f64 * CONNECTION_HEADROOM {
            unsafe_reasons.push(format!(
                "connections: {} open now plus up to {} for this plan would reach {after} of the server's {max} (over {:.0}%); lower max_source_connections or parallelism, or wait",
                p.connections, load.peak_connections, CONNECTION_HEADROOM * 100.0
            ));
        }
    }
    if p.lock_waits > 0 {
        cautions.push(format!(
            "{} session(s) are waiting on locks now; the extract's reads take share locks that queue behind (and hold up) schema changes and exclusive lockers",
            p.lock_waits
        ));
    }
    if p.longest_query_seconds > LONG_QUERY_SECONDS {
        cautions.push(format!(
            "a statement has been running for {:.0} s (over {LONG_QUERY_SECONDS:.0} s); the source is busy with long work",
            p.longest_query_seconds
        ));
    }
    if p.idle_in_transaction > 0
        && p.longest_idle_transaction_seconds > LONG_IDLE_TRANSACTION_SECONDS
    {
        cautions.push(format!(
            "{} session(s) sit idle inside a transaction, the oldest for {:.0} s; they hold back vacuum/purge, and long extract reads would add to that",
            p.idle_in_transaction, p.longest_idle_transaction_seconds
        ));
    }
    if p.replication_slots_at_risk > 0 {
        cautions.push(format!(
            "{} replication slot(s) have wal_status `unreserved` or `lost`: the server is already short of WAL space for its consumers",
            p.replication_slots_at_risk
        ));
    }
    for s in health.sections.iter().filter(|s| s.name == "checkpoints") {
        for row in &s.rows {
            let share = row.get("requested_share").and_then(|v| v.as_f64());
            if let Some(share) = share.filter(|s| *s > CHECKPOINT_PRESSURE) {
                cautions.push(format!(
                    "{:.0}% of checkpoints were forced by WAL volume (over {:.0}%): the server is under write pressure",
                    share * 100.0,
                    CHECKPOINT_PRESSURE * 100.0
                ));
            }
        }
    }
    for s in health.sections.iter().filter(|s| s.name == "pooler") {
        let n =
            |row: &rivet_sources::health::HealthRow, k: &str| row.get(k).and_then(|v| v.as_i64());
        if s.rows.iter().any(|r| n(r, "cl_waiting").is_none()) {
            cautions.push(
                "pgBouncer's SHOW POOLS has no cl_waiting figure here, so clients waiting for a server session are not known".into(),
            );
        }
        let waiting: i64 = s.rows.iter().filter_map(|r| n(r, "cl_waiting")).sum();
        let maxwait = s
            .rows
            .iter()
            .filter_map(|r| n(r, "maxwait"))
            .max()
            .unwrap_or(0);
        if waiting > 0 {
            cautions.push(format!(
                "{waiting} client(s) wait for a server session in pgBouncer (the longest for {maxwait} s): its pools are saturated, and this plan's connections would queue behind them"
            ));
        }
    }
    let unread: Vec<&str> = health
        .sections
        .iter()
        .filter(|s| {
            !s.available
                && matches!(
                    s.name.as_str(),
                    "active_queries" | "lock_waits" | "idle_in_transaction" | "connections"
                )
        })
        .map(|s| s.name.as_str())
        .collect();
    if !unread.is_empty() {
        cautions.push(format!(
            "could not read {} (see source_health for why): this answer does not cover them",
            unread.join(", ")
        ));
    }
    let verdict = if !unsafe_reasons.is_empty() {
        "unsafe"
    } else if !cautions.is_empty() {
        "caution"
    } else {
        "safe"
    };
    let mut reasons = unsafe_reasons;
    reasons.extend(cautions);
    if reasons.is_empty() {
        reasons.push(format!(
            "no lock waits, no long statements or idle transactions, and {} connection(s) for this plan fit the server's limit",
            load.peak_connections
        ));
    }
    Assessment {
        verdict,
        reasons,
        planned_load: load,
        source_pressure: p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivet_sources::health::{HealthSection, Pressure};

    fn health(p: Pressure, sections: Vec<HealthSection>) -> HealthReport {
        HealthReport {
            engine: "postgres".into(),
            server_version: "17".into(),
            read_only_session: true,
            pressure: p,
            sections,
        }
    }

    fn load(peak: u64) -> PlannedLoad {
        PlannedLoad {
            exports: 1,
            chunks: 4,
            estimated_rows: 1000,
            peak_connections: peak,
        }
    }

    #[test]
    fn a_quiet_source_is_safe_and_says_why() {
        let p = Pressure {
            connections: 3,
            max_connections: Some(100),
            ..Pressure::default()
        };
        let a = judge(load(5), &health(p, vec![]));
        assert_eq!(a.verdict, "safe");
        assert!(a.reasons[0].contains("no lock waits"), "{:?}", a.reasons);
    }

    #[test]
    fn running_out_of_connections_is_unsafe_and_locks_are_a_caution() {
        let p = Pressure {
            connections: 85,
            max_connections: Some(100),
            lock_waits: 2,
            ..Pressure::default()
        };
        let a = judge(load(9), &health(p, vec![]));
        assert_eq!(a.verdict, "unsafe");
        assert!(
            a.reasons[0].contains("would reach 94 of the server's 100"),
            "{:?}",
            a.reasons
        );
        assert!(
            a.reasons[1].contains("2 session(s) are waiting on locks"),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn clients_waiting_in_pgbouncer_are_a_caution() {
        let pool = |waiting: i64, maxwait: i64| {
            let mut row = serde_json::Map::new();
            row.insert("cl_waiting".into(), waiting.into());
            row.insert("maxwait".into(), maxwait.into());
            row
        };
        let quiet = vec![HealthSection::rows("pooler", vec![pool(0, 0)])];
        assert_eq!(
            judge(load(2), &health(Pressure::default(), quiet)).verdict,
            "safe"
        );
        let unknown = vec![HealthSection::rows("pooler", vec![serde_json::Map::new()])];
        let a = judge(load(2), &health(Pressure::default(), unknown));
        assert_eq!(a.verdict, "caution");
        assert!(
            a.reasons[0].contains("no cl_waiting figure"),
            "{:?}",
            a.reasons
        );
        let busy = vec![HealthSection::rows("pooler", vec![pool(3, 7), pool(2, 1)])];
        let a = judge(load(2), &health(Pressure::default(), busy));
        assert_eq!(a.verdict, "caution");
        assert!(
            a.reasons[0].contains(
                "5 client(s) wait for a server session in pgBouncer (the longest for 7 s)"
            ),
            "{:?}",
            a.reasons
        );
    }

    #[test]
    fn long_idle_transactions_checkpoint_pressure_and_unread_sections_are_cautions() {
        let p = Pressure {
            idle_in_transaction: 1,
            longest_idle_transaction_seconds: 900.0,
            ..Pressure::default()
        };
        let mut row = serde_json::Map::new();
        row.insert("requested_share".into(), 0.8.into());
        let sections = vec![
            HealthSection::rows("checkpoints", vec![row]),
            HealthSection::missing("lock_waits", "permission denied".into()),
        ];
        let a = judge(load(2), &health(p, sections));
        assert_eq!(a.verdict, "caution");
        let all = a.reasons.join("\n");
        assert!(
            all.contains("idle inside a transaction, the oldest for 900 s"),
            "{all}"
        );
        assert!(all.contains("80% of checkpoints were forced"), "{all}");
        assert!(all.contains("could not read lock_waits"), "{all}");
    }
}
