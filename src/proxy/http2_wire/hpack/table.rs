//! The static table (RFC 7541 Appendix A) and the decoder's dynamic table (§2.3, §4).
//!
//! Both hold fields already parsed into `(Name, HeaderValue)`, so an indexed field costs a
//! lookup and a borrow, never a re-parse or an allocation.

use std::collections::VecDeque;

use http::{HeaderName, HeaderValue};

use super::{InvalidField, Name, Pseudo};

/// Per-entry overhead added to name and value lengths (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;
/// Number of static entries; dynamic indexes start right after them (§2.3.3).
const STATIC_LEN: usize = 61;

/// A dynamic table entry's field: parsed, or the `InvalidField` it parsed to. Invalid fields
/// are still stored so later indexes stay in step with the peer's encoder.
pub(super) type Field = Result<(Name, HeaderValue), InvalidField>;

/// A looked-up entry, borrowed from the static or dynamic table.
pub(super) struct EntryRef<'a> {
    /// The field, or `InvalidField` if the entry was invalid when inserted.
    pub(super) field: Result<(&'a Name, &'a HeaderValue), InvalidField>,
    /// The name's length in octets as sent; needed to size a new entry that reuses this name
    /// even when the name itself was invalid.
    pub(super) name_len: usize,
}

/// A static entry with a regular header name.
const fn hdr(name: &'static str, value: &'static str) -> (Name, HeaderValue) {
    (
        Name::Header(HeaderName::from_static(name)),
        HeaderValue::from_static(value),
    )
}

/// A static entry with a pseudo-header name.
const fn pseudo(name: Pseudo, value: &'static str) -> (Name, HeaderValue) {
    (Name::Pseudo(name), HeaderValue::from_static(value))
}

/// RFC 7541 Appendix A; `STATIC_TABLE[i - 1]` is static index `i`. Built at compile time
/// (`from_static` is `const`), so an invalid entry is a build error, not a runtime panic.
static STATIC_TABLE: [(Name, HeaderValue); STATIC_LEN] = [
    pseudo(Pseudo::Authority, ""),
    pseudo(Pseudo::Method, "GET"),
    pseudo(Pseudo::Method, "POST"),
    pseudo(Pseudo::Path, "/"),
    pseudo(Pseudo::Path, "/index.html"),
    pseudo(Pseudo::Scheme, "http"),
    pseudo(Pseudo::Scheme, "https"),
    pseudo(Pseudo::Status, "200"),
    pseudo(Pseudo::Status, "204"),
    pseudo(Pseudo::Status, "206"),
    pseudo(Pseudo::Status, "304"),
    pseudo(Pseudo::Status, "400"),
    pseudo(Pseudo::Status, "404"),
    pseudo(Pseudo::Status, "500"),
    hdr("accept-charset", ""),
    hdr("accept-encoding", "gzip, deflate"),
    hdr("accept-language", ""),
    hdr("accept-ranges", ""),
    hdr("accept", ""),
    hdr("access-control-allow-origin", ""),
    hdr("age", ""),
    hdr("allow", ""),
    hdr("authorization", ""),
    hdr("cache-control", ""),
    hdr("content-disposition", ""),
    hdr("content-encoding", ""),
    hdr("content-language", ""),
    hdr("content-length", ""),
    hdr("content-location", ""),
    hdr("content-range", ""),
    hdr("content-type", ""),
    hdr("cookie", ""),
    hdr("date", ""),
    hdr("etag", ""),
    hdr("expect", ""),
    hdr("expires", ""),
    hdr("from", ""),
    hdr("host", ""),
    hdr("if-match", ""),
    hdr("if-modified-since", ""),
    hdr("if-none-match", ""),
    hdr("if-range", ""),
    hdr("if-unmodified-since", ""),
    hdr("last-modified", ""),
    hdr("link", ""),
    hdr("location", ""),
    hdr("max-forwards", ""),
    hdr("proxy-authenticate", ""),
    hdr("proxy-authorization", ""),
    hdr("range", ""),
    hdr("referer", ""),
    hdr("refresh", ""),
    hdr("retry-after", ""),
    hdr("server", ""),
    hdr("set-cookie", ""),
    hdr("strict-transport-security", ""),
    hdr("transfer-encoding", ""),
    hdr("user-agent", ""),
    hdr("vary", ""),
    hdr("via", ""),
    hdr("www-authenticate", ""),
];

/// One dynamic table entry with its RFC 7541 §4.1 size.
struct Entry {
    field: Field,
    name_len: usize,
    size: usize,
}

/// The decoder's dynamic table (RFC 7541 §2.3.2), newest entry at the front, so dynamic
/// index 62 is `entries[0]`.
pub(super) struct DynamicTable {
    entries: VecDeque<Entry>,
    /// Sum of the entries' sizes.
    size: usize,
    /// Current maximum size, as last set by a size update (or the initial setting).
    max_size: usize,
}

impl DynamicTable {
    /// An empty table with the given maximum size.
    pub(super) fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Current size in RFC 7541 §4.1 octets.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Applies a dynamic table size update (§4.3): evicts down to the new maximum.
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Inserts a field with the given name and value lengths, evicting per §4.4. An entry
    /// larger than the maximum empties the table and is not inserted.
    pub(super) fn insert(&mut self, field: Field, name_len: usize, value_len: usize) {
        // Lengths are bounded by the block length, but saturate rather than trust that.
        let size = name_len
            .saturating_add(value_len)
            .saturating_add(ENTRY_OVERHEAD);
        let Some(room) = self.max_size.checked_sub(size) else {
            self.entries.clear();
            self.size = 0;
            return;
        };
        self.evict_to(room);
        self.entries.push_front(Entry {
            field,
            name_len,
            size,
        });
        self.size += size;
    }

    /// Looks up a combined static + dynamic index (§2.3.3); `None` for 0 or past the end.
    pub(super) fn lookup(&self, index: usize) -> Option<EntryRef<'_>> {
        let Some(dynamic) = index.checked_sub(STATIC_LEN + 1) else {
            let (name, value) = STATIC_TABLE.get(index.checked_sub(1)?)?;
            return Some(EntryRef {
                field: Ok((name, value)),
                name_len: name.as_str().len(),
            });
        };
        let entry = self.entries.get(dynamic)?;
        Some(EntryRef {
            field: entry.field.as_ref().map(|(n, v)| (n, v)).map_err(|e| *e),
            name_len: entry.name_len,
        })
    }

    /// Evicts the oldest entries until the size is at most `target`.
    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some(oldest) = self.entries.pop_back() else {
                // Unreachable while `size` is the sum of entry sizes; stay consistent anyway.
                self.size = 0;
                return;
            };
            self.size -= oldest.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &'static str, value: &'static str) -> Field {
        Ok(hdr(name, value))
    }

    fn name_at(t: &DynamicTable, index: usize) -> Option<String> {
        let entry = t.lookup(index)?;
        entry.field.ok().map(|(n, _)| n.as_str().to_owned())
    }

    #[test]
    fn static_table_matches_appendix_a() {
        let t = DynamicTable::new(4096);
        assert!(t.lookup(0).is_none());
        assert_eq!(name_at(&t, 1).as_deref(), Some(":authority"));
        assert_eq!(name_at(&t, 2).as_deref(), Some(":method"));
        assert_eq!(name_at(&t, 8).as_deref(), Some(":status"));
        assert_eq!(name_at(&t, 16).as_deref(), Some("accept-encoding"));
        assert_eq!(name_at(&t, 31).as_deref(), Some("content-type"));
        assert_eq!(name_at(&t, 52).as_deref(), Some("refresh"));
        assert_eq!(name_at(&t, 61).as_deref(), Some("www-authenticate"));
        assert!(t.lookup(62).is_none());
        let v = t
            .lookup(16)
            .and_then(|e| e.field.ok())
            .map(|(_, v)| v.clone());
        assert_eq!(v, Some(HeaderValue::from_static("gzip, deflate")));
        let v = t
            .lookup(14)
            .and_then(|e| e.field.ok())
            .map(|(_, v)| v.clone());
        assert_eq!(v, Some(HeaderValue::from_static("500")));
    }

    #[test]
    fn dynamic_indexes_newest_first() {
        let mut t = DynamicTable::new(4096);
        t.insert(field("a", "1"), 1, 1);
        t.insert(field("b", "2"), 1, 1);
        assert_eq!(t.size(), 2 * 34);
        assert_eq!(name_at(&t, 62).as_deref(), Some("b"));
        assert_eq!(name_at(&t, 63).as_deref(), Some("a"));
        assert!(t.lookup(64).is_none());
    }

    #[test]
    fn eviction_keeps_size_within_max() {
        // Room for exactly two 34-octet entries.
        let mut t = DynamicTable::new(68);
        t.insert(field("a", "1"), 1, 1);
        t.insert(field("b", "2"), 1, 1);
        t.insert(field("c", "3"), 1, 1);
        assert_eq!(t.size(), 68);
        assert_eq!(name_at(&t, 62).as_deref(), Some("c"));
        assert_eq!(name_at(&t, 63).as_deref(), Some("b"));
        assert!(t.lookup(64).is_none());
    }

    #[test]
    fn oversized_entry_empties_table() {
        let mut t = DynamicTable::new(68);
        t.insert(field("a", "1"), 1, 1);
        t.insert(field("big", "x"), 3, 40);
        assert_eq!(t.size(), 0);
        assert!(t.lookup(62).is_none());
    }

    #[test]
    fn size_update_evicts() {
        let mut t = DynamicTable::new(4096);
        t.insert(field("a", "1"), 1, 1);
        t.insert(field("b", "2"), 1, 1);
        t.set_max_size(40);
        assert_eq!(t.size(), 34);
        assert_eq!(name_at(&t, 62).as_deref(), Some("b"));
        t.set_max_size(0);
        assert_eq!(t.size(), 0);
        assert!(t.lookup(62).is_none());
    }

    #[test]
    fn invalid_entries_keep_their_slot_and_name_len() {
        let mut t = DynamicTable::new(4096);
        t.insert(Err(InvalidField), 7, 3);
        assert_eq!(t.size(), 42);
        let entry = t.lookup(62).map(|e| (e.field.is_err(), e.name_len));
        assert_eq!(entry, Some((true, 7)));
    }
}
