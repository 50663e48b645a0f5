//! Golden plans, compiled offline: a config and an in-memory catalog go through the same
//! `compile` the live path uses, and the sealed JSON, `plan show` and `plan diff` are
//! snapshot-tested. A change to planning rules or to the plan format shows up here as a
//! reviewable snapshot diff, with no database needed.

use std::collections::HashMap;

use rivet_planner::{compile, diff_plans, render_plan, PlanInputs};
use rivet_schema::plan::{CommittedCursor, CursorType};
use rivet_schema::LogicalType;
use rivet_sources::memory::MemoryCatalog;
use rivet_sources::{SourceColumn, TableInfo};

fn col(
    name: &str,
    declared: &str,
    wire: &str,
    logical: LogicalType,
    nullable: bool,
) -> SourceColumn {
    SourceColumn {
        name: name.into(),
        declared_type: declared.into(),
        wire_type: wire.into(),
        logical: Ok(logical),
        mapping: rivet_sources::ColumnMapping::Native,
        select_expr: None,
        nullable,
        n_distinct: Some(-1.0),
    }
}

fn catalog() -> MemoryCatalog {
    let orders = TableInfo {
        schema: "public".into(),
        name: "orders".into(),
        columns: vec![
            col("id", "bigint", "int8", LogicalType::Int64, false),
            col(
                "amount",
                "numeric(12,2)",
                "numeric",
                LogicalType::Decimal {
                    precision: 12,
                    scale: 2,
                },
                true,
            ),
            col(
                "updated_at",
                "timestamp with time zone",
                "timestamptz",
                LogicalType::TimestampUtc,
                true,
            ),
            col(
                "tags",
                "text[]",
                "text[]",
                LogicalType::List {
                    element: Box::new(LogicalType::Utf8),
                },
                true,
            ),
        ],
        primary_key: vec!["id".into()],
        row_estimate: 1_000_000,
        avg_row_bytes: Some(120),
    };
    let hostile = TableInfo {
        schema: "Sales Data".into(),
        name: "Order \"Items\"".into(),
        columns: vec![
            col("Order ID", "integer", "int4", LogicalType::Int32, false),
            col("note, with comma", "text", "text", LogicalType::Utf8, true),
        ],
        primary_key: vec!["Order ID".into()],
        row_estimate: 0,
        avg_row_bytes: None,
    };
    MemoryCatalog {
        tables: vec![orders, hostile],
        default_schema: "public".into(),
        bounds: HashMap::from([
            (
                ("public.orders".into(), "id".into()),
                (Some(1), Some(1_000_000)),
            ),
            (
                ("Sales Data.Order \"Items\"".into(), "Order ID".into()),
                (Some(-5), Some(40)),
            ),
        ]),
        max_values: HashMap::from([(("public.orders".into(), "id".into()), "1000000".into())]),
        chunk_target_divisor: 1,
        identity: rivet_schema::plan::SourceIdentity {
            facts: [
                ("database", "shop"),
                ("database_oid", "16384"),
                ("system_identifier", "7000000000000000001"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        },
        ..Default::default()
    }
}

const CONFIG: &str = r#"
source:
  type: postgres
  url_env: DATABASE_URL
exports:
  - name: orders
    table: public.orders
    mode: chunked
    destination: { type: local, path: out/orders }
  - name: items
    table: '"Sales Data"."Order ""Items"""'
    mode: chunked
    chunk_size: 10
    format: csv
    compression: gzip
    wave: 2
    destination: { type: s3, bucket: exports, prefix: items/, region: eu-west-1 }
  - name: orders_delta
    table: orders
    mode: incremental
    cursor_column: id
    destination: { type: local, path: out/delta }
"#;

fn plan(config: &str, cursors: HashMap<String, CommittedCursor>) -> rivet_schema::Plan {
    let config =
        rivet_schema::load::parse_config("rivet.yaml", config).expect("the config is valid");
    compile(
        &config,
        &mut catalog(),
        &PlanInputs {
            as_of: 1_764_633_600, // 2025-12-02T00:00:00Z
            cursors,
        },
    )
    .expect("the plan compiles")
}

#[test]
fn golden_plan_json_and_plan_show_are_stable() {
    let p = plan(CONFIG, HashMap::new());
    insta::assert_snapshot!("plan_json", rivet_schema::seal::to_pretty_json(&p));
    insta::assert_snapshot!("plan_show", render_plan(&p));
}

#[test]
fn the_same_config_and_catalog_seal_the_same_digest() {
    assert_eq!(
        plan(CONFIG, HashMap::new()).seal.digest,
        plan(CONFIG, HashMap::new()).seal.digest
    );
}

#[test]
fn a_committed_cursor_starts_the_next_window_and_diff_reports_it() {
    let first = plan(CONFIG, HashMap::new());
    let cursors = HashMap::from([(
        "orders_delta".to_owned(),
        CommittedCursor {
            column: "id".into(),
            value_type: CursorType::Integer,
            position: "500001".into(),
            seq: 1,
        },
    )]);
    let second = plan(CONFIG, cursors);
    insta::assert_snapshot!(
        "plan_diff_next_window",
        diff_plans(&first, &second).render()
    );
}

#[test]
fn mysql_and_sql_server_catalogs_get_smaller_default_chunks() {
    let config = rivet_schema::load::parse_config("rivet.yaml", CONFIG).unwrap();
    let inputs = PlanInputs {
        as_of: 0,
        cursors: HashMap::new(),
    };
    let pg = compile(&config, &mut catalog(), &inputs).unwrap();
    let mut quarter = catalog();
    quarter.chunk_target_divisor = 4;
    let my = compile(&config, &mut quarter, &inputs).unwrap();
    let chunks = |p: &rivet_schema::Plan| p.body.export("orders").unwrap().chunks.len();
    assert!(
        chunks(&my) >= 4 * chunks(&pg) - 3,
        "{} vs {}",
        chunks(&my),
        chunks(&pg)
    );
}
