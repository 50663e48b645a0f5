"""Opens Rivet's output with the reader tools data engineers use (pyarrow, DuckDB,
polars) and checks that each sees the types and values Rivet promises.

Usage: check_outputs.py PARQUET_DIR CSV_FILE EXPECTED_ROWS
Exits non-zero with a message on the first mismatch.
"""
import glob
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

parquet_dir, csv_file, expected_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sorted(glob.glob(f"{parquet_dir}/part-*.parquet"))
assert files, f"no parquet files in {parquet_dir}"

# pyarrow: canonical extension types and exact decimals.
table = pa.concat_tables(pq.read_table(f) for f in files)
assert table.num_rows == expected_rows, (table.num_rows, expected_rows)
schema = table.schema
assert str(schema.field("c_uuid").type) == "extension<arrow.uuid>", schema.field("c_uuid").type
assert str(schema.field("c_jsonb").type) == "extension<arrow.json>", schema.field("c_jsonb").type
assert schema.field("c_numeric_12_2").type == pa.decimal128(12, 2)
assert schema.field("c_numeric_50_10").type == pa.decimal256(50, 10)
assert schema.field("c_timestamptz").type == pa.timestamp("us", tz="UTC")
assert schema.field("c_int_array").type == pa.list_(pa.int32())

# DuckDB: logical types without hints.
con = duckdb.connect()
types = dict(
    (name, typ)
    for name, typ, *_ in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{parquet_dir}/part-*.parquet')").fetchall()
)
for column, expected in {
    "c_uuid": "UUID",
    "c_jsonb": "JSON",
    "c_json": "JSON",
    "c_timestamptz": "TIMESTAMP WITH TIME ZONE",
    "c_numeric_12_2": "DECIMAL(12,2)",
    "c_int_array": "INTEGER[]",
    "c_date": "DATE",
}.items():
    assert types[column] == expected, (column, types[column], expected)
count = con.execute(f"SELECT count(*) FROM read_parquet('{parquet_dir}/part-*.parquet')").fetchone()[0]
assert count == expected_rows, count

# polars: every column except decimals above 38 digits (polars' own limit).
wide_decimals = [f.name for f in schema if pa.types.is_decimal256(f.type)]
readable = [f.name for f in schema if f.name not in wide_decimals]
df = pl.read_parquet(files, columns=readable)
assert df.height == expected_rows, df.height
assert df.schema["c_timestamptz"] == pl.Datetime("us", "UTC"), df.schema["c_timestamptz"]

# CSV: NULL is an empty unquoted field, the empty string is "", and text with quotes,
# commas and newlines comes back exactly as the Parquet file holds it.
csv = pacsv.read_csv(
    csv_file,
    convert_options=pacsv.ConvertOptions(
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        column_types={"c_text": pa.string(), "c_varchar": pa.string(), "c_char": pa.string()},
    ),
)
assert csv.num_rows == expected_rows, csv.num_rows
by_id = lambda t, col: dict(zip(t.column("id").to_pylist(), t.column(col).to_pylist()))
for col in ["c_text", "c_varchar", "c_char"]:
    assert by_id(csv, col) == by_id(table, col), (col, by_id(csv, col), by_id(table, col))
duck_csv = con.execute(f"SELECT count(*) FROM read_csv('{csv_file}', header=true)").fetchone()[0]
assert duck_csv == expected_rows, duck_csv
print("pyarrow, DuckDB and polars read the output as expected")
