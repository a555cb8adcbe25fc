//! The integration-test binary: every test starts the real app on port 0 with a fresh database
//! (an SQLite file by default; a fresh PostgreSQL database when `DATABASE_URL` is `postgres://`).

mod cli;
mod connect;
mod contract;
mod enforcement;
mod evidence;
mod fleet;
mod foundation;
mod helpers;
mod hostile;
mod mapping;
mod metrics;
mod microsoft;
mod schema;
mod sync;
mod web;
mod ws;
