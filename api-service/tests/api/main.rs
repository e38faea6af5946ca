//! The integration test binary: every endpoint, its errors and auth rules, on SQLite and PostgreSQL;
//! uploads against S3 on moto; property tests through `oneshot`; graceful shutdown of the real binary;
//! ES256 tokens checked as an API Gateway JWT authorizer would, from the published JWK Set.

mod helpers;

mod authorization;
mod books;
mod factorial;
mod health;
mod limits;
mod movies;
mod openapi;
mod props;
mod shutdown;
mod uploads;
mod users;
mod well_known;
