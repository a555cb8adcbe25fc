//! Document limits that hold before any work proportional to the document.
//!
//! async-graphql's parser recurses once per nesting level of a *value* (`[[[…]]]`, `{a:{a:…}}`)
//! and would overflow the stack long before its own depth limits run, and its validator emits
//! one error per repeated argument or unknown field. So every document goes through two checks:
//!
//! 1. [`DocumentLimits::scan`], a lexical pass over the source before it is parsed: tokens and
//!    bracket nesting (selection sets, arguments, list and object values alike), O(n) with no
//!    allocation and no recursion;
//! 2. [`DocumentLimits::check`], on the parsed document before validation: arguments per field,
//!    aliases, root fields, directives, and depth, where introspection (`__schema`, `__type`) has a
//!    budget of its own so that the standard introspection query of GraphiQL and code generators
//!    passes while ordinary queries keep the tighter limit.
//!
//! Both answer `QUERY_LIMIT_EXCEEDED` with `extensions.limit` (which one) and `extensions.max`.
//! [`cap_errors`] bounds what any response can carry.

use std::collections::HashMap;

use async_graphql::{
    Name, Positioned, ServerError,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

/// The code every document limit answers with.
pub const LIMIT_CODE: &str = crate::error::codes::QUERY_LIMIT_EXCEEDED;

/// The code of the error that stands for the errors left out of a response.
pub const TOO_MANY_ERRORS_CODE: &str = crate::error::codes::TOO_MANY_ERRORS;

/// Depth that introspection queries may reach (the standard introspection query, with nine
/// levels of `ofType`, is 14 deep).
pub const INTROSPECTION_MAX_DEPTH: usize = 16;

/// Limits checked before and right after parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DocumentLimits {
    /// Most lexical tokens in the document.
    pub max_tokens: usize,
    /// Deepest bracket nesting (`{`, `[`, `(`), values and selection sets together.
    pub max_nesting: usize,
    /// Most arguments on one field or directive.
    pub max_arguments: usize,
    /// Deepest field nesting outside introspection.
    pub max_depth: usize,
    /// Most aliased fields in the document.
    pub max_aliases: usize,
    /// Most root fields in one operation.
    pub max_root_fields: usize,
    /// Most directives in the document.
    pub max_directives: usize,
}

/// A limit a document broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitError {
    /// Which limit (`tokens`, `nesting`, `arguments`, `depth`, `aliases`, `rootFields`, `directives`).
    pub limit: &'static str,
    /// Its value.
    pub max: usize,
    /// For a person.
    pub message: String,
}

impl LimitError {
    fn new(limit: &'static str, max: usize, message: String) -> Self {
        Self { limit, max, message }
    }

    /// As a GraphQL error with its code.
    pub fn into_server_error(self) -> ServerError {
        let mut e = ServerError::new(self.message, None);
        let ext = e.extensions.get_or_insert_with(Default::default);
        ext.set("code", LIMIT_CODE);
        ext.set("limit", self.limit);
        ext.set("max", self.max as u64);
        e
    }
}

impl DocumentLimits {
    /// The lexical pass: counts tokens and bracket nesting without parsing, skipping strings and
    /// comments. Stops at the first limit broken.
    pub fn scan(&self, source: &str) -> Result<(), LimitError> {
        let b = source.as_bytes();
        let (mut i, mut tokens, mut depth) = (0usize, 0usize, 0usize);
        while i < b.len() {
            let c = b[i];
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                    i += 1;
                    continue;
                }
                b'#' => {
                    while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                        i += 1;
                    }
                    continue;
                }
                b'"' if b[i..].starts_with(b"\"\"\"") => {
                    i += 3;
                    while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                        i += if b[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                    }
                    i += 3;
                }
                b'"' => {
                    i += 1;
                    while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'{' | b'[' | b'(' => {
                    depth += 1;
                    if depth > self.max_nesting {
                        return Err(LimitError::new(
                            "nesting",
                            self.max_nesting,
                            format!(
                                "The document nests brackets deeper than {} levels (selection sets, arguments, lists and input objects count alike).",
                                self.max_nesting
                            ),
                        ));
                    }
                    i += 1;
                }
                b'}' | b']' | b')' => {
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                b'.' if b[i..].starts_with(b"...") => i += 3,
                c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'+' | b'-')) {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
            tokens += 1;
            if tokens > self.max_tokens {
                return Err(LimitError::new(
                    "tokens",
                    self.max_tokens,
                    format!("The document has more than {} tokens.", self.max_tokens),
                ));
            }
        }
        Ok(())
    }

    /// Checks a parsed document (before validation).
    pub fn check(&self, doc: &ExecutableDocument) -> Result<(), LimitError> {
        let mut counts = Counts::default();
        let mut depths = FragmentDepths { doc, memo: HashMap::new() };
        for (_, op) in doc.operations.iter() {
            counts.directives += op.node.directives.len();
            counts.walk(&op.node.selection_set.node, self.max_arguments)?;
            let roots = root_fields(&op.node.selection_set.node, doc);
            if roots > self.max_root_fields {
                return Err(LimitError::new(
                    "rootFields",
                    self.max_root_fields,
                    format!(
                        "An operation may select at most {} root fields; this one selects {roots}.",
                        self.max_root_fields
                    ),
                ));
            }
            self.check_depth(&op.node.selection_set.node, &mut depths)?;
        }
        for f in doc.fragments.values() {
            counts.directives += f.node.directives.len();
            counts.walk(&f.node.selection_set.node, self.max_arguments)?;
        }
        if counts.aliases > self.max_aliases {
            return Err(LimitError::new(
                "aliases",
                self.max_aliases,
                format!("A document may use at most {} aliases; this one uses {}.", self.max_aliases, counts.aliases),
            ));
        }
        if counts.directives > self.max_directives {
            return Err(LimitError::new(
                "directives",
                self.max_directives,
                format!(
                    "A document may use at most {} directives; this one uses {}.",
                    self.max_directives, counts.directives
                ),
            ));
        }
        Ok(())
    }

    /// Root fields named `__…` (introspection) get [`INTROSPECTION_MAX_DEPTH`], others `max_depth`.
    fn check_depth(&self, root: &SelectionSet, depths: &mut FragmentDepths<'_>) -> Result<(), LimitError> {
        let mut fields = Vec::new();
        depths.root_fields(root, &mut fields, 0);
        for (name, depth) in fields {
            let max = if name.starts_with("__") { INTROSPECTION_MAX_DEPTH.max(self.max_depth) } else { self.max_depth };
            if depth > max {
                return Err(LimitError::new(
                    "depth",
                    max,
                    format!("The query is nested too deep: `{name}` reaches depth {depth}, the most allowed is {max}."),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    directives: usize,
}

impl Counts {
    fn walk(&mut self, set: &SelectionSet, max_arguments: usize) -> Result<(), LimitError> {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    self.aliases += usize::from(f.node.alias.is_some());
                    self.directives += f.node.directives.len();
                    let most =
                        f.node.directives.iter().map(|d| d.node.arguments.len()).chain([f.node.arguments.len()]).max();
                    if most.unwrap_or(0) > max_arguments {
                        return Err(LimitError::new(
                            "arguments",
                            max_arguments,
                            format!(
                                "`{}` has more than {max_arguments} arguments (or one of its directives has).",
                                f.node.name.node
                            ),
                        ));
                    }
                    self.walk(&f.node.selection_set.node, max_arguments)?;
                }
                Selection::FragmentSpread(s) => self.directives += s.node.directives.len(),
                Selection::InlineFragment(i) => {
                    self.directives += i.node.directives.len();
                    self.walk(&i.node.selection_set.node, max_arguments)?;
                }
            }
        }
        Ok(())
    }
}

/// Field depth through fragments, each fragment measured once (so spreads cannot multiply the
/// work); a fragment cycle counts as depth 0 here and is rejected by validation afterwards.
struct FragmentDepths<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<Name, Option<usize>>,
}

impl FragmentDepths<'_> {
    /// Depth of the deepest field in `set` (a set with one leaf field has depth 1).
    fn depth(&mut self, set: &SelectionSet, guard: usize) -> usize {
        set.items.iter().map(|item| self.item_depth(item, guard)).max().unwrap_or(0)
    }

    fn item_depth(&mut self, item: &Positioned<Selection>, guard: usize) -> usize {
        match &item.node {
            Selection::Field(f) => 1 + self.depth(&f.node.selection_set.node, guard),
            Selection::InlineFragment(i) => self.depth(&i.node.selection_set.node, guard),
            Selection::FragmentSpread(s) => self.fragment(&s.node.fragment_name.node, guard),
        }
    }

    fn fragment(&mut self, name: &Name, guard: usize) -> usize {
        match self.memo.get(name) {
            Some(Some(d)) => return *d,
            Some(None) => return 0, // a cycle: validation refuses it
            None => {}
        }
        let doc = self.doc;
        let Some(f) = doc.fragments.get(name) else { return 0 };
        if guard > doc.fragments.len() {
            return 0;
        }
        self.memo.insert(name.clone(), None);
        let d = self.depth(&f.node.selection_set.node, guard + 1);
        self.memo.insert(name.clone(), Some(d));
        d
    }

    /// The root fields of an operation (through fragments) with their depths.
    fn root_fields(&mut self, set: &SelectionSet, out: &mut Vec<(String, usize)>, guard: usize) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => out.push((f.node.name.node.to_string(), self.item_depth(item, guard))),
                Selection::InlineFragment(i) => self.root_fields(&i.node.selection_set.node, out, guard),
                Selection::FragmentSpread(s) => {
                    let doc = self.doc;
                    if guard <= doc.fragments.len()
                        && let Some(f) = doc.fragments.get(&s.node.fragment_name.node)
                    {
                        self.root_fields(&f.node.selection_set.node, out, guard + 1);
                    }
                }
            }
        }
    }
}

fn root_fields(set: &SelectionSet, doc: &ExecutableDocument) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(i) => root_fields(&i.node.selection_set.node, doc),
            Selection::FragmentSpread(s) => {
                doc.fragments.get(&s.node.fragment_name.node).map_or(0, |f| f.node.selection_set.node.items.len())
            }
        })
        .sum()
}

/// Keeps at most `max` errors; the rest are replaced by one error saying how many were left
/// out (code `TOO_MANY_ERRORS`). Returns whether anything was cut.
pub fn cap_errors(errors: &mut Vec<ServerError>, max: usize) -> bool {
    if errors.len() <= max {
        return false;
    }
    let dropped = errors.len() - max;
    errors.truncate(max);
    let mut e =
        ServerError::new(format!("{dropped} more errors were left out; only the first {max} are returned."), None);
    let ext = e.extensions.get_or_insert_with(Default::default);
    ext.set("code", TOO_MANY_ERRORS_CODE);
    ext.set("omitted", dropped as u64);
    errors.push(e);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        max_tokens: 40,
        max_nesting: 4,
        max_arguments: 2,
        max_depth: 3,
        max_aliases: 2,
        max_root_fields: 2,
        max_directives: 1,
    };

    fn check(q: &str) -> Result<(), &'static str> {
        LIMITS.scan(q).map_err(|e| e.limit)?;
        let doc = async_graphql::parser::parse_query(q).unwrap();
        LIMITS.check(&doc).map_err(|e| e.limit)
    }

    #[test]
    fn counts_aliases_roots_and_directives() {
        assert!(check("{ a b }").is_ok());
        assert_eq!(check("{ a b c }"), Err("rootFields"));
        assert_eq!(check("{ x: a { y: b z: c } }"), Err("aliases"));
        assert_eq!(check("{ a @skip(if: true) b @skip(if: true) }"), Err("directives"));
        assert_eq!(check("query { ...F } fragment F on Query { a b c }"), Err("rootFields"));
    }

    #[test]
    fn nesting_counts_values_and_ignores_strings_and_comments() {
        assert_eq!(check("query($v: [[[[[Int]]]]]) { a }"), Err("nesting"));
        assert_eq!(check("{ a(x: {b: {c: [1]}}) }"), Err("nesting"));
        assert!(check("{ a(x: \"[[[[[[[[\") # {{{{{{{{\n }").is_ok());
        assert!(check("{ a(x: \"\"\" [[[[[[ \\\"\"\" {{{{{ \"\"\") }").is_ok());
        // Unbalanced closers do not make room for more openers.
        assert_eq!(check("}}}}}}}} { a(x: [[[[1]]]]) }"), Err("nesting"));
        // A huge nested value is refused after at most max_nesting + 1 brackets, without parsing.
        let hostile = format!("query($v: String = {}) {{ a }}", "[".repeat(100_000));
        assert_eq!(LIMITS.scan(&hostile).unwrap_err().limit, "nesting");
    }

    #[test]
    fn tokens_and_arguments() {
        let many: String = (0..50).map(|i| format!("f{i} ")).collect();
        assert_eq!(check(&format!("{{ {many} }}")), Err("tokens"));
        assert_eq!(check("{ a(x: 1, x: 1, x: 1) }"), Err("arguments"));
        assert_eq!(check("{ a @include(if: true, if: true, if: true) }"), Err("arguments"));
        assert!(check("{ a(x: 1, y: -2.5e3) }").is_ok());
    }

    #[test]
    fn depth_has_a_separate_budget_for_introspection() {
        assert!(check("{ a { b { c } } }").is_ok());
        assert_eq!(check("{ a { b { c { d } } } }"), Err("depth"));
        assert_eq!(check("{ ...F } fragment F on Q { a { b { c { d } } } }"), Err("depth"));
        assert!(check("{ __schema { b { c { d } } } }").is_ok());
        // Cycles are left to validation, and terminate here.
        assert!(check("{ ...F } fragment F on Q { ...G } fragment G on Q { ...F }").is_ok());
    }

    #[test]
    fn errors_are_capped_with_a_marker() {
        let mut errors: Vec<ServerError> = (0..10).map(|i| ServerError::new(format!("e{i}"), None)).collect();
        assert!(cap_errors(&mut errors, 4));
        assert_eq!(errors.len(), 5);
        assert!(errors[4].message.starts_with("6 more errors"));
        let mut few = vec![ServerError::new("x", None)];
        assert!(!cap_errors(&mut few, 4));
        assert_eq!(few.len(), 1);
    }
}
