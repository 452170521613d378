//! Orders' writes, applied by the writer inside a batch: placing an order
//! (price, reserve and start the saga in one transaction), applying a
//! payment's outcome (confirm and commit, or fail and release), the
//! compensations (cancel, expire, refund, void), and shipping.
//!
//! Every step is written with its saga log entries in the same transaction
//! as its effect. Every compensation checks that what it undoes is still
//! there (release only an active reservation, refund only a captured
//! payment) and logs one that found nothing to undo as such.

use redb::ReadableTable as _;
use rust_decimal::Decimal;

use crate::carts;
use crate::catalog::writes::live_product;
use crate::error::Error;
use crate::event::Event;
use crate::ids::{CartId, OrderId, PaymentId};
use crate::inventory::writes::{finish, reserve, set_on_hand};
use crate::inventory::{
    ReservationLine, ReservationStatus, ReserveRequest, same_lines, validate_reserve,
};
use crate::orders::{
    ChargeOutcome, NewOrder, Order, OrderLine, OrderStatus, Payment, PaymentResult, PaymentStatus,
    SagaEntry, SagaStatus, validate_new_order, validate_text,
};
use crate::storage;
use crate::writer::{Answer, Batch, Reply, refuse};

/// The longest webhook event id, in bytes.
pub(crate) const WEBHOOK_EVENT_ID_LENGTH_MAX: usize = 255;

/// Orders' commands.
pub(crate) enum OrderCommand {
    Place {
        order: NewOrder,
        reply: Reply<Order>,
    },
    PaymentResult {
        result: PaymentResult,
        reply: Reply<Payment>,
    },
    Cancel {
        order_id: OrderId,
        reply: Reply<Order>,
    },
    Ship {
        order_id: OrderId,
        carrier: Option<String>,
        tracking_number: Option<String>,
        reply: Reply<Order>,
    },
    Deliver {
        order_id: OrderId,
        reply: Reply<Order>,
    },
    /// The saga runner voided (or found nothing to void) a voided
    /// payment's charge at the gateway.
    VoidedAtGateway {
        payment_id: PaymentId,
        details: String,
        reply: Reply<Payment>,
    },
    /// The gateway gave `amount` back.
    Refunded {
        payment_id: PaymentId,
        amount: Decimal,
        reply: Reply<Payment>,
    },
}

impl OrderCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            OrderCommand::Place { reply, .. }
            | OrderCommand::Cancel { reply, .. }
            | OrderCommand::Ship { reply, .. }
            | OrderCommand::Deliver { reply, .. } => refuse(reply, error),
            OrderCommand::PaymentResult { reply, .. }
            | OrderCommand::VoidedAtGateway { reply, .. }
            | OrderCommand::Refunded { reply, .. } => refuse(reply, error),
        }
    }
}

/// Applies one order command in the batch.
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: OrderCommand) -> Answer {
    match command {
        OrderCommand::Place { order, reply } => {
            let result = place(b, order);
            b.answer(reply, result)
        }
        OrderCommand::PaymentResult { result, reply } => {
            let result = payment_result(b, result);
            b.answer(reply, result)
        }
        OrderCommand::Cancel { order_id, reply } => {
            let result = cancel(b, order_id);
            b.answer(reply, result)
        }
        OrderCommand::Ship {
            order_id,
            carrier,
            tracking_number,
            reply,
        } => {
            let result = ship(b, order_id, carrier, tracking_number);
            b.answer(reply, result)
        }
        OrderCommand::Deliver { order_id, reply } => {
            let result = deliver(b, order_id);
            b.answer(reply, result)
        }
        OrderCommand::VoidedAtGateway {
            payment_id,
            details,
            reply,
        } => {
            let result = voided_at_gateway(b, payment_id, details);
            b.answer(reply, result)
        }
        OrderCommand::Refunded {
            payment_id,
            amount,
            reply,
        } => {
            let result = refunded(b, payment_id, amount);
            b.answer(reply, result)
        }
    }
}

fn read_order(b: &mut Batch<'_, '_>, order_id: OrderId) -> Result<Order, Error> {
    let currency = b.config.currency.clone();
    storage::read_order(&*b.tables.orders()?, order_id, &currency)?
        .ok_or(Error::OrderNotFound(order_id))
}

fn write_order(b: &mut Batch<'_, '_>, order: &Order) -> Result<(), Error> {
    b.tables
        .orders()?
        .insert(order.id.as_u128(), storage::encode_order(order).as_slice())
}

fn read_payment(b: &mut Batch<'_, '_>, payment_id: PaymentId) -> Result<Payment, Error> {
    let currency = b.config.currency.clone();
    storage::read_payment(&*b.tables.payments()?, payment_id, &currency)?
        .ok_or(Error::PaymentNotFound(payment_id))
}

fn write_payment(b: &mut Batch<'_, '_>, payment: &Payment) -> Result<(), Error> {
    b.tables.payments()?.insert(
        payment.id.as_u128(),
        storage::encode_payment(payment).as_slice(),
    )
}

/// Moves `order` to `next`, refusing what the state machine refuses.
fn transition(b: &Batch<'_, '_>, order: &mut Order, next: OrderStatus) -> Result<(), Error> {
    if !order.status.can_become(next) {
        return Err(Error::InvalidOrderState {
            order_id: order.id,
            status: order.status.as_str(),
        });
    }
    order.status = next;
    order.updated_at = b.now.max(order.created_at);
    Ok(())
}

/// Appends an entry to an order's saga log.
fn saga(
    b: &mut Batch<'_, '_>,
    order_id: OrderId,
    step_name: &str,
    is_compensating: bool,
    status: SagaStatus,
    details: String,
) -> Result<(), Error> {
    let key = order_id.as_u128();
    let next = b
        .tables
        .saga_log()?
        .range((key, 0)..=(key, u32::MAX))?
        .next_back()
        .transpose()?
        .map_or(0, |(entry, _)| entry.value().1 + 1);
    let entry = SagaEntry {
        step_name: step_name.to_owned(),
        is_compensating,
        status,
        details,
        created_at: b.now,
    };
    b.tables
        .saga_log()?
        .insert((key, next), storage::encode_saga(&entry).as_slice())
}

/// The reservation step's intent and outcome, written together: the
/// reservation is decided inside this same transaction.
fn reserve_step(
    b: &mut Batch<'_, '_>,
    order_id: OrderId,
    outcome: SagaStatus,
    details: String,
) -> Result<(), Error> {
    let step = "RESERVE_INVENTORY";
    saga(b, order_id, step, false, SagaStatus::Started, String::new())?;
    saga(b, order_id, step, false, outcome, details)
}

fn place(b: &mut Batch<'_, '_>, mut new: NewOrder) -> Result<Order, Error> {
    validate_new_order(&new)?;
    if let Some(cart_id) = new.cart_id {
        if !new.items.is_empty() {
            return Err(Error::invalid("items", "give items or cart_id, not both"));
        }
        new.items = cart_lines(b, cart_id, &new.user_id)?;
    }
    let request = ReserveRequest {
        order_id: new.order_id.unwrap_or(OrderId(b.ids.next(b.now))),
        items: new.items.clone(),
        ttl: new.ttl,
    };
    validate_reserve(
        &request,
        b.config.reservation_ttl_default,
        b.config.reservation_ttl_max,
    )?;
    let order_id = request.order_id;
    let currency = b.config.currency.clone();
    if let Some(existing) = storage::read_order(&*b.tables.orders()?, order_id, &currency)? {
        let lines: Vec<_> = existing
            .items
            .iter()
            .map(|line| crate::inventory::ReservationLine {
                product_id: line.product_id,
                quantity: line.quantity,
            })
            .collect();
        if existing.user_id == new.user_id && same_lines(&lines, &new.items) {
            return Ok(existing);
        }
        return Err(Error::Conflict(format!(
            "order {order_id} exists with another request"
        )));
    }
    // Price every line first: an unknown or archived product changes nothing.
    let mut items = Vec::with_capacity(new.items.len());
    for line in &new.items {
        let product = live_product(b, line.product_id)?;
        items.push(OrderLine {
            product_id: line.product_id,
            quantity: line.quantity,
            unit_price: product.fields.price,
        });
    }
    let total_amount: Decimal = items
        .iter()
        .map(|line| line.unit_price * Decimal::from(line.quantity))
        .sum();
    let mut order = Order {
        id: order_id,
        user_id: new.user_id.clone(),
        status: OrderStatus::Pending,
        items,
        total_amount,
        currency: currency.clone(),
        failure_reason: None,
        payment_id: None,
        email: new.email.clone(),
        shipping_address: new.shipping_address.clone(),
        cart_id: new.cart_id,
        carrier: None,
        tracking_number: None,
        created_at: b.now,
        updated_at: b.now,
    };
    // The reservation decides everything before it writes anything, so a
    // refusal leaves no trace but the order's own record.
    let reserved = match reserve(b, &request) {
        Ok(reserved) => Some(reserved),
        Err(Error::InsufficientStock {
            product_id,
            requested,
            available,
        }) => {
            let details = format!(
                "insufficient stock for product {product_id}: requested {requested}, available {available}"
            );
            reserve_step(b, order_id, SagaStatus::Failed, details)?;
            None
        }
        Err(other) => return Err(other),
    };
    b.tables
        .orders_by_user()?
        .insert((new.user_id.as_str(), order_id.as_u128()), ())?;
    match reserved {
        Some(reserved) => {
            let payment = Payment {
                id: PaymentId(b.ids.next(b.now)),
                order_id,
                amount: total_amount,
                currency,
                status: PaymentStatus::Pending,
                failure_reason: None,
                refunded_amount: Decimal::ZERO,
                token: new.payment_token.clone(),
                provider_reference: None,
                created_at: b.now,
                updated_at: b.now,
            };
            write_payment(b, &payment)?;
            b.tables
                .payments_by_order()?
                .insert(order_id.as_u128(), payment.id.as_u128())?;
            transition(b, &mut order, OrderStatus::AwaitingPayment)?;
            order.payment_id = Some(payment.id);
            let reservation = &reserved.reservation;
            reserve_step(
                b,
                order_id,
                SagaStatus::Completed,
                format!(
                    "reservation {} until {}",
                    reservation.reservation_id, reservation.expires_at
                ),
            )?;
            saga(
                b,
                order_id,
                "PROCESS_PAYMENT",
                false,
                SagaStatus::Started,
                format!(
                    "payment {} of {} {}, idempotency key {}",
                    payment.id, payment.amount, payment.currency, payment.id
                ),
            )?;
            write_order(b, &order)?;
            b.emit(Event::OrderCreated {
                order_id,
                user_id: order.user_id.clone(),
                items: new.items,
                total_amount,
                payment_id: Some(payment.id),
            })?;
        }
        None => {
            transition(b, &mut order, OrderStatus::Cancelled)?;
            order.failure_reason = Some("insufficient_stock".to_owned());
            write_order(b, &order)?;
            b.emit(Event::OrderCreated {
                order_id,
                user_id: order.user_id.clone(),
                items: new.items,
                total_amount,
                payment_id: None,
            })?;
            b.emit(Event::OrderCancelled {
                order_id,
                reason: order.failure_reason.clone(),
            })?;
        }
    }
    Ok(order)
}

fn payment_result(b: &mut Batch<'_, '_>, result: PaymentResult) -> Result<Payment, Error> {
    let mut payment = read_payment(b, result.payment_id)?;
    if let Some(event_id) = &result.webhook_event_id {
        if event_id.is_empty() || event_id.len() > WEBHOOK_EVENT_ID_LENGTH_MAX {
            return Err(Error::invalid(
                "id",
                format!("between 1 and {WEBHOOK_EVENT_ID_LENGTH_MAX} bytes"),
            ));
        }
        if b.tables.webhook_events()?.get(event_id.as_str())?.is_some() {
            // Applied before: a repeat changes nothing.
            return Ok(payment);
        }
        let now = b.now.0;
        b.tables.webhook_events()?.insert(event_id.as_str(), now)?;
    }
    if let ChargeOutcome::Pending { provider_reference } = &result.outcome {
        // Whatever the status: a webhook may have settled the charge
        // before the charge's own answer came back, and a later refund
        // needs the reference.
        if payment.provider_reference.is_none() {
            payment.provider_reference = Some(provider_reference.clone());
            payment.updated_at = b.now.max(payment.created_at);
            write_payment(b, &payment)?;
            saga(
                b,
                payment.order_id,
                "PROCESS_PAYMENT",
                false,
                SagaStatus::Started,
                format!(
                    "accepted by the gateway as {provider_reference}; the outcome follows by webhook"
                ),
            )?;
        }
        return Ok(payment);
    }
    let late = match (payment.status, &result.outcome) {
        (PaymentStatus::Pending, _) => false,
        // Voided here while the charge was on its way, and captured there
        // anyway: the money comes back by a refund.
        (PaymentStatus::Voided, ChargeOutcome::Succeeded { .. }) => true,
        // Already decided: the same outcome again changes nothing.
        _ => return Ok(payment),
    };
    let order_id = payment.order_id;
    let mut order = read_order(b, order_id)?;
    payment.updated_at = b.now.max(payment.created_at);
    match result.outcome {
        ChargeOutcome::Succeeded { provider_reference } => {
            let provider_reference = if provider_reference.is_empty() {
                payment.provider_reference.clone().unwrap_or_default()
            } else {
                provider_reference
            };
            payment.status = PaymentStatus::Succeeded;
            payment.provider_reference = Some(provider_reference.clone());
            write_payment(b, &payment)?;
            saga(
                b,
                order_id,
                "PROCESS_PAYMENT",
                false,
                SagaStatus::Completed,
                format!(
                    "captured {} (reference {provider_reference})",
                    payment.amount
                ),
            )?;
            b.emit(Event::PaymentSucceeded {
                payment_id: payment.id,
                order_id,
                amount: payment.amount,
            })?;
            if order.status == OrderStatus::AwaitingPayment && !late {
                let (reservation, _) = finish(b, order_id, ReservationStatus::Committed)?;
                saga(
                    b,
                    order_id,
                    "COMMIT_INVENTORY",
                    false,
                    SagaStatus::Completed,
                    format!("reservation {} committed", reservation.reservation_id),
                )?;
                transition(b, &mut order, OrderStatus::Confirmed)?;
                write_order(b, &order)?;
                if let Some(cart_id) = order.cart_id {
                    empty_cart(b, order_id, cart_id)?;
                }
                b.emit(Event::OrderConfirmed {
                    order_id,
                    payment_id: payment.id,
                })?;
            } else {
                // The order ended while the charge was on its way: give the
                // money back. The saga runner makes the refund.
                saga(
                    b,
                    order_id,
                    "REFUND_PAYMENT",
                    true,
                    SagaStatus::Started,
                    format!(
                        "the order is {}; refunding {}, idempotency key {}",
                        order.status.as_str(),
                        payment.amount,
                        refund_key(payment.id)
                    ),
                )?;
            }
        }
        ChargeOutcome::Failed { reason } => {
            payment.status = PaymentStatus::Failed;
            payment.failure_reason = Some(reason.clone());
            write_payment(b, &payment)?;
            saga(
                b,
                order_id,
                "PROCESS_PAYMENT",
                false,
                SagaStatus::Failed,
                reason.clone(),
            )?;
            b.emit(Event::PaymentFailed {
                payment_id: payment.id,
                order_id,
                reason: reason.clone(),
            })?;
            if order.status == OrderStatus::AwaitingPayment {
                release(b, order_id, "payment failed")?;
                transition(b, &mut order, OrderStatus::PaymentFailed)?;
                order.failure_reason = Some(reason.clone());
                write_order(b, &order)?;
                b.emit(Event::OrderFailed { order_id, reason })?;
            }
        }
        ChargeOutcome::Pending { .. } => unreachable!("handled above"),
    }
    Ok(payment)
}

/// The lines of a user's cart that can be ordered now (archived products
/// left out). Another user's cart is not found; an empty one is refused.
fn cart_lines(
    b: &mut Batch<'_, '_>,
    cart_id: CartId,
    user_id: &str,
) -> Result<Vec<ReservationLine>, Error> {
    let cart = carts::writes::load(b, cart_id)?;
    if cart.user_id.as_str() != user_id {
        return Err(Error::CartNotFound(cart_id));
    }
    let priced = carts::writes::price_in_batch(b, &cart)?;
    let lines: Vec<ReservationLine> = priced
        .items
        .iter()
        .map(|line| ReservationLine {
            product_id: line.product_id,
            quantity: line.quantity,
        })
        .collect();
    if lines.is_empty() {
        return Err(Error::invalid("cart_id", "the cart is empty"));
    }
    Ok(lines)
}

/// Empties the cart an order was placed from, once it is confirmed.
fn empty_cart(b: &mut Batch<'_, '_>, order_id: OrderId, cart_id: CartId) -> Result<(), Error> {
    let details = match carts::writes::clear(b, cart_id) {
        Ok(_) => format!("cart {cart_id} emptied"),
        Err(Error::CartNotFound(_)) => format!("nothing to empty: cart {cart_id} is gone"),
        Err(error) => return Err(error),
    };
    saga(
        b,
        order_id,
        "EMPTY_CART",
        false,
        SagaStatus::Completed,
        details,
    )
}

/// The idempotency key of a payment's full refund by the saga.
pub(crate) fn refund_key(payment_id: PaymentId) -> String {
    format!("refund-{payment_id}")
}

/// Releases an order's reservation if it is still active, logging the
/// compensation either way.
fn release(b: &mut Batch<'_, '_>, order_id: OrderId, why: &str) -> Result<(), Error> {
    let reservation = storage::read_reservation(&*b.tables.reservations()?, order_id)?;
    let details = match reservation {
        Some(reservation) if reservation.status == ReservationStatus::Active => {
            finish(b, order_id, ReservationStatus::Released)?;
            format!("{why}: reservation {} released", reservation.reservation_id)
        }
        Some(reservation) => format!(
            "{why}: nothing to release, the reservation is {}",
            reservation.status.as_str()
        ),
        None => format!("{why}: nothing to release, no reservation"),
    };
    saga(
        b,
        order_id,
        "RELEASE_INVENTORY",
        true,
        SagaStatus::Completed,
        details,
    )
}

/// Marks a pending payment voided (the saga runner voids it at the
/// gateway); logs the compensation.
fn void_pending(b: &mut Batch<'_, '_>, order: &Order) -> Result<(), Error> {
    let Some(payment_id) = order.payment_id else {
        return Ok(());
    };
    let mut payment = read_payment(b, payment_id)?;
    if payment.status != PaymentStatus::Pending {
        return Ok(());
    }
    payment.status = PaymentStatus::Voided;
    payment.updated_at = b.now.max(payment.created_at);
    write_payment(b, &payment)?;
    saga(
        b,
        order.id,
        "VOID_PAYMENT",
        true,
        SagaStatus::Started,
        format!("payment {payment_id} voided before its outcome was known"),
    )
}

/// Completes a `VOID_PAYMENT` compensation once. Idempotent: a second
/// report changes nothing.
fn voided_at_gateway(
    b: &mut Batch<'_, '_>,
    payment_id: PaymentId,
    details: String,
) -> Result<Payment, Error> {
    let payment = read_payment(b, payment_id)?;
    let key = payment.order_id.as_u128();
    let mut done = false;
    for entry in b.tables.saga_log()?.range((key, 0)..=(key, u32::MAX))? {
        let entry = storage::decode_saga(entry?.1.value())?;
        done |= entry.step_name == "VOID_PAYMENT" && entry.status == SagaStatus::Completed;
    }
    if !done {
        saga(
            b,
            payment.order_id,
            "VOID_PAYMENT",
            true,
            SagaStatus::Completed,
            details,
        )?;
    }
    Ok(payment)
}

fn cancel(b: &mut Batch<'_, '_>, order_id: OrderId) -> Result<Order, Error> {
    let mut order = read_order(b, order_id)?;
    if order.status == OrderStatus::Cancelled {
        // Idempotent: cancelling a cancelled order answers it as it is.
        return Ok(order);
    }
    let was = order.status;
    transition(b, &mut order, OrderStatus::Cancelled)?;
    match was {
        OrderStatus::Pending | OrderStatus::AwaitingPayment => {
            release(b, order_id, "cancelled")?;
            void_pending(b, &order)?;
        }
        OrderStatus::Confirmed => {
            // The stock was sold: it comes back to on_hand. The payment is
            // refunded by the saga runner.
            for line in order.items.clone() {
                let on_hand = b
                    .state
                    .ledger
                    .get(line.product_id)
                    .map(|entry| entry.on_hand);
                let restocked = match on_hand {
                    Some(on_hand) => set_on_hand(
                        b,
                        line.product_id,
                        i128::from(on_hand) + i128::from(line.quantity),
                        "quantity",
                    )
                    .map(|_| ()),
                    None => Err(Error::ProductNotFound(line.product_id)),
                };
                let details = match restocked {
                    Ok(()) => format!(
                        "{} of product {} back on hand",
                        line.quantity, line.product_id
                    ),
                    Err(error) if !error.is_storage_fault() => {
                        format!("product {} not restocked: {error}", line.product_id)
                    }
                    Err(error) => return Err(error),
                };
                saga(
                    b,
                    order_id,
                    "RESTOCK_INVENTORY",
                    true,
                    SagaStatus::Completed,
                    details,
                )?;
            }
            if let Some(payment_id) = order.payment_id {
                let payment = read_payment(b, payment_id)?;
                if payment.refundable() > Decimal::ZERO {
                    saga(
                        b,
                        order_id,
                        "REFUND_PAYMENT",
                        true,
                        SagaStatus::Started,
                        format!(
                            "refunding {}, idempotency key {}",
                            payment.refundable(),
                            refund_key(payment_id)
                        ),
                    )?;
                }
            }
        }
        _ => unreachable!("the state machine let only these through"),
    }
    write_order(b, &order)?;
    b.emit(Event::OrderCancelled {
        order_id,
        reason: None,
    })?;
    Ok(order)
}

/// The inventory's hook: an order's reservation expired while its payment
/// was pending. The order is cancelled; a payment that succeeds later is
/// refunded.
pub(crate) fn reservation_expired(b: &mut Batch<'_, '_>, order_id: OrderId) -> Result<(), Error> {
    let currency = b.config.currency.clone();
    let Some(mut order) = storage::read_order(&*b.tables.orders()?, order_id, &currency)? else {
        // A reservation made without an order (POST /inventory/reserve).
        return Ok(());
    };
    if order.status != OrderStatus::AwaitingPayment {
        return Ok(());
    }
    transition(b, &mut order, OrderStatus::Cancelled)?;
    order.failure_reason = Some("reservation_expired".to_owned());
    saga(
        b,
        order_id,
        "RELEASE_INVENTORY",
        true,
        SagaStatus::Completed,
        "the reservation expired while the payment was pending".to_owned(),
    )?;
    void_pending(b, &order)?;
    write_order(b, &order)?;
    b.emit(Event::OrderCancelled {
        order_id,
        reason: order.failure_reason.clone(),
    })
}

fn ship(
    b: &mut Batch<'_, '_>,
    order_id: OrderId,
    carrier: Option<String>,
    tracking_number: Option<String>,
) -> Result<Order, Error> {
    if let Some(carrier) = &carrier {
        validate_text("carrier", carrier)?;
    }
    if let Some(tracking_number) = &tracking_number {
        validate_text("tracking_number", tracking_number)?;
    }
    let mut order = read_order(b, order_id)?;
    transition(b, &mut order, OrderStatus::Shipped)?;
    order.carrier = carrier.clone();
    order.tracking_number = tracking_number.clone();
    write_order(b, &order)?;
    saga(
        b,
        order_id,
        "SHIP_ORDER",
        false,
        SagaStatus::Completed,
        format!(
            "carrier {}, tracking {}",
            carrier.as_deref().unwrap_or("-"),
            tracking_number.as_deref().unwrap_or("-")
        ),
    )?;
    b.emit(Event::OrderShipped {
        order_id,
        carrier,
        tracking_number,
    })?;
    Ok(order)
}

fn deliver(b: &mut Batch<'_, '_>, order_id: OrderId) -> Result<Order, Error> {
    let mut order = read_order(b, order_id)?;
    transition(b, &mut order, OrderStatus::Delivered)?;
    write_order(b, &order)?;
    saga(
        b,
        order_id,
        "DELIVER_ORDER",
        false,
        SagaStatus::Completed,
        String::new(),
    )?;
    b.emit(Event::OrderDelivered { order_id })?;
    Ok(order)
}

fn refunded(
    b: &mut Batch<'_, '_>,
    payment_id: PaymentId,
    amount: Decimal,
) -> Result<Payment, Error> {
    let mut payment = read_payment(b, payment_id)?;
    if !payment.status.was_captured() {
        return Err(Error::InvalidState {
            order_id: payment.order_id,
            state: payment.status.as_str(),
        });
    }
    if amount <= Decimal::ZERO {
        return Err(Error::invalid("amount", "must be positive"));
    }
    if amount > payment.refundable() {
        return Err(Error::RefundExceedsCaptured {
            refundable: payment.refundable(),
        });
    }
    payment.refunded_amount += amount;
    payment.status = if payment.refunded_amount == payment.amount {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::PartiallyRefunded
    };
    payment.updated_at = b.now.max(payment.created_at);
    write_payment(b, &payment)?;
    saga(
        b,
        payment.order_id,
        "REFUND_PAYMENT",
        true,
        SagaStatus::Completed,
        format!("refunded {amount}, {} in all", payment.refunded_amount),
    )?;
    b.emit(Event::PaymentRefunded {
        payment_id,
        order_id: payment.order_id,
        amount,
        refunded_amount: payment.refunded_amount,
    })?;
    Ok(payment)
}
