//! A parser for the messages of PostgreSQL's `pgoutput` logical decoding plugin,
//! protocol version 1 (the messages `pg_logical_slot_peek_binary_changes` returns, one
//! per row). It exists so the change reader can turn log records into rows without a
//! dependency on a replication client: each message is a tag byte followed by
//! big-endian fields, documented in PostgreSQL's "Logical Replication Message Formats".
//! Values are borrowed from the message; nothing is copied until a builder takes it.

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

type PResult<T> = Result<T, ParseError>;

/// One column of a relation as the publisher describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelColumn {
    /// Part of the replica identity (the key sent with updates and deletes).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub typmod: i32,
}

/// One value of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    /// An unchanged TOASTed value the publisher did not send (`u`).
    Unchanged,
    /// The type's output text (`t`).
    Text(&'a [u8]),
    /// The type's binary send format (`b`, with the `binary` option).
    Binary(&'a [u8]),
}

/// A decoded `pgoutput` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A transaction starts; `final_lsn` is the position of its commit record.
    Begin {
        final_lsn: u64,
        /// Microseconds since 2000-01-01 UTC.
        commit_ts: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
        commit_ts: i64,
    },
    Origin,
    Relation {
        id: u32,
        namespace: String,
        name: String,
        /// `d` default, `n` nothing, `f` full, `i` index.
        replica_identity: u8,
        columns: Vec<RelColumn>,
    },
    Type,
    Insert {
        relation: u32,
        new: Vec<Value<'a>>,
    },
    Update {
        relation: u32,
        /// The old tuple: key columns only (`K`) or the whole row (`O`, replica
        /// identity full), when the publisher sends one.
        old: Option<Vec<Value<'a>>>,
        new: Vec<Value<'a>>,
    },
    Delete {
        relation: u32,
        old: Vec<Value<'a>>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// A logical decoding message (`M`); only sent when asked for.
    Message,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> PResult<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(ParseError(format!(
                "message ends inside {what} (needs {n} byte(s) at offset {}, has {})",
                self.at,
                self.buf.len()
            )));
        };
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> PResult<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> PResult<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> PResult<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> PResult<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    fn cstr(&mut self, what: &str) -> PResult<String> {
        let rest = &self.buf[self.at..];
        let nul = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| ParseError(format!("{what} is not NUL-terminated")))?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| ParseError(format!("{what} is not UTF-8")))?
            .to_owned();
        self.at += nul + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> PResult<Vec<Value<'a>>> {
        let n = self.u16("a tuple's column count")?;
        let mut values = Vec::with_capacity(n as usize);
        for _ in 0..n {
            values.push(match self.u8("a column's kind")? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                kind @ (b't' | b'b') => {
                    let len = self.u32("a value's length")? as usize;
                    let raw = self.take(len, "a value")?;
                    if kind == b't' {
                        Value::Text(raw)
                    } else {
                        Value::Binary(raw)
                    }
                }
                other => {
                    return Err(ParseError(format!(
                        "unknown tuple column kind {:?}",
                        other as char
                    )))
                }
            });
        }
        Ok(values)
    }
    fn done(&self, tag: u8) -> PResult<()> {
        if self.at != self.buf.len() {
            return Err(ParseError(format!(
                "{} trailing byte(s) after a {:?} message",
                self.buf.len() - self.at,
                tag as char
            )));
        }
        Ok(())
    }
}

/// Parses one message.
pub fn parse(buf: &[u8]) -> PResult<Message<'_>> {
    let mut r = Reader { buf, at: 0 };
    let tag = r.u8("the message tag")?;
    let msg = match tag {
        b'B' => Message::Begin {
            final_lsn: r.u64("Begin's final LSN")?,
            commit_ts: r.u64("Begin's timestamp")? as i64,
            xid: r.u32("Begin's xid")?,
        },
        b'C' => {
            r.u8("Commit's flags")?;
            Message::Commit {
                commit_lsn: r.u64("Commit's LSN")?,
                end_lsn: r.u64("Commit's end LSN")?,
                commit_ts: r.u64("Commit's timestamp")? as i64,
            }
        }
        b'O' => {
            r.u64("Origin's LSN")?;
            r.cstr("Origin's name")?;
            Message::Origin
        }
        b'R' => {
            let id = r.u32("Relation's id")?;
            let namespace = r.cstr("Relation's namespace")?;
            let name = r.cstr("Relation's name")?;
            let replica_identity = r.u8("Relation's replica identity")?;
            let n = r.u16("Relation's column count")?;
            let mut columns = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let flags = r.u8("a column's flags")?;
                columns.push(RelColumn {
                    key: flags & 1 == 1,
                    name: r.cstr("a column's name")?,
                    type_oid: r.u32("a column's type")?,
                    typmod: r.u32("a column's type modifier")? as i32,
                });
            }
            Message::Relation {
                id,
                namespace,
                name,
                replica_identity,
                columns,
            }
        }
        b'Y' => {
            r.u32("Type's oid")?;
            r.cstr("Type's namespace")?;
            r.cstr("Type's name")?;
            Message::Type
        }
        b'I' => {
            let relation = r.u32("Insert's relation")?;
            match r.u8("Insert's tuple marker")? {
                b'N' => {}
                other => {
                    return Err(ParseError(format!(
                        "Insert: expected a new tuple (N), got {:?}",
                        other as char
                    )))
                }
            }
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32("Update's relation")?;
            let mut old = None;
            let mut marker = r.u8("Update's tuple marker")?;
            if marker == b'K' || marker == b'O' {
                old = Some(r.tuple()?);
                marker = r.u8("Update's new tuple marker")?;
            }
            if marker != b'N' {
                return Err(ParseError(format!(
                    "Update: expected a new tuple (N), got {:?}",
                    marker as char
                )));
            }
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.u32("Delete's relation")?;
            match r.u8("Delete's tuple marker")? {
                b'K' | b'O' => {}
                other => {
                    return Err(ParseError(format!(
                        "Delete: expected an old tuple (K or O), got {:?}",
                        other as char
                    )))
                }
            }
            Message::Delete {
                relation,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let n = r.u32("Truncate's relation count")?;
            r.u8("Truncate's options")?;
            let mut relations = Vec::with_capacity(n.min(1024) as usize);
            for _ in 0..n {
                relations.push(r.u32("a truncated relation")?);
            }
            Message::Truncate { relations }
        }
        b'M' => {
            r.u8("Message's flags")?;
            r.u64("Message's LSN")?;
            r.cstr("Message's prefix")?;
            let len = r.u32("Message's length")? as usize;
            r.take(len, "Message's content")?;
            Message::Message
        }
        other => {
            return Err(ParseError(format!(
            "unknown pgoutput message tag {:?} (0x{other:02x}); only protocol version 1 is read",
            other as char
        )))
        }
    };
    r.done(tag)?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Messages captured from PostgreSQL 15 (`binary` on) for
    /// `CREATE TABLE public.cdc_probe(id int primary key, t text)`, an insert and an
    /// update under replica identity full.
    #[test]
    fn messages_captured_from_a_live_server_parse() {
        assert_eq!(
            parse(&hex("42000000001182d2080003049f7b700ccd000003aa")).unwrap(),
            Message::Begin {
                final_lsn: 0x1182D208,
                commit_ts: 0x0003049f7b700ccd,
                xid: 938
            }
        );
        let raw = hex(
            "52000047d07075626c6963006364635f70726f6265006600020169640000000017ffffffff01740000000019ffffffff",
        );
        let rel = parse(&raw).unwrap();
        let Message::Relation {
            id,
            namespace,
            name,
            replica_identity,
            columns,
        } = rel
        else {
            panic!("{rel:?}")
        };
        assert_eq!(
            (id, namespace.as_str(), name.as_str()),
            (18384, "public", "cdc_probe")
        );
        assert_eq!(replica_identity, b'f');
        assert_eq!(columns.len(), 2);
        assert_eq!(
            (
                columns[0].name.as_str(),
                columns[0].type_oid,
                columns[0].typmod
            ),
            ("id", 23, -1)
        );
        assert!(columns[1].key); // every column is part of a full replica identity
        let ins = hex("49000047d04e0002620000000400000001620000000161");
        assert_eq!(
            parse(&ins).unwrap(),
            Message::Insert {
                relation: 18384,
                new: vec![Value::Binary(&[0, 0, 0, 1]), Value::Binary(b"a")]
            }
        );
        let upd = hex(
            "55000047d04f00026200000004000000016200000001614e0002620000000400000001620000000162",
        );
        assert_eq!(
            parse(&upd).unwrap(),
            Message::Update {
                relation: 18384,
                old: Some(vec![Value::Binary(&[0, 0, 0, 1]), Value::Binary(b"a")]),
                new: vec![Value::Binary(&[0, 0, 0, 1]), Value::Binary(b"b")]
            }
        );
        assert_eq!(
            parse(&hex("4300000000001182d208000000001182d2380003049f7b700ccd")).unwrap(),
            Message::Commit {
                commit_lsn: 0x1182D208,
                end_lsn: 0x1182D238,
                commit_ts: 0x0003049f7b700ccd
            }
        );
    }

    #[test]
    fn unchanged_toast_nulls_deletes_and_truncates_parse() {
        // Update without old tuple: id=1 (text form), 'u' for an unchanged TOASTed value, NULL.
        let mut m = vec![
            b'U', 0, 0, 0, 7, b'N', 0, 3, b't', 0, 0, 0, 1, b'1', b'u', b'n',
        ];
        assert_eq!(
            parse(&m).unwrap(),
            Message::Update {
                relation: 7,
                old: None,
                new: vec![Value::Text(b"1"), Value::Unchanged, Value::Null]
            }
        );
        m.push(0);
        assert!(parse(&m).unwrap_err().0.contains("trailing"));
        let del = [b'D', 0, 0, 0, 7, b'K', 0, 1, b'b', 0, 0, 0, 1, 9];
        assert_eq!(
            parse(&del).unwrap(),
            Message::Delete {
                relation: 7,
                old: vec![Value::Binary(&[9])]
            }
        );
        let tr = [b'T', 0, 0, 0, 2, 0, 0, 0, 0, 7, 0, 0, 0, 8];
        assert_eq!(
            parse(&tr).unwrap(),
            Message::Truncate {
                relations: vec![7, 8]
            }
        );
    }

    #[test]
    fn truncated_and_unknown_messages_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(b"Z")
            .unwrap_err()
            .0
            .contains("unknown pgoutput message"));
        assert!(parse(&[b'I', 0, 0, 0, 7, b'N', 0, 1, b'b', 0, 0, 0, 5, 1])
            .unwrap_err()
            .0
            .contains("ends inside a value"));
        assert!(parse(&[b'I', 0, 0, 0, 7, b'N', 0, 1, b'x']).is_err());
    }

    fn encode_tuple(values: &[Option<Vec<u8>>]) -> Vec<u8> {
        let mut out = (values.len() as u16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => out.push(b'n'),
                Some(raw) => {
                    out.push(b'b');
                    out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
                    out.extend_from_slice(raw);
                }
            }
        }
        out
    }

    proptest! {
        /// Any insert encoded the way the publisher does parses back to its values,
        /// and every strict prefix of it is an error, never a shorter row.
        #[test]
        fn inserts_round_trip_and_prefixes_fail(
            relation in any::<u32>(),
            values in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)), 0..12),
        ) {
            let mut msg = vec![b'I'];
            msg.extend_from_slice(&relation.to_be_bytes());
            msg.push(b'N');
            msg.extend(encode_tuple(&values));
            let parsed = parse(&msg).unwrap();
            let expected: Vec<Value> = values
                .iter()
                .map(|v| v.as_deref().map_or(Value::Null, Value::Binary))
                .collect();
            prop_assert_eq!(parsed, Message::Insert { relation, new: expected });
            for cut in 0..msg.len() {
                prop_assert!(parse(&msg[..cut]).is_err());
            }
        }
    }
}
