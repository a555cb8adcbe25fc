//! Writing an object's answer straight to JSON, for the objects a large page repeats.
//!
//! async-graphql resolves every selected field of every object as its own boxed future, polled
//! in a `FuturesUnordered` (a task node per future), merges the answers into a map of `Value`s,
//! and the transport then serialises that tree and drops it. A page of 100 users with their MFA,
//! licenses, contact, tenant and client selects about 3,000 fields; profiles of that page put
//! most of the service's CPU in those futures, the tree's allocations and its serialisation.
//!
//! The helpers here plan a selection once per page ([`plan`]): fragments (spread and inline,
//! with their type conditions) flattened, and the fields that share a response key collected into
//! one [`Group`] whose sub-selections are merged, as GraphQL's CollectFields does. The page then
//! writes each object's JSON into one buffer ([`Obj`]): aliases and `__typename` answered, a
//! failing field's error recorded with its path and the field left out (as async-graphql does),
//! and an object with nothing written answered null. A field the caller does not answer from
//! memory goes to the type's derived resolver ([`delegate`]), so a field added to a type later is
//! answered correctly before anyone makes it fast.
//!
//! The finished JSON goes back to async-graphql as one value ([`embed`]): a placeholder that the
//! transport replaces with the bytes as it writes the response ([`Splice`]: HTTP, and queries and
//! mutations over a WebSocket), or, where nothing splices (an in-process `execute`), the JSON
//! parsed into a `Value`.
//!
//! `@skip` and `@include` need nothing here: async-graphql removes what they exclude before
//! execution starts. The schema has no custom directives and no extensions, which would have to
//! run around each field.

use std::sync::{Mutex, OnceLock};

use async_graphql::{
    ContainerType, Context, ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult, Value,
    indexmap::IndexMap,
    parser::types::{Field, Selection, SelectionSet},
    resolver_utils::EnumType,
};
use serde::Serialize;

/// When a request carries this, pages that have a fast path answer through async-graphql's
/// derived resolvers instead: the reference the fast path is tested against.
#[derive(Clone, Copy, Debug, Default)]
pub struct DerivedResolvers;

/// Whether this request asked for the derived resolvers (see [`DerivedResolvers`]).
pub fn derived(ctx: &ContextSelectionSet<'_>) -> bool {
    ctx.data_opt::<DerivedResolvers>().is_some()
}

/// The fields of one object that share a response key, in document order, with the plan of
/// their merged sub-selections where the caller writes the child object itself.
pub struct Group<'a> {
    /// Every field selected under this response key (at least one).
    pub fields: Vec<&'a Positioned<Field>>,
    /// The child object's plan, for fields the caller named in [`plan`]'s `child`.
    pub sub: Vec<Group<'a>>,
}

impl<'a> Group<'a> {
    /// The first field (its name, arguments and position stand for the group).
    pub fn first(&self) -> &'a Positioned<Field> {
        self.fields[0]
    }

    /// The field's name in the schema.
    pub fn name(&self) -> &'a str {
        self.first().node.name.node.as_str()
    }

    /// The key the answer goes under (the alias, else the name).
    pub fn key(&self) -> &'a str {
        self.first().node.response_key().node.as_str()
    }
}

/// Plans the selection sets `sets` of an object of type `ty`: its fields grouped by response
/// key, in document order. Where `child(ty, field)` names a type, the group's merged
/// sub-selections are planned for that type too.
pub fn plan<'a>(
    ctx: &ContextSelectionSet<'a>,
    sets: &[&'a SelectionSet],
    ty: &str,
    child: &dyn Fn(&str, &str) -> Option<String>,
) -> ServerResult<Vec<Group<'a>>> {
    let mut flat = Vec::new();
    for set in sets {
        collect(ctx, set, ty, &mut flat)?;
    }
    let mut groups: Vec<Group<'a>> = Vec::with_capacity(flat.len());
    // By response key: a document may select many fields at one level.
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::with_capacity(flat.len());
    for f in flat {
        let key = f.node.response_key().node.as_str();
        match at.get(key) {
            Some(&i) => groups[i].fields.push(f),
            None => {
                at.insert(key, groups.len());
                groups.push(Group { fields: vec![f], sub: vec![] });
            }
        }
    }
    for g in &mut groups {
        if let Some(cty) = child(ty, g.name()) {
            let sets: Vec<&SelectionSet> = g.fields.iter().map(|f| &f.node.selection_set.node).collect();
            g.sub = plan(ctx, &sets, &cty, child)?;
        }
    }
    Ok(groups)
}

fn collect<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    ty: &str,
    out: &mut Vec<&'a Positioned<Field>>,
) -> ServerResult<()> {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(f) => out.push(f),
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let Some(fragment) = ctx.query_env.fragments.get(name) else {
                    return Err(ServerError::new(format!(r#"Unknown fragment "{name}"."#), Some(spread.pos)));
                };
                if applies(ctx, Some(fragment.node.type_condition.node.on.node.as_str()), ty) {
                    collect(ctx, &fragment.node.selection_set.node, ty, out)?;
                }
            }
            Selection::InlineFragment(fragment) => {
                let on = fragment.node.type_condition.as_ref().map(|c| c.node.on.node.as_str());
                if applies(ctx, on, ty) {
                    collect(ctx, &fragment.node.selection_set.node, ty, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether a fragment with this type condition applies to an object of type `ty` (no condition,
/// the type itself, or an interface or union it belongs to).
fn applies(ctx: &ContextSelectionSet<'_>, condition: Option<&str>, ty: &str) -> bool {
    condition.is_none_or(|c| {
        c == ty || ctx.schema_env.registry.implements.get(ty).is_some_and(|parents| parents.contains(c))
    })
}

/// Writes `v` as JSON.
pub fn json<T: Serialize + ?Sized>(w: &mut Vec<u8>, v: &T) {
    // Writing to a Vec cannot fail, and every value written here has string keys.
    let _ = v.serialize(&mut serde_json::Serializer::new(w));
}

/// Writes a value or null.
pub fn opt_json<T: Serialize + ?Sized>(w: &mut Vec<u8>, v: Option<&T>) {
    match v {
        Some(v) => json(w, v),
        None => w.extend_from_slice(b"null"),
    }
}

/// Writes a scalar as its GraphQL type writes it.
pub fn scalar<T: async_graphql::ScalarType>(w: &mut Vec<u8>, v: &T) {
    json(w, &v.to_value())
}

/// Writes a scalar or null.
pub fn opt_scalar<T: async_graphql::ScalarType>(w: &mut Vec<u8>, v: Option<&T>) {
    match v {
        Some(v) => scalar(w, v),
        None => w.extend_from_slice(b"null"),
    }
}

/// The name GraphQL gives an enum value.
pub fn enum_name<T: EnumType>(v: T) -> &'static str {
    T::items().iter().find(|item| item.value == v).map_or("", |item| item.name)
}

/// Writes an enum value by its GraphQL name.
pub fn enum_value<T: EnumType>(w: &mut Vec<u8>, v: T) {
    json(w, enum_name(v))
}

/// Writes a list of enum values.
pub fn enum_values<T: EnumType>(w: &mut Vec<u8>, v: &[T]) {
    w.push(b'[');
    for (i, v) in v.iter().enumerate() {
        if i > 0 {
            w.push(b',');
        }
        enum_value(w, *v);
    }
    w.push(b']');
}

/// An object being written: `{`, then each answered field as `"key":value`; see [`Obj::end`].
pub struct Obj {
    start: usize,
    any: bool,
}

/// Where a field's key began, to take the field back out ([`Obj::undo`]).
#[must_use]
pub struct Mark {
    at: usize,
    any: bool,
}

impl Obj {
    /// Opens an object.
    pub fn begin(w: &mut Vec<u8>) -> Self {
        let start = w.len();
        w.push(b'{');
        Self { start, any: false }
    }

    /// Writes a field's key; its value follows.
    pub fn key(&mut self, w: &mut Vec<u8>, key: &str) -> Mark {
        let mark = Mark { at: w.len(), any: self.any };
        if self.any {
            w.push(b',');
        }
        json(w, key);
        w.push(b':');
        self.any = true;
        mark
    }

    /// Takes the field begun at `mark` back out.
    pub fn undo(&mut self, w: &mut Vec<u8>, mark: Mark) {
        w.truncate(mark.at);
        self.any = mark.any;
    }

    /// Writes a field whose answer may have failed: the value, or the error recorded with the
    /// field's path and the field left out.
    pub fn put(&mut self, w: &mut Vec<u8>, ctx: &Context<'_>, key: &str, answer: ServerResult<Value>) {
        match answer {
            Ok(v) => {
                let _ = self.key(w, key);
                json(w, &v);
            }
            Err(e) => fail(ctx, e),
        }
    }

    /// Closes the object; one with no field answered is null, as async-graphql answers.
    pub fn end(self, w: &mut Vec<u8>) {
        if self.any {
            w.push(b'}');
        } else {
            w.truncate(self.start);
            w.extend_from_slice(b"null");
        }
    }
}

/// Records a field's error, with the field's path unless it has one.
pub fn fail(ctx: &Context<'_>, e: ServerError) {
    ctx.add_error(if e.path.is_empty() { ctx.set_error_path(e) } else { e });
}

/// A field of `obj` answered by the type's derived resolver; the answers of a group's fields
/// merged.
pub async fn delegate<'a, T: ContainerType>(
    obj: &T,
    ctx: &ContextSelectionSet<'a>,
    g: &Group<'a>,
) -> ServerResult<Value> {
    let mut out = Value::Null;
    for f in &g.fields {
        let v = obj.resolve_field(&ctx.with_field(f)).await?.unwrap_or_default();
        merge(&mut out, v);
    }
    Ok(out)
}

/// `value` answered by async-graphql for a group's merged sub-selections (`ctx` is the object
/// that selects the group).
pub async fn resolve<'a, T: OutputType>(
    value: &T,
    ctx: &ContextSelectionSet<'a>,
    g: &Group<'a>,
) -> ServerResult<Value> {
    let mut out = Value::Null;
    for f in &g.fields {
        let c = ctx.with_field(f);
        let v = OutputType::resolve(value, &c.with_selection_set(&f.node.selection_set), f).await?;
        merge(&mut out, v);
    }
    Ok(out)
}

/// Writes an object whose fields are in memory: `known` writes a field by name and says whether
/// it knew it (one it does not goes to the type's derived resolver); `__typename` is answered
/// here.
pub async fn object<'a, T: ContainerType>(
    w: &mut Vec<u8>,
    ctx: &ContextSelectionSet<'a>,
    plan: &[Group<'a>],
    obj: &T,
    mut known: impl FnMut(&mut Vec<u8>, &str) -> bool,
) {
    let mut out = Obj::begin(w);
    for g in plan {
        let mark = out.key(w, g.key());
        if known(w, g.name()) {
            continue;
        }
        if g.name() == "__typename" {
            json(w, &*obj.introspection_type_name());
            continue;
        }
        out.undo(w, mark);
        let answer = delegate(obj, ctx, g).await;
        out.put(w, &ctx.with_field(g.first()), g.key(), answer);
    }
    out.end(w);
}

/// Merges `next` into `prev`: objects (and lists of objects) selected more than once.
fn merge(prev: &mut Value, next: Value) {
    match (prev, next) {
        (prev @ Value::Null, next) => *prev = next,
        (Value::Object(prev), Value::Object(next)) => insert_all(prev, next),
        (Value::List(prev), Value::List(next)) => {
            for (item, next) in prev.iter_mut().zip(next) {
                if let (Value::Object(item), Value::Object(next)) = (item, next) {
                    insert_all(item, next);
                }
            }
        }
        _ => {}
    }
}

fn insert_all(target: &mut IndexMap<Name, Value>, next: IndexMap<Name, Value>) {
    use async_graphql::indexmap::map::Entry;
    for (k, v) in next {
        match target.entry(k) {
            Entry::Vacant(e) => {
                e.insert(v);
            }
            Entry::Occupied(mut e) => merge(e.get_mut(), v),
        }
    }
}

/// Request data from a transport that writes embedded JSON into the response itself
/// ([`Splice::write`]).
#[derive(Default)]
pub struct Splice {
    parts: Mutex<Vec<Vec<u8>>>,
}

/// What a placeholder starts with: a NUL (which JSON escapes, and no stored value we hand out
/// holds) and a value drawn once per process, never shown to anyone.
fn marker() -> &'static str {
    static MARKER: OnceLock<String> = OnceLock::new();
    MARKER.get_or_init(|| format!("\u{0}m365-splice-{:032x}-", rand::random::<u128>()))
}

/// Hands the page's finished JSON to async-graphql: a placeholder the transport replaces, or,
/// where none will, the JSON parsed into a `Value`.
pub fn embed(ctx: &ContextSelectionSet<'_>, json: Vec<u8>) -> ServerResult<Value> {
    match ctx.data_opt::<std::sync::Arc<Splice>>() {
        Some(splice) => {
            let mut parts = splice.parts.lock().unwrap_or_else(|e| e.into_inner());
            parts.push(json);
            Ok(Value::String(format!("{}{}", marker(), parts.len() - 1)))
        }
        None => serde_json::from_slice(&json).map_err(|e| ServerError::new(e.to_string(), Some(ctx.item.pos))),
    }
}

impl Splice {
    /// Writes `resp` as JSON with every placeholder replaced by its part.
    pub fn write(&self, resp: &async_graphql::Response) -> serde_json::Result<Vec<u8>> {
        let skeleton = serde_json::to_vec(resp)?;
        let parts = std::mem::take(&mut *self.parts.lock().unwrap_or_else(|e| e.into_inner()));
        if parts.is_empty() {
            return Ok(skeleton);
        }
        let mut out = Vec::with_capacity(skeleton.len() + parts.iter().map(Vec::len).sum::<usize>());
        let mut rest = &skeleton[..];
        // As serialised: the NUL escaped, inside quotes.
        let prefix = serde_json::to_vec(marker())?;
        let prefix = &prefix[..prefix.len() - 1];
        while let Some(at) = find(rest, prefix) {
            let tail = &rest[at + prefix.len()..];
            let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
            let index: Option<usize> = std::str::from_utf8(&tail[..digits]).ok().and_then(|d| d.parse().ok());
            match (index.and_then(|i| parts.get(i)), tail.get(digits)) {
                (Some(part), Some(b'"')) => {
                    out.extend_from_slice(&rest[..at]);
                    out.extend_from_slice(part);
                    rest = &tail[digits + 1..];
                }
                _ => {
                    out.extend_from_slice(&rest[..at + prefix.len()]);
                    rest = tail;
                }
            }
        }
        out.extend_from_slice(rest);
        Ok(out)
    }

    /// [`Splice::write`] as a string.
    pub fn write_string(&self, resp: &async_graphql::Response) -> serde_json::Result<String> {
        String::from_utf8(self.write(resp)?).map_err(serde::ser::Error::custom)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_by_their_parts_and_nothing_else_is() {
        let splice = Splice::default();
        splice.parts.lock().unwrap().extend([br#"[{"a":1}]"#.to_vec(), b"null".to_vec()]);
        let m = marker();
        let data = Value::from_json(serde_json::json!({
            "x": format!("{m}1"),
            "user": "\u{0}m365-splice-not-ours-0",
            "list": [format!("{m}0"), format!("{m}7"), format!("{m}0tail")],
        }))
        .unwrap();
        let out = splice.write(&async_graphql::Response::new(data)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"]["x"], serde_json::Value::Null);
        assert_eq!(v["data"]["user"], "\u{0}m365-splice-not-ours-0");
        assert_eq!(v["data"]["list"][0], serde_json::json!([{"a": 1}]));
        // An index with no part, or a string that only starts like a placeholder, stays as it was.
        assert_eq!(v["data"]["list"][1], format!("{m}7"));
        assert_eq!(v["data"]["list"][2], format!("{m}0tail"));
    }

    #[test]
    fn an_object_with_nothing_answered_is_null_and_a_field_taken_back_leaves_no_trace() {
        let mut w = b"[".to_vec();
        let o = Obj::begin(&mut w);
        o.end(&mut w);
        w.push(b',');
        let mut o = Obj::begin(&mut w);
        let _ = o.key(&mut w, "a");
        json(&mut w, &true);
        let mark = o.key(&mut w, "b");
        w.extend_from_slice(b"[1,");
        o.undo(&mut w, mark);
        let _ = o.key(&mut w, "c");
        enum_value(&mut w, crate::graphql::types::user::MfaStatus::Unavailable);
        o.end(&mut w);
        w.push(b']');
        assert_eq!(std::str::from_utf8(&w).unwrap(), r#"[null,{"a":true,"c":"UNAVAILABLE"}]"#);
    }
}
