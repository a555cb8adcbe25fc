//! `schema.graphql` stays equal to the code, and every type, field, argument and enum value is
//! described.

#[test]
fn committed_schema_matches_the_code() {
    let sdl = m365_integration::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is out of date. Regenerate it with:\n    cargo run -- schema > schema.graphql"
    );
}

#[test]
fn every_type_and_field_has_a_description() {
    let sdl = m365_integration::graphql::sdl();
    let doc = async_graphql::parser::parse_schema(&sdl).expect("SDL parses");
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let mut missing = vec![];
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            let t = t.node;
            let name = t.name.node.to_string();
            if t.description.is_none()
                && !["String", "Int", "Boolean", "Float", "ID", "DateTime"].contains(&name.as_str())
            {
                missing.push(name.clone());
            }
            match t.kind {
                TypeKind::Object(o) => {
                    for f in o.fields {
                        let field = format!("{name}.{}", f.node.name.node);
                        if f.node.description.is_none() {
                            missing.push(field.clone());
                        }
                        for a in &f.node.arguments {
                            if a.node.description.is_none() {
                                missing.push(format!("{field}({}:)", a.node.name.node));
                            }
                        }
                    }
                }
                TypeKind::InputObject(o) => {
                    for f in o.fields {
                        if f.node.description.is_none() {
                            missing.push(format!("{name}.{}", f.node.name.node));
                        }
                    }
                }
                TypeKind::Enum(e) => {
                    for v in e.values {
                        if v.node.description.is_none() {
                            missing.push(format!("{name}.{}", v.node.value.node));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert!(missing.is_empty(), "undocumented GraphQL types/fields: {missing:?}");
}
