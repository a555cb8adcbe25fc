//! Building an object's answer in one loop, for the objects a large page repeats.
//!
//! async-graphql resolves every selected field of every object as its own boxed future, polled
//! in a `FuturesUnordered` (a task node per future), and merges the answers into a map. A page of
//! 100 users with their MFA, licenses, contact, tenant and client selects about 3,000 fields;
//! a profile of that page put most of the service's CPU in those futures and their allocations.
//! The helpers here walk a selection set themselves: fragments (spread and inline, with their type
//! conditions) flattened, aliases and `__typename` answered, a field selected twice merged, a
//! failing field's error recorded with its path and the field left out, as async-graphql does.
//! A field the caller does not answer from memory goes to the type's derived resolver, so a
//! field added to a type later is answered correctly before anyone makes it fast.
//!
//! `@skip` and `@include` need nothing here: async-graphql removes what they exclude before
//! execution starts. The schema has no custom directives and no extensions, which would have to
//! run around each field.

use async_graphql::{
    ContainerType, Context, ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult, Value,
    indexmap::IndexMap,
    parser::types::{Field, Selection, SelectionSet},
};

/// When a request carries this, pages that have a fast path answer through async-graphql's
/// derived resolvers instead: the reference the fast path is tested against.
#[derive(Clone, Copy, Debug, Default)]
pub struct DerivedResolvers;

/// Whether this request asked for the derived resolvers (see [`DerivedResolvers`]).
pub fn derived(ctx: &ContextSelectionSet<'_>) -> bool {
    ctx.data_opt::<DerivedResolvers>().is_some()
}

/// The fields an object of type `ty` answers for the selection set in `ctx`, fragments
/// flattened, in document order.
pub fn fields<'a>(ctx: &ContextSelectionSet<'a>, ty: &str) -> ServerResult<Vec<&'a Positioned<Field>>> {
    let mut out = Vec::with_capacity(ctx.item.node.items.len());
    collect(ctx, &ctx.item.node, ty, &mut out)?;
    Ok(out)
}

/// [`fields`], or `None` with the error recorded (the object then answers null).
pub fn fields_or_null<'a>(ctx: &ContextSelectionSet<'a>, ty: &str) -> Option<Vec<&'a Positioned<Field>>> {
    fields(ctx, ty).map_err(|e| ctx.add_error(e)).ok()
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

/// An object's answer under construction.
pub struct Object(IndexMap<Name, Value>);

impl Object {
    /// Room for `n` fields.
    pub fn with_capacity(n: usize) -> Self {
        Self(IndexMap::with_capacity(n))
    }

    /// Adds a field's answer under its response key (merged with an earlier answer for the same
    /// key), or records its error with its path and leaves the field out.
    pub fn put(&mut self, ctx: &Context<'_>, answer: ServerResult<Value>) {
        match answer {
            Ok(v) => insert(&mut self.0, ctx.item.node.response_key().node.clone(), v),
            Err(e) => ctx.add_error(if e.path.is_empty() { ctx.set_error_path(e) } else { e }),
        }
    }

    /// The finished object (null when nothing was selected or every field failed, as
    /// async-graphql answers).
    pub fn finish(self) -> Value {
        if self.0.is_empty() { Value::Null } else { Value::Object(self.0) }
    }
}

/// Inserts `value` at `name`, merging objects (and lists of objects) selected more than once.
fn insert(target: &mut IndexMap<Name, Value>, name: Name, value: Value) {
    use async_graphql::indexmap::map::Entry;
    let prev = match target.entry(name) {
        Entry::Vacant(e) => {
            e.insert(value);
            return;
        }
        Entry::Occupied(e) => e.into_mut(),
    };
    match (prev, value) {
        (Value::Object(prev), Value::Object(next)) => {
            for (k, v) in next {
                insert(prev, k, v);
            }
        }
        (Value::List(prev), Value::List(next)) => {
            for (item, next) in prev.iter_mut().zip(next) {
                if let (Value::Object(item), Value::Object(next)) = (item, next) {
                    for (k, v) in next {
                        insert(item, k, v);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Answers an object whose fields are in memory: `known` answers a field by name (`None` for
/// one it does not know, which then goes to the type's derived resolver); `__typename` is
/// answered here.
pub async fn object<'a, T: ContainerType>(
    ctx: &ContextSelectionSet<'a>,
    obj: &'a T,
    mut known: impl FnMut(&str) -> Option<Value>,
) -> Value {
    let ty = obj.introspection_type_name();
    let Some(fields) = fields_or_null(ctx, &ty) else { return Value::Null };
    let mut out = Object::with_capacity(fields.len());
    for f in fields {
        let c = ctx.with_field(f);
        let name = f.node.name.node.as_str();
        let answer = match known(name) {
            Some(v) => Ok(v),
            None if name == "__typename" => Ok(Value::String(ty.to_string())),
            None => derived_field(obj, &c).await,
        };
        out.put(&c, answer);
    }
    out.finish()
}

/// A field answered by the type's derived resolver.
pub async fn derived_field<T: ContainerType>(obj: &T, ctx: &Context<'_>) -> ServerResult<Value> {
    obj.resolve_field(ctx).await.map(Option::unwrap_or_default)
}

/// A value answered by async-graphql for a field whose sub-selection is in `ctx`.
pub async fn resolve<T: OutputType>(value: &T, ctx: &Context<'_>) -> ServerResult<Value> {
    let sel = ctx.with_selection_set(&ctx.item.node.selection_set);
    OutputType::resolve(value, &sel, ctx.item).await
}

/// A string.
pub fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// A string or null.
pub fn opt_string(s: Option<&str>) -> Value {
    s.map_or(Value::Null, string)
}

/// A list of strings.
pub fn strings(s: &[String]) -> Value {
    Value::List(s.iter().map(|s| string(s)).collect())
}

/// A scalar, as its GraphQL type writes it.
pub fn scalar<T: async_graphql::ScalarType>(v: &T) -> Value {
    v.to_value()
}

/// A scalar or null.
pub fn opt_scalar<T: async_graphql::ScalarType>(v: Option<&T>) -> Value {
    v.map_or(Value::Null, scalar)
}

/// An enum value, as its GraphQL type names it.
pub fn enum_value<T: async_graphql::resolver_utils::EnumType>(v: T) -> Value {
    async_graphql::resolver_utils::enum_value(v)
}
