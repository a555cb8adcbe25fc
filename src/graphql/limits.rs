//! Document limits async-graphql has no switch for: aliases, root fields and directives per
//! document. (Depth, complexity and directives per field are set on the schema builder.)

use std::sync::Arc;

use async_graphql::{
    ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

/// Limits checked right after parsing.
#[derive(Clone, Copy, Debug)]
pub struct DocumentLimits {
    /// Most aliased fields in the document.
    pub max_aliases: usize,
    /// Most root fields in one operation.
    pub max_root_fields: usize,
    /// Most directives in the document.
    pub max_directives: usize,
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[derive(Default)]
struct Counts {
    aliases: usize,
    directives: usize,
}

fn walk(set: &SelectionSet, counts: &mut Counts) {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                counts.aliases += usize::from(f.node.alias.is_some());
                counts.directives += f.node.directives.len();
                walk(&f.node.selection_set.node, counts);
            }
            Selection::FragmentSpread(s) => counts.directives += s.node.directives.len(),
            Selection::InlineFragment(i) => {
                counts.directives += i.node.directives.len();
                walk(&i.node.selection_set.node, counts);
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

impl DocumentLimits {
    /// Checks a parsed document.
    pub fn check(&self, doc: &ExecutableDocument) -> Result<(), String> {
        let mut counts = Counts::default();
        for (_, op) in doc.operations.iter() {
            counts.directives += op.node.directives.len();
            walk(&op.node.selection_set.node, &mut counts);
            let roots = root_fields(&op.node.selection_set.node, doc);
            if roots > self.max_root_fields {
                return Err(format!(
                    "An operation may select at most {} root fields; this one selects {roots}.",
                    self.max_root_fields
                ));
            }
        }
        for f in doc.fragments.values() {
            counts.directives += f.node.directives.len();
            walk(&f.node.selection_set.node, &mut counts);
        }
        if counts.aliases > self.max_aliases {
            return Err(format!(
                "A document may use at most {} aliases; this one uses {}.",
                self.max_aliases, counts.aliases
            ));
        }
        if counts.directives > self.max_directives {
            return Err(format!(
                "A document may use at most {} directives; this one uses {}.",
                self.max_directives, counts.directives
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Extension for DocumentLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        self.check(&doc).map_err(|msg| {
            let mut e = ServerError::new(msg, None);
            e.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
            e
        })?;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(q: &str) -> Result<(), String> {
        let doc = async_graphql::parser::parse_query(q).unwrap();
        DocumentLimits { max_aliases: 2, max_root_fields: 2, max_directives: 1 }.check(&doc)
    }

    #[test]
    fn counts_aliases_roots_and_directives() {
        assert!(check("{ a b }").is_ok());
        assert!(check("{ a b c }").unwrap_err().contains("root fields"));
        assert!(check("{ x: a { y: b z: c } }").unwrap_err().contains("aliases"));
        assert!(check("{ a @skip(if: true) b @skip(if: true) }").unwrap_err().contains("directives"));
        assert!(check("query { ...F } fragment F on Query { a b c }").unwrap_err().contains("root fields"));
    }
}
