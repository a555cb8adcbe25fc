//! Parsed documents by their text. Clients send the same few documents again and again (a
//! dashboard's page query, a console's list); parsing one with the grammar-driven parser was
//! about 3 % of the service's CPU on the users page, and a clone of the parsed document costs a
//! fraction of that.
//!
//! Bounded before it can grow: only documents of at most [`MAX_TEXT`] bytes that passed the
//! document limits are kept, at most [`ENTRIES`] of them; when full the cache starts over, so a
//! stream of distinct documents only misses. The limits are part of the key: a document kept
//! under one set of limits is never handed to a schema with stricter ones.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use async_graphql::parser::types::ExecutableDocument;

use super::limits::DocumentLimits;

/// Most documents kept.
pub const ENTRIES: usize = 128;
/// Longest document text kept, in bytes (a parsed document is several times its text).
pub const MAX_TEXT: usize = 4 * 1024;

/// By limits, then by text (looked up by `&str`, no key built).
type Map = HashMap<DocumentLimits, HashMap<Box<str>, Arc<ExecutableDocument>>>;

/// A bounded map of parsed documents.
#[derive(Default)]
pub struct Cache(Mutex<Map>);

impl Cache {
    fn map(&self) -> std::sync::MutexGuard<'_, Map> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The document `text` parsed, as one that passed `limits` before.
    pub fn get(&self, limits: DocumentLimits, text: &str) -> Option<ExecutableDocument> {
        if text.len() > MAX_TEXT {
            return None;
        }
        // The deep clone happens outside the lock.
        let hit = self.map().get(&limits).and_then(|docs| docs.get(text)).cloned();
        hit.map(|doc| (*doc).clone())
    }

    /// Keeps `doc`, the parse of `text`, which passed `limits`.
    pub fn put(&self, limits: DocumentLimits, text: &str, doc: &ExecutableDocument) {
        if text.len() > MAX_TEXT {
            return;
        }
        let doc = Arc::new(doc.clone());
        let mut map = self.map();
        if map.values().map(HashMap::len).sum::<usize>() >= ENTRIES {
            map.clear();
        }
        map.entry(limits).or_default().insert(Box::from(text), doc);
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.map().values().map(HashMap::len).sum()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The process's cache, used by [`super::prepare`].
pub fn global() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::Config, graphql::prepare};

    fn run(config: &Config, text: &str) -> Result<&'static str, String> {
        prepare(config, &mut async_graphql::Request::new(text)).map_err(|e| e.message)
    }

    /// A document is parsed once and reused; a document kept under loose limits is still
    /// refused under stricter ones; long documents are not kept.
    #[test]
    fn documents_are_reused_only_under_the_limits_they_passed() {
        let loose = Config::defaults();
        let text = "query Reuse { a { b { c { d } } } }";
        assert_eq!(run(&loose, text), Ok("query"));
        let limits = crate::graphql::document_limits(&loose);
        assert!(global().get(limits, text).is_some(), "kept after its first parse");
        assert_eq!(run(&loose, text), Ok("query"), "and answered from the cache");

        let strict = Config { graphql_max_depth: 2, ..Config::defaults() };
        let refused = run(&strict, text).expect_err("too deep for the strict limits");
        assert!(refused.contains("depth"), "{refused}");
        assert!(
            global().get(crate::graphql::document_limits(&strict), text).is_none(),
            "a refused document is not kept"
        );

        let long = format!("{{ {} }}", "a ".repeat(MAX_TEXT));
        let _ = run(&loose, &long);
        assert!(global().get(limits, &long).is_none(), "documents over MAX_TEXT are not kept");
    }

    /// The cache starts over when full, so distinct documents cannot grow it.
    #[test]
    fn the_cache_stays_bounded() {
        let (cache, limits) = (Cache::default(), crate::graphql::document_limits(&Config::defaults()));
        for i in 0..(ENTRIES * 3) {
            let text = format!("query Q{i} {{ a }}");
            let doc = async_graphql::parser::parse_query(&text).unwrap();
            cache.put(limits, &text, &doc);
            assert!(!cache.is_empty() && cache.len() <= ENTRIES);
            assert!(cache.get(limits, &text).is_some());
        }
    }
}
