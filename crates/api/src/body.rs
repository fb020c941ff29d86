//! Reading request bodies with a deadline and a size bound, before any handler runs.
//!
//! actix-web bounds the time to receive a request's headers, not its body: a client that sends
//! its headers and then a trickle (or nothing) holds a connection and a worker's buffer for as
//! long as it likes. This middleware reads the whole body (at most [`MAX_BODY_BYTES`]) within
//! the configured deadline and hands it to the handler from memory. A body that does not arrive
//! in time is answered 408 and the connection closed; a larger one 413, as soon as it passes
//! the bound.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, ResponseError};
use futures::StreamExt;

use crate::extract::MAX_BODY_BYTES;
use crate::problem::ApiError;
use crate::AppState;

/// How long a client may take to send a body when the settings say nothing.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

enum Refusal {
    TooLarge,
    Broken(String),
}

async fn read_all(mut payload: Payload) -> Result<Bytes, Refusal> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Refusal::Broken(e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Refusal::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Middleware: the body, whole, within the deadline, or a problem answer.
pub async fn read_within_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let deadline = req
        .app_data::<web::Data<AppState>>()
        .map_or(DEFAULT_DEADLINE, |state| state.body_deadline);
    let payload = req.take_payload();
    let refusal = match actix_web::rt::time::timeout(deadline, read_all(payload)).await {
        Ok(Ok(body)) => {
            req.set_payload(Payload::from(body));
            return Ok(next.call(req).await?.map_into_boxed_body());
        }
        Ok(Err(Refusal::TooLarge)) => ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        },
        Ok(Err(Refusal::Broken(cause))) => {
            ApiError::BadRequest(format!("the request body could not be read: {cause}"))
        }
        Err(_) => ApiError::BodyTimeout {
            seconds: deadline.as_secs_f64(),
        },
    };
    // What is left of the body is not read: the connection cannot be reused.
    let mut response = refusal.error_response();
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    Ok(req.into_response(response))
}
