"""Reads one Parquet file of the every-type fixture with pyarrow, DuckDB and polars and
checks that each reader sees every column, with the same values as pyarrow (which the
Rust test has compared with the database). Values a reader cannot turn into Python
objects (clamped infinite dates and timestamps) are compared as their integer storage.

Usage: check_types.py FILE.parquet
"""
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

path = sys.argv[1]
base = pq.read_table(path)
names = base.column_names


def plain(t):
    """The type with temporal types (also nested) replaced by their integer storage."""
    if isinstance(t, pa.ExtensionType):
        return plain(t.storage_type)
    if pa.types.is_date32(t):
        return pa.int32()
    if pa.types.is_timestamp(t) or pa.types.is_time64(t):
        return pa.int64()
    if pa.types.is_list(t):
        return pa.list_(plain(t.value_type))
    if pa.types.is_large_list(t):  # polars' lists
        return pa.large_list(plain(t.value_type))
    return t


def storage(col):
    if isinstance(col.type, pa.ExtensionType):
        col = col.storage
    return col.cast(plain(col.type))


def values(col):
    col = storage(col)
    try:
        return col.to_pylist()
    except Exception:  # nested temporal values
        return [str(v) for v in col]


def canonical(v):
    """Reader-neutral form: UUIDs and bytes as hex, decimals and floats as text."""
    import decimal
    import uuid
    if v is None:
        return None
    if isinstance(v, uuid.UUID):
        return v.hex
    if isinstance(v, str) and len(v) == 36 and v.count("-") == 4:
        return v.replace("-", "")  # DuckDB hands UUIDs over as dashed text
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, decimal.Decimal):
        return format(v.normalize(), "f") if v == v else "NaN"
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canonical(x) for x in v]
    return v


expected = {n: [canonical(v) for v in values(base.column(n).combine_chunks())] for n in names}
failures = []


def time_units(t):
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return time_units(t.value_type)
    return t.unit if pa.types.is_time64(t) else None


def scaled(v, div):
    if isinstance(v, list):
        return [scaled(x, div) for x in v]
    return None if v is None else v // div


def no_midnight_end(v):
    """polars' Time cannot hold 24:00:00 and reads it as NULL (documented)."""
    if isinstance(v, list):
        return [no_midnight_end(x) for x in v]
    return None if v == 86_400_000_000 else v


def compare(reader, table, skip=()):
    if table.column_names != names:
        failures.append(f"{reader}: columns {table.column_names} != {names}")
        return
    for n in names:
        if n in skip:
            continue
        col = table.column(n).combine_chunks()
        got = [canonical(v) for v in values(col)]
        want = expected[n]
        if time_units(col.type) == "ns":
            got = scaled(got, 1000)
            want = no_midnight_end(want)
        if got != want:
            failures.append(f"{reader}: column {n}: {got!r} != pyarrow {want!r}")
        continue
        if got != expected[n]:
            failures.append(f"{reader}: column {n}: {got!r} != pyarrow {expected[n]!r}")


# DuckDB reads decimals above 38 digits as DOUBLE (documented), so that column is
# compared by presence only; its infinities are DuckDB's own (the clamp encoding).
duck = duckdb.sql(f"SELECT * FROM read_parquet('{path}')").arrow()
if hasattr(duck, "read_all"):
    duck = duck.read_all()
compare("duckdb", duck, skip={"c_numeric_wide"})
assert duckdb.sql(
    f"SELECT count(*) FROM read_parquet('{path}') WHERE c_date = 'infinity'::date "
    "AND c_timestamp = '-infinity'::timestamp"
).fetchall()[0][0] == 1, "DuckDB does not see the clamped values as its infinities"
iv = duckdb.sql(f"SELECT c_interval.months, c_interval.days, c_interval.microseconds FROM read_parquet('{path}') WHERE id = 1").fetchall()[0]
assert iv == (14, 3, 14706789000), iv

# polars cannot read decimals above 38 digits (documented): leave that column out.
cols = [n for n in names if n != "c_numeric_wide"]
pol = pl.read_parquet(path, columns=cols).to_arrow()
wide = pa.table({n: base.column(n) for n in names if n != "c_numeric_wide"})
saved = names
names = cols
expected_all = expected
expected = {n: expected_all[n] for n in cols}
compare("polars", pol)
names = saved

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"{len(names)} columns read alike by pyarrow, DuckDB and polars")
