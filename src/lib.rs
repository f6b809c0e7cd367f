//! cancelguard: a reverse proxy that lets Microsoft Graph's
//! `scheduledPermissionsRequest: cancelAll` through only for callers whose
//! Entra ID token verifies and whom a local allowlist allows, and that
//! writes a durable, hash-chained audit record of every attempt.
//!
//! The modules follow the request: [`route`] classifies the target,
//! [`shape`] checks method and body, [`auth`] verifies the token, [`policy`]
//! decides, [`audit`] records, [`upstream`] forwards; [`proxy`] runs them in
//! order and [`error`] turns every refusal into a status and a Graph-shaped
//! body.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod batch;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod route;
pub mod server;
pub mod shape;
pub mod tls;
pub mod upstream;
