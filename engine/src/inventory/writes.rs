//! Stock's writes, applied by the writer inside a batch: setting and
//! adjusting stock, reserving, committing and releasing, and expiring what
//! is due. The decisions are the [`Ledger`]'s; this module writes their
//! outcomes (reservations, deadlines, stock records, events).

use redb::ReadableTable as _;

use crate::error::Error;
use crate::event::Event;
use crate::ids::{OrderId, ProductId, ReservationId, Timestamp};
use crate::inventory::{
    Crossing, ON_HAND_MAX, Reservation, ReservationStatus, ReserveRequest, Reserved, Stock,
    same_lines, validate_reserve,
};
use crate::storage;
use crate::writer::{Answer, Batch, Reply, refuse};

/// Stock's commands.
pub(crate) enum InventoryCommand {
    SetStock {
        product_id: ProductId,
        on_hand: u64,
        reply: Reply<Stock>,
    },
    AdjustStock {
        product_id: ProductId,
        delta: i64,
        reply: Reply<Stock>,
    },
    Reserve {
        request: ReserveRequest,
        reply: Reply<Reserved>,
    },
    Commit {
        order_id: OrderId,
        reply: Reply<Reservation>,
    },
    Release {
        order_id: OrderId,
        reply: Reply<Reservation>,
    },
}

impl InventoryCommand {
    /// Answers the command with `error` without applying it.
    pub(crate) fn fail(self, error: Error) {
        match self {
            InventoryCommand::SetStock { reply, .. }
            | InventoryCommand::AdjustStock { reply, .. } => refuse(reply, error),
            InventoryCommand::Reserve { reply, .. } => refuse(reply, error),
            InventoryCommand::Commit { reply, .. } | InventoryCommand::Release { reply, .. } => {
                refuse(reply, error)
            }
        }
    }
}

/// Applies one stock command in the batch.
pub(crate) fn apply(b: &mut Batch<'_, '_>, command: InventoryCommand) -> Answer {
    match command {
        InventoryCommand::SetStock {
            product_id,
            on_hand,
            reply,
        } => {
            let result = set_on_hand(b, product_id, i128::from(on_hand), "on_hand");
            b.answer(reply, result)
        }
        InventoryCommand::AdjustStock {
            product_id,
            delta,
            reply,
        } => {
            let result = b.state.ledger.live(product_id).map(|entry| entry.on_hand);
            let result = result.and_then(|on_hand| {
                let on_hand = i128::from(on_hand) + i128::from(delta);
                set_on_hand(b, product_id, on_hand, "delta")
            });
            b.answer(reply, result)
        }
        InventoryCommand::Reserve { request, reply } => {
            let result = reserve(b, &request);
            match &result {
                Ok(reserved) if reserved.created => b.report.reservations_created += 1,
                Err(Error::InsufficientStock { .. }) => b.report.reservations_rejected += 1,
                _ => {}
            }
            b.answer(reply, result)
        }
        InventoryCommand::Commit { order_id, reply } => {
            let result = finish(b, order_id, ReservationStatus::Committed);
            if matches!(&result, Ok((_, true))) {
                b.report.reservations_committed += 1;
            }
            let result = result.map(|(reservation, _)| reservation);
            b.answer(reply, result)
        }
        InventoryCommand::Release { order_id, reply } => {
            let result = finish(b, order_id, ReservationStatus::Released);
            if matches!(&result, Ok((_, true))) {
                b.report.reservations_released += 1;
            }
            let result = result.map(|(reservation, _)| reservation);
            b.answer(reply, result)
        }
    }
}

pub(crate) fn set_on_hand(
    b: &mut Batch<'_, '_>,
    product_id: ProductId,
    on_hand: i128,
    field: &str,
) -> Result<Stock, Error> {
    if on_hand > i128::from(ON_HAND_MAX) {
        return Err(Error::invalid(
            field,
            format!("on_hand would exceed {ON_HAND_MAX}"),
        ));
    }
    let mut crossings = Vec::new();
    let stock = b
        .state
        .ledger
        .set_on_hand(product_id, on_hand, &mut crossings)?;
    b.emit(Event::StockUpdated {
        product_id,
        on_hand: stock.on_hand,
        reserved: stock.reserved,
        available: stock.available(),
    })?;
    emit_crossings(b, crossings)?;
    Ok(stock)
}

pub(crate) fn reserve(b: &mut Batch<'_, '_>, request: &ReserveRequest) -> Result<Reserved, Error> {
    let ttl = validate_reserve(
        request,
        b.config.reservation_ttl_default,
        b.config.reservation_ttl_max,
    )?;
    let order_id = request.order_id;
    if let Some(existing) = storage::read_reservation(&*b.tables.reservations()?, order_id)? {
        if same_lines(&existing.items, &request.items) {
            return Ok(Reserved {
                reservation: existing,
                created: false,
            });
        }
        return Err(Error::Conflict(format!(
            "order {order_id} already holds a reservation with other items"
        )));
    }
    let mut crossings = Vec::new();
    b.state.ledger.reserve(&request.items, &mut crossings)?;
    let reservation = Reservation {
        reservation_id: ReservationId(b.ids.next(b.now)),
        order_id,
        status: ReservationStatus::Active,
        items: request.items.clone(),
        created_at: b.now,
        expires_at: b.now.plus(ttl),
        updated_at: b.now,
    };
    let key = order_id.as_u128();
    b.tables
        .reservations()?
        .insert(key, storage::encode_reservation(&reservation).as_slice())?;
    b.tables
        .reservation_deadlines()?
        .insert((reservation.expires_at.0, key), ())?;
    let deadline = &mut b.state.next_deadline;
    *deadline = Some(deadline.map_or(reservation.expires_at, |d| d.min(reservation.expires_at)));
    b.emit(Event::InventoryReserved {
        order_id,
        reservation_id: reservation.reservation_id,
        items: reservation.items.clone(),
        expires_at: reservation.expires_at,
    })?;
    emit_crossings(b, crossings)?;
    Ok(Reserved {
        reservation,
        created: true,
    })
}

/// Commits or releases an order's reservation. Answers the reservation
/// and whether this call changed it (false for an idempotent repeat).
pub(crate) fn finish(
    b: &mut Batch<'_, '_>,
    order_id: OrderId,
    target: ReservationStatus,
) -> Result<(Reservation, bool), Error> {
    let mut reservation = storage::read_reservation(&*b.tables.reservations()?, order_id)?
        .ok_or(Error::ReservationNotFound(order_id))?;
    let repeat = match (target, reservation.status) {
        (_, ReservationStatus::Active) => false,
        (ReservationStatus::Committed, ReservationStatus::Committed) => true,
        (ReservationStatus::Released, ReservationStatus::Released | ReservationStatus::Expired) => {
            true
        }
        (_, state) => {
            return Err(Error::InvalidState {
                order_id,
                state: state.as_str(),
            });
        }
    };
    if repeat {
        return Ok((reservation, false));
    }
    let mut crossings = Vec::new();
    let event = if target == ReservationStatus::Committed {
        b.state.ledger.commit(&reservation.items, &mut crossings);
        Event::InventoryCommitted {
            order_id,
            reservation_id: reservation.reservation_id,
            items: reservation.items.clone(),
        }
    } else {
        b.state.ledger.release(&reservation.items);
        Event::InventoryReleased {
            order_id,
            reservation_id: reservation.reservation_id,
            items: reservation.items.clone(),
        }
    };
    let key = order_id.as_u128();
    b.tables
        .reservation_deadlines()?
        .remove((reservation.expires_at.0, key))?;
    reservation.status = target;
    reservation.updated_at = b.now.max(reservation.created_at);
    b.tables
        .reservations()?
        .insert(key, storage::encode_reservation(&reservation).as_slice())?;
    b.emit(event)?;
    emit_crossings(b, crossings)?;
    Ok((reservation, true))
}

/// Expires the active reservations whose deadline has passed, oldest
/// first, at most `expiries_per_batch_max` per batch. Reads only the due
/// part of the deadline index.
pub(crate) fn expire_due(b: &mut Batch<'_, '_>) -> Result<(), Error> {
    match b.state.next_deadline {
        Some(deadline) if deadline <= b.now => {}
        _ => return Ok(()),
    }
    let mut due = Vec::new();
    for entry in b
        .tables
        .reservation_deadlines()?
        .range(..=(b.now.0, u128::MAX))?
    {
        let (key, _) = entry?;
        due.push(key.value());
        if due.len() == b.config.expiries_per_batch_max {
            break;
        }
    }
    for (deadline, key) in due {
        b.tables.reservation_deadlines()?.remove((deadline, key))?;
        let order_id = OrderId::from_u128(key);
        let Some(mut reservation) =
            storage::read_reservation(&*b.tables.reservations()?, order_id)?
        else {
            return Err(Error::corrupt(
                "reservation_deadlines",
                format!("order {order_id} has no reservation"),
            ));
        };
        if reservation.status != ReservationStatus::Active {
            return Err(Error::corrupt(
                "reservation_deadlines",
                format!("order {order_id} is not active"),
            ));
        }
        b.state.ledger.release(&reservation.items);
        reservation.status = ReservationStatus::Expired;
        reservation.updated_at = b.now.max(reservation.created_at);
        b.tables
            .reservations()?
            .insert(key, storage::encode_reservation(&reservation).as_slice())?;
        b.emit(Event::ReservationExpired {
            order_id,
            reservation_id: reservation.reservation_id,
            items: reservation.items,
        })?;
        b.report.reservations_expired += 1;
        // The order waiting on this reservation, if any, is cancelled.
        crate::orders::writes::reservation_expired(b, order_id)?;
    }
    b.state.next_deadline = b
        .tables
        .reservation_deadlines()?
        .first()?
        .map(|(key, _)| Timestamp(key.value().0));
    Ok(())
}

fn emit_crossings(b: &mut Batch<'_, '_>, crossings: Vec<Crossing>) -> Result<(), Error> {
    for crossing in crossings {
        let event = match crossing {
            Crossing::Low {
                product_id,
                available,
                threshold,
            } => Event::StockLow {
                product_id,
                available,
                threshold,
            },
            Crossing::Depleted { product_id } => Event::StockDepleted { product_id },
        };
        b.emit(event)?;
    }
    Ok(())
}

pub(crate) fn flush_stock(b: &mut Batch<'_, '_>) -> Result<(), Error> {
    for product_id in b.state.ledger.take_dirty() {
        let entry = b
            .state
            .ledger
            .get(product_id)
            .expect("dirty products are known");
        let record = storage::encode_stock(entry.on_hand, entry.reserved);
        b.tables.stock()?.insert(product_id.0, record.as_slice())?;
    }
    Ok(())
}
