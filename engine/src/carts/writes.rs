//! Carts' writes, applied by the writer inside a batch: creating a cart,
//! setting and removing lines, emptying it, and removing carts left
//! unchanged for `cart_ttl`. Every change touches the cart (its
//! `updated_at`) and moves its `cart_expiry` entry. Each write answers the
//! cart priced in the batch's own transaction, so the answer (and an
//! idempotency record rendered from it) shows the prices of that moment.

use redb::ReadableTable as _;

use crate::carts::{CARTS_PER_USER_MAX, Cart, StoredCart, price, validate_quantity};
use crate::config::EngineConfig;
use crate::error::Error;
use crate::ids::{CartId, ProductId, Timestamp, UserId};
use crate::storage;
use crate::writer::{Answer, Batch, Reply, WriterState, refuse};

/// Carts' commands.
pub(crate) enum CartCommand {
    Create {
        user_id: UserId,
        reply: Reply<Cart>,
    },
    SetQuantity {
        cart_id: CartId,
        product_id: ProductId,
        quantity: u64,
        reply: Reply<Cart>,
    },
    RemoveLine {
        cart_id: CartId,
        product_id: ProductId,
        reply: Reply<Cart>,
    },
    /// Empties a cart (the order saga, once an order from it is confirmed).
    /// Idempotent.
    Clear {
        cart_id: CartId,
        reply: Reply<Cart>,
    },
}

impl CartCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            CartCommand::Create { reply, .. }
            | CartCommand::SetQuantity { reply, .. }
            | CartCommand::RemoveLine { reply, .. }
            | CartCommand::Clear { reply, .. } => refuse(reply, error),
        }
    }
}

/// Applies one cart command in the batch.
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: CartCommand) -> Answer {
    match command {
        CartCommand::Create { user_id, reply } => {
            let result = create(b, user_id);
            b.answer(reply, result)
        }
        CartCommand::SetQuantity {
            cart_id,
            product_id,
            quantity,
            reply,
        } => {
            let result = set_quantity(b, cart_id, product_id, quantity);
            b.answer(reply, result)
        }
        CartCommand::RemoveLine {
            cart_id,
            product_id,
            reply,
        } => {
            let result = set_quantity(b, cart_id, product_id, 0);
            b.answer(reply, result)
        }
        CartCommand::Clear { cart_id, reply } => {
            let result = clear(b, cart_id);
            b.answer(reply, result)
        }
    }
}

fn create(b: &mut Batch<'_, '_>, user_id: UserId) -> Result<Cart, Error> {
    let user = user_id.as_str();
    let held = b
        .tables
        .carts_by_user()?
        .range((user, 0)..=(user, u128::MAX))?
        .take(CARTS_PER_USER_MAX)
        .count();
    if held >= CARTS_PER_USER_MAX {
        return Err(Error::invalid(
            "user_id",
            format!(
                "user {user} already holds {CARTS_PER_USER_MAX} carts, the most allowed; \
                 empty one or let one expire"
            ),
        ));
    }
    let cart = StoredCart::new(CartId(b.ids.next(b.now)), user_id, b.now);
    let key = cart.id.as_u128();
    b.tables
        .carts()?
        .insert(key, storage::encode_cart(&cart).as_slice())?;
    b.tables
        .carts_by_user()?
        .insert((cart.user_id.as_str(), key), ())?;
    b.tables
        .cart_expiry()?
        .insert((cart.updated_at.0, key), ())?;
    let oldest = &mut b.state.oldest_cart_change;
    *oldest = Some(oldest.map_or(cart.updated_at, |time| time.min(cart.updated_at)));
    price_in_batch(b, &cart)
}

/// Sets a line's quantity (0 removes it). A product that is not live is
/// [`Error::ProductNotFound`] unless the line is being removed. Lines of
/// products archived since they were added are dropped.
fn set_quantity(
    b: &mut Batch<'_, '_>,
    cart_id: CartId,
    product_id: ProductId,
    quantity: u64,
) -> Result<Cart, Error> {
    // Decide everything before writing anything.
    validate_quantity(quantity)?;
    let mut cart = load(b, cart_id)?;
    let previous = cart.updated_at;
    let ledger = &b.state.ledger;
    cart.lines.retain(|&(id, _)| ledger.live(id).is_ok());
    if quantity > 0 {
        ledger.live(product_id)?;
    }
    cart.set_quantity(product_id, quantity)?;
    save(b, &mut cart, previous)?;
    price_in_batch(b, &cart)
}

/// Empties a cart. Idempotent: an empty cart is answered as it is (and
/// touched). For the order saga, which empties a cart in the same
/// transaction as it confirms the order placed from it; a cart removed
/// since (expired) is [`Error::CartNotFound`], which leaves nothing to do.
pub(crate) fn clear(b: &mut Batch<'_, '_>, cart_id: CartId) -> Result<Cart, Error> {
    let mut cart = load(b, cart_id)?;
    let previous = cart.updated_at;
    cart.lines.clear();
    save(b, &mut cart, previous)?;
    price_in_batch(b, &cart)
}

/// The stored cart `cart_id`, or [`Error::CartNotFound`]. With
/// [`price_in_batch`], what another domain's write (an order placed from a
/// cart) reads a cart with.
pub(crate) fn load(b: &mut Batch<'_, '_>, cart_id: CartId) -> Result<StoredCart, Error> {
    storage::read_cart(&*b.tables.carts()?, cart_id)?.ok_or(Error::CartNotFound(cart_id))
}

/// Writes a changed cart, touched now, and moves its expiry entry from
/// `previous` (its `updated_at` as read).
fn save(b: &mut Batch<'_, '_>, cart: &mut StoredCart, previous: Timestamp) -> Result<(), Error> {
    cart.touch(b.now);
    let key = cart.id.as_u128();
    b.tables.cart_expiry()?.remove((previous.0, key))?;
    b.tables
        .cart_expiry()?
        .insert((cart.updated_at.0, key), ())?;
    b.tables
        .carts()?
        .insert(key, storage::encode_cart(cart).as_slice())?;
    // The oldest change stays where it was: at worst it is early, and the
    // purge then finds nothing due and reads the true one.
    Ok(())
}

/// Prices `cart` at the prices of this batch's transaction.
pub(crate) fn price_in_batch(b: &mut Batch<'_, '_>, cart: &StoredCart) -> Result<Cart, Error> {
    if cart.lines.is_empty() {
        return price(cart, &b.config.currency, |_| Ok(None));
    }
    let products = b.tables.products()?;
    price(cart, &b.config.currency, |product_id| {
        Ok(storage::read_product(&*products, product_id)?
            .filter(|product| !product.archived)
            .map(|product| product.fields.price))
    })
}

/// Whether a cart has gone unchanged for `cart_ttl` by `now`.
pub(crate) fn purge_due(state: &WriterState, config: &EngineConfig, now: Timestamp) -> bool {
    state
        .oldest_cart_change
        .is_some_and(|changed| changed.plus(config.cart_ttl) <= now)
}

/// Removes the carts unchanged for `cart_ttl`, least recently changed
/// first, at most `expiries_per_batch_max` per batch. Reads only the due
/// part of `cart_expiry`.
pub(crate) fn purge(b: &mut Batch<'_, '_>) -> Result<(), Error> {
    if !purge_due(b.state, b.config, b.now) {
        return Ok(());
    }
    let ttl_ms = u64::try_from(b.config.cart_ttl.as_millis()).unwrap_or(u64::MAX);
    // Due: changed at or before `now - cart_ttl`; `purge_due` says some is.
    let cutoff = b.now.0.saturating_sub(ttl_ms);
    let mut due = Vec::new();
    for entry in b
        .tables
        .cart_expiry()?
        .range((0, 0)..=(cutoff, u128::MAX))?
    {
        let (key, _) = entry?;
        due.push(key.value());
        if due.len() == b.config.expiries_per_batch_max {
            break;
        }
    }
    for &(changed, key) in &due {
        let cart_id = CartId::from_u128(key);
        let Some(cart) = storage::read_cart(&*b.tables.carts()?, cart_id)? else {
            return Err(Error::corrupt(
                "cart_expiry",
                format!("cart {cart_id} is missing"),
            ));
        };
        if cart.updated_at.0 != changed {
            return Err(Error::corrupt(
                "cart_expiry",
                format!("cart {cart_id} changed at another time"),
            ));
        }
        b.tables.cart_expiry()?.remove((changed, key))?;
        b.tables
            .carts_by_user()?
            .remove((cart.user_id.as_str(), key))?;
        b.tables.carts()?.remove(key)?;
    }
    if !due.is_empty() {
        tracing::debug!(carts = due.len(), "removed carts left unchanged");
    }
    b.state.oldest_cart_change = b
        .tables
        .cart_expiry()?
        .first()?
        .map(|(key, _)| Timestamp(key.value().0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;

    use redb::{Database, ReadableDatabase as _, ReadableTable as _};

    use crate::ids::{ProductId, Timestamp, UserId};
    use crate::{DATABASE_FILE_NAME, Engine, EngineConfig, ManualClock, NewProduct};

    /// Every cart has exactly one `carts_by_user` entry and one
    /// `cart_expiry` entry (at its `updated_at`), and no entry names a
    /// cart that is not there, after creates, changes, archives and purges.
    #[test]
    fn the_indexes_match_the_carts() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp(1_000_000));
        let mut config = EngineConfig::new(dir.path());
        config.clock = Arc::new(clock.clone());
        config.cart_ttl = Duration::from_secs(100);
        let engine = Engine::open(config).unwrap();
        let products = (1..=3)
            .map(|id| NewProduct {
                id: Some(ProductId(id)),
                name: format!("P{id}"),
                price: "1.00".parse().unwrap(),
                ..NewProduct::default()
            })
            .collect();
        engine.import_products(products).wait().unwrap();
        let mut ids = Vec::new();
        for n in 0..12_u64 {
            let user = UserId::new(format!("user-{}", n % 3)).unwrap();
            let id = engine.create_cart(user).wait().unwrap().id;
            ids.push(id);
            clock.advance(Duration::from_secs(10));
            // Every other cart is kept fresh; the rest expire.
            for &earlier in ids.iter().step_by(2) {
                let product = ProductId(1 + (n + earlier.as_u128() as u64) % 3);
                let quantity = n % 2;
                match engine.set_cart_quantity(earlier, product, quantity).wait() {
                    Ok(_) => {}
                    Err(crate::Error::ProductNotFound(id)) => assert_eq!(id, ProductId(2)),
                    Err(error) => panic!("{error}"),
                }
            }
            if n == 6 {
                engine.archive_product(ProductId(2)).wait().unwrap();
            }
            if n % 4 == 3 {
                engine.clear_cart(ids[0]).wait().unwrap();
            }
        }
        clock.advance(Duration::from_secs(95));
        engine.flush().wait().unwrap();
        engine.shutdown();
        drop(engine);

        let db = Database::open(dir.path().join(DATABASE_FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        let carts = txn.open_table(crate::storage::CARTS).unwrap();
        let by_user = txn.open_table(crate::storage::CARTS_BY_USER).unwrap();
        let expiry = txn.open_table(crate::storage::CART_EXPIRY).unwrap();
        let mut expected_by_user = BTreeSet::new();
        let mut expected_expiry = BTreeSet::new();
        for entry in carts.iter().unwrap() {
            let (key, bytes) = entry.unwrap();
            let cart = crate::storage::decode_cart(key.value(), bytes.value()).unwrap();
            expected_by_user.insert((cart.user_id.as_str().to_owned(), key.value()));
            expected_expiry.insert((cart.updated_at.0, key.value()));
        }
        let found_by_user: BTreeSet<_> = by_user
            .iter()
            .unwrap()
            .map(|entry| {
                let (key, _) = entry.unwrap();
                let (user, id) = key.value();
                (user.to_owned(), id)
            })
            .collect();
        let found_expiry: BTreeSet<_> = expiry
            .iter()
            .unwrap()
            .map(|entry| entry.unwrap().0.value())
            .collect();
        assert!(
            !expected_expiry.is_empty() && expected_expiry.len() < ids.len(),
            "some carts were purged, some kept: {}",
            expected_expiry.len()
        );
        assert_eq!(found_by_user, expected_by_user);
        assert_eq!(found_expiry, expected_expiry);
    }
}
