//! The constraints of the OpenAPI document that utoipa's derive cannot
//! write, applied once to the built document, so that the document says
//! exactly what the server takes: a request it describes is accepted, and
//! one it rules out is refused (schemathesis checks both ways in CI).

use serde_json::{Value, json};

use mercato_engine::EngineConfig;

/// Money in a request, as `crate::money::parse_money` reads it: digits, an
/// optional point and at most two decimals, below 10^18 (leading zeros
/// allowed).
pub(crate) const MONEY_PATTERN: &str = r"^0*[0-9]{1,18}(\.[0-9]{1,2})?$";

/// Money that must be more than zero (a payment, a refund).
pub(crate) const POSITIVE_MONEY_PATTERN: &str =
    r"^0*([1-9][0-9]{0,17}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$";

/// A text field the catalog keeps: no control characters (Unicode `Cc`).
const TEXT_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]+$";

/// The document as served, for an engine configured with `config`.
pub(super) fn exact(openapi: &utoipa::openapi::OpenApi, config: &EngineConfig) -> Value {
    let mut document = serde_json::to_value(openapi).expect("an OpenAPI document serializes");
    walk(&mut document, &mut unsigned_integers);
    walk(&mut document, &mut money_patterns);
    walk(&mut document, &mut user_ids);
    // The operator's order list filters by one of the statuses.
    if let Some(parameters) =
        document["paths"]["/api/v1/orders"]["get"]["parameters"].as_array_mut()
    {
        for parameter in parameters {
            if parameter["name"] == "status" {
                parameter["schema"]["enum"] = json!(
                    mercato_engine::OrderStatus::ALL
                        .iter()
                        .map(|status| status.as_str())
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    let schemas = &mut document["components"]["schemas"];
    // Exactly one of `items` and `cart_id`: JSON Schema says so with
    // `oneOf`, which the derive has no attribute for.
    schemas["PlaceOrder"]["oneOf"] = json!([
        {"required": ["items"], "properties": {"items": {"type": "array"}}},
        {"required": ["cart_id"], "properties": {"cart_id": {"type": "string"}}},
    ]);
    // Attributes: a bounded map of bounded keys and values.
    for name in ["CreateProduct", "UpdateProduct"] {
        schemas[name]["properties"]["attributes"] = json!({
            "type": ["object", "null"],
            "description": "Free-form attributes (colour, size, ...); on an update, they replace all the old ones.",
            "maxProperties": mercato_engine::PRODUCT_ATTRIBUTES_MAX,
            "propertyNames": {
                "minLength": 1,
                "maxLength": mercato_engine::PRODUCT_ATTRIBUTE_KEY_LENGTH_MAX,
                "pattern": TEXT_PATTERN,
            },
            "additionalProperties": {
                "type": "string",
                "maxLength": mercato_engine::PRODUCT_ATTRIBUTE_VALUE_LENGTH_MAX,
            },
        });
        schemas[name]["properties"]["low_stock_threshold"]["maximum"] =
            json!(mercato_engine::LOW_STOCK_THRESHOLD_MAX);
    }
    // The reservation deadline this engine allows.
    let ttl = &mut schemas["Reserve"]["properties"]["ttl_seconds"];
    ttl["minimum"] = json!(1);
    ttl["maximum"] = json!(config.reservation_ttl_max.as_secs());
    document
}

/// Calls `visit` on every object in `value`, depth first.
fn walk(value: &mut Value, visit: &mut impl FnMut(&mut serde_json::Map<String, Value>)) {
    match value {
        Value::Object(object) => {
            visit(object);
            for child in object.values_mut() {
                walk(child, visit);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, visit);
            }
        }
        _ => {}
    }
}

/// utoipa writes a Rust `u64` as `int64`, whose range ends at `i64::MAX`;
/// the server's unsigned integers go to `u64::MAX` (the contract's
/// `product_id` is an unsigned 64-bit integer), so they are written as
/// integers from their minimum to `u64::MAX`.
fn unsigned_integers(schema: &mut serde_json::Map<String, Value>) {
    let integer = match schema.get("type") {
        Some(Value::String(kind)) => kind == "integer",
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
        _ => false,
    };
    let unsigned = schema
        .get("minimum")
        .and_then(Value::as_i64)
        .is_some_and(|minimum| minimum >= 0);
    if !integer || !unsigned {
        return;
    }
    if schema.get("format").and_then(Value::as_str) == Some("int64") {
        schema.remove("format");
    }
    schema.entry("maximum").or_insert(json!(u64::MAX));
}

/// A `user_id`, wherever it is (a parameter or a property): 1 to 255
/// characters without control characters (`mercato_engine::UserId`).
fn user_ids(object: &mut serde_json::Map<String, Value>) {
    let constrain = |schema: &mut Value| {
        schema["minLength"] = json!(1);
        schema["maxLength"] = json!(mercato_engine::USER_ID_LENGTH_MAX);
        schema["pattern"] = json!(TEXT_PATTERN);
    };
    if object.get("name").and_then(Value::as_str) == Some("user_id")
        && let Some(schema) = object.get_mut("schema")
    {
        constrain(schema);
    }
    if let Some(schema) = object
        .get_mut("properties")
        .and_then(|properties| properties.get_mut("user_id"))
    {
        constrain(schema);
    }
}

/// Every money field carries its pattern, written once here: the
/// handlers mark them with the formats `money` and `positive-money`.
fn money_patterns(schema: &mut serde_json::Map<String, Value>) {
    let pattern = match schema.get("format").and_then(Value::as_str) {
        Some("money") => MONEY_PATTERN,
        Some("positive-money") => POSITIVE_MONEY_PATTERN,
        _ => return,
    };
    schema.remove("format");
    schema.insert("pattern".to_owned(), json!(pattern));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern agrees with the parser on the spellings that matter.
    #[test]
    fn the_money_pattern_is_the_parser() {
        let money = regex::Regex::new(MONEY_PATTERN).unwrap();
        let positive = regex::Regex::new(POSITIVE_MONEY_PATTERN).unwrap();
        for text in [
            "0",
            "1",
            "19.99",
            "19.9",
            "0019.99",
            "999999999999999999.99",
            "1.",
            ".5",
            "1.001",
            "1e2",
            "+1",
            "-0",
            " 1",
            "1 ",
            "1_000",
            "",
            "1000000000000000000",
            "00000000000000000000000001.5",
            "0.00",
            "0.0",
            "000",
            "0.06",
            "000.5",
            "0.50",
        ] {
            let parsed = crate::money::parse_money(text);
            assert_eq!(money.is_match(text), parsed.is_ok(), "{text:?}");
            assert_eq!(
                positive.is_match(text),
                parsed.is_ok_and(|amount| !amount.is_zero()),
                "{text:?}"
            );
        }
    }
}
