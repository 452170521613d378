//! The catalog's writes, applied by the writer inside a batch: creating,
//! importing, upserting, updating and archiving products. Every decision (validation,
//! id assignment) is made before anything is written, so a bad product
//! changes nothing.

use std::collections::HashSet;

use crate::catalog::{
    IMPORT_PRODUCTS_MAX, NewProduct, Product, ProductFields, ProductPatch, UpsertTarget, Upserted,
    check_upsert,
};
use crate::error::Error;
use crate::event::Event;
use crate::ids::ProductId;
use crate::inventory::writes::set_on_hand;
use crate::inventory::{ON_HAND_MAX, StockEntry};
use crate::storage::{self, StoredProduct};
use crate::writer::{Answer, Batch, Reply, refuse};

/// The catalog's commands.
pub(crate) enum CatalogCommand {
    Create {
        product: NewProduct,
        reply: Reply<Product>,
    },
    Import {
        products: Vec<NewProduct>,
        reply: Reply<Vec<Product>>,
    },
    Upsert {
        products: Vec<NewProduct>,
        reply: Reply<Upserted>,
    },
    Update {
        product_id: ProductId,
        patch: ProductPatch,
        reply: Reply<Product>,
    },
    Archive {
        product_id: ProductId,
        reply: Reply<()>,
    },
}

impl CatalogCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            CatalogCommand::Create { reply, .. } | CatalogCommand::Update { reply, .. } => {
                refuse(reply, error)
            }
            CatalogCommand::Import { reply, .. } => refuse(reply, error),
            CatalogCommand::Upsert { reply, .. } => refuse(reply, error),
            CatalogCommand::Archive { reply, .. } => refuse(reply, error),
        }
    }
}

/// Applies one catalog command in the batch.
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: CatalogCommand) -> Answer {
    match command {
        CatalogCommand::Create { product, reply } => {
            let result = import_products(b, std::slice::from_ref(&product), true)
                .map(|mut created| created.pop().expect("one product"));
            b.answer(reply, result)
        }
        CatalogCommand::Import { products, reply } => {
            let result = import_products(b, &products, false);
            b.answer(reply, result)
        }
        CatalogCommand::Upsert { products, reply } => {
            let result = upsert_products(b, &products);
            b.answer(reply, result)
        }
        CatalogCommand::Update {
            product_id,
            patch,
            reply,
        } => {
            let result = update_product(b, product_id, &patch);
            b.answer(reply, result)
        }
        CatalogCommand::Archive { product_id, reply } => {
            let result = archive_product(b, product_id);
            b.answer(reply, result)
        }
    }
}

fn import_products(
    b: &mut Batch<'_, '_>,
    products: &[NewProduct],
    single: bool,
) -> Result<Vec<Product>, Error> {
    let field = |index: usize, name: &str| {
        if single {
            name.to_owned()
        } else {
            format!("products[{index}].{name}")
        }
    };
    if products.is_empty() || products.len() > IMPORT_PRODUCTS_MAX {
        return Err(Error::invalid(
            "products",
            format!("between 1 and {IMPORT_PRODUCTS_MAX} products"),
        ));
    }
    // Decide everything first, so a bad product changes nothing.
    let explicit: HashSet<u64> = products
        .iter()
        .filter_map(|product| product.id.map(|id| id.0))
        .collect();
    let mut next_id = b.state.next_product_id;
    let mut seen = HashSet::with_capacity(products.len());
    let mut planned = Vec::with_capacity(products.len());
    for (index, new) in products.iter().enumerate() {
        let id = match new.id {
            Some(ProductId(0)) => {
                return Err(Error::invalid(field(index, "id"), "must be at least 1"));
            }
            Some(id) => id,
            None => {
                // Ids are assigned upwards from the highest ever created
                // and never wrap: past u64::MAX there are none to assign.
                while next_id != ID_SPACE_EXHAUSTED
                    && (explicit.contains(&next_id)
                        || b.state.ledger.get(ProductId(next_id)).is_some())
                {
                    next_id = id_after(next_id);
                }
                if next_id == ID_SPACE_EXHAUSTED {
                    // A well-formed request the store's state rules out.
                    return Err(Error::Conflict(format!(
                        "{}: no product id is left to assign (a product has id {}); give an unused id explicitly",
                        field(index, "id"),
                        u64::MAX
                    )));
                }
                let id = ProductId(next_id);
                next_id = id_after(next_id);
                id
            }
        };
        if b.state.ledger.get(id).is_some() {
            return Err(Error::ProductExists(id));
        }
        if !seen.insert(id) {
            return Err(Error::invalid(
                field(index, "id"),
                format!("product {id} appears twice"),
            ));
        }
        let fields = ProductFields::from_new(id, new).map_err(|error| match error {
            Error::InvalidInput {
                field: name,
                message,
            } => Error::invalid(field(index, &name), message),
            other => other,
        })?;
        if new.on_hand > ON_HAND_MAX {
            return Err(Error::invalid(
                field(index, "on_hand"),
                format!("must be at most {ON_HAND_MAX}"),
            ));
        }
        planned.push((
            StoredProduct {
                id,
                fields,
                created_at: b.now,
                updated_at: b.now,
                archived: false,
            },
            new.on_hand,
        ));
    }
    let mut created = Vec::with_capacity(planned.len());
    for (product, on_hand) in planned {
        created.push(insert_product(b, product, on_hand)?);
    }
    Ok(created)
}

/// Writes a new product, decided and checked, with its stock and events.
fn insert_product(
    b: &mut Batch<'_, '_>,
    product: StoredProduct,
    on_hand: u64,
) -> Result<Product, Error> {
    let id = product.id;
    assert!(b.state.ledger.get(id).is_none(), "product {id} is new");
    assert!(on_hand <= ON_HAND_MAX);
    b.tables
        .products()?
        .insert(id.0, product.encode().as_slice())?;
    if !product.fields.category.is_empty() {
        b.tables
            .products_by_category()?
            .insert((product.fields.category.as_str(), id.0), ())?;
    }
    b.state.ledger.insert(
        id,
        StockEntry {
            on_hand,
            reserved: 0,
            low_stock_threshold: product.fields.low_stock_threshold,
            archived: false,
        },
    );
    b.state.next_product_id = next_id_after_creating(b.state.next_product_id, id);
    b.emit(Event::ProductCreated { product_id: id })?;
    if on_hand > 0 {
        b.emit(Event::StockUpdated {
            product_id: id,
            on_hand,
            reserved: 0,
            available: on_hand,
        })?;
    }
    Ok(product.to_product(&b.config.currency))
}

/// What an upsert does to one product, decided before anything is written.
enum UpsertPlan {
    Create(StoredProduct, u64),
    Update {
        current: StoredProduct,
        fields: ProductFields,
        on_hand: u64,
    },
    Unchanged,
}

/// Creates the products that do not exist and makes the existing ones match
/// (every field, and `on_hand`), all or none: every product is decided with
/// [`check_upsert`] before the first write.
fn upsert_products(b: &mut Batch<'_, '_>, products: &[NewProduct]) -> Result<Upserted, Error> {
    if products.is_empty() || products.len() > IMPORT_PRODUCTS_MAX {
        return Err(Error::invalid(
            "products",
            format!("between 1 and {IMPORT_PRODUCTS_MAX} products"),
        ));
    }
    let mut seen = HashSet::with_capacity(products.len());
    let mut plans = Vec::with_capacity(products.len());
    for (index, new) in products.iter().enumerate() {
        let entry = new.id.and_then(|id| b.state.ledger.get(id)).copied();
        let target = entry.map(|entry| UpsertTarget {
            archived: entry.archived,
            reserved: entry.reserved,
        });
        let (id, fields) = check_upsert(new, target).map_err(|error| match error {
            Error::InvalidInput { field, message } => {
                Error::invalid(format!("products[{index}].{field}"), message)
            }
            other => other,
        })?;
        if !seen.insert(id) {
            return Err(Error::invalid(
                format!("products[{index}].id"),
                format!("product {id} appears twice"),
            ));
        }
        let plan = match entry {
            None => UpsertPlan::Create(
                StoredProduct {
                    id,
                    fields,
                    created_at: b.now,
                    updated_at: b.now,
                    archived: false,
                },
                new.on_hand,
            ),
            Some(entry) => {
                let current = storage::read_product(&*b.tables.products()?, id)?
                    .filter(|product| !product.archived)
                    .ok_or_else(|| {
                        Error::corrupt("products", format!("product {id} is in the ledger only"))
                    })?;
                if current.fields == fields && entry.on_hand == new.on_hand {
                    UpsertPlan::Unchanged
                } else {
                    UpsertPlan::Update {
                        current,
                        fields,
                        on_hand: new.on_hand,
                    }
                }
            }
        };
        plans.push(plan);
    }
    let mut upserted = Upserted::default();
    for plan in plans {
        match plan {
            UpsertPlan::Create(product, on_hand) => {
                insert_product(b, product, on_hand)?;
                upserted.created += 1;
            }
            UpsertPlan::Update {
                current,
                fields,
                on_hand,
            } => {
                let id = current.id;
                if current.fields != fields {
                    replace_fields(b, current, fields)?;
                }
                let stock = b.state.ledger.stock(id)?;
                if stock.on_hand != on_hand {
                    // Checked above: not below what is reserved, not above the maximum.
                    assert!(on_hand >= stock.reserved);
                    set_on_hand(b, id, i128::from(on_hand), "on_hand")?;
                }
                upserted.updated += 1;
            }
            UpsertPlan::Unchanged => upserted.unchanged += 1,
        }
    }
    assert_eq!(
        upserted.created + upserted.updated + upserted.unchanged,
        products.len()
    );
    Ok(upserted)
}

pub(crate) fn live_product(
    b: &mut Batch<'_, '_>,
    product_id: ProductId,
) -> Result<StoredProduct, Error> {
    match storage::read_product(&*b.tables.products()?, product_id)? {
        Some(product) if !product.archived => Ok(product),
        _ => Err(Error::ProductNotFound(product_id)),
    }
}

fn update_product(
    b: &mut Batch<'_, '_>,
    product_id: ProductId,
    patch: &ProductPatch,
) -> Result<Product, Error> {
    let product = live_product(b, product_id)?;
    if patch.is_empty() {
        return Ok(product.to_product(&b.config.currency));
    }
    let fields = product.fields.patched(patch)?;
    replace_fields(b, product, fields)
}

/// Writes a live product's new fields (validated), its category index, the
/// ledger's copy of its threshold, and `product.updated`.
fn replace_fields(
    b: &mut Batch<'_, '_>,
    mut product: StoredProduct,
    fields: ProductFields,
) -> Result<Product, Error> {
    assert!(!product.archived);
    let product_id = product.id;
    if fields.category != product.fields.category {
        if !product.fields.category.is_empty() {
            b.tables
                .products_by_category()?
                .remove((product.fields.category.as_str(), product_id.0))?;
        }
        if !fields.category.is_empty() {
            b.tables
                .products_by_category()?
                .insert((fields.category.as_str(), product_id.0), ())?;
        }
    }
    product.fields = fields;
    product.updated_at = b.now.max(product.created_at);
    b.tables
        .products()?
        .insert(product_id.0, product.encode().as_slice())?;
    b.state
        .ledger
        .set_product_details(product_id, product.fields.low_stock_threshold, false);
    b.emit(Event::ProductUpdated { product_id })?;
    Ok(product.to_product(&b.config.currency))
}

fn archive_product(b: &mut Batch<'_, '_>, product_id: ProductId) -> Result<(), Error> {
    let mut product = live_product(b, product_id)?;
    if !product.fields.category.is_empty() {
        b.tables
            .products_by_category()?
            .remove((product.fields.category.as_str(), product_id.0))?;
    }
    product.archived = true;
    product.updated_at = b.now.max(product.created_at);
    b.tables
        .products()?
        .insert(product_id.0, product.encode().as_slice())?;
    b.state
        .ledger
        .set_product_details(product_id, product.fields.low_stock_threshold, true);
    b.emit(Event::ProductArchived { product_id })
}

/// `next_product_id` once every id is taken: ids start at 1, so 0 is free
/// to mean "none left".
pub(crate) const ID_SPACE_EXHAUSTED: u64 = 0;

/// The id after `id`, or [`ID_SPACE_EXHAUSTED`] after `u64::MAX`.
pub(crate) fn id_after(id: u64) -> u64 {
    id.checked_add(1).unwrap_or(ID_SPACE_EXHAUSTED)
}

/// The next id to assign once `created` exists.
pub(crate) fn next_id_after_creating(next: u64, created: ProductId) -> u64 {
    if next == ID_SPACE_EXHAUSTED {
        return ID_SPACE_EXHAUSTED;
    }
    match id_after(created.0) {
        ID_SPACE_EXHAUSTED => ID_SPACE_EXHAUSTED,
        after => next.max(after),
    }
}
