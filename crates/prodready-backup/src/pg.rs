//! PostgreSQL for backup work: connections and client-tool settings through `prodready-pg` under this
//! crate's application name, and the session settings pg_dump uses.

pub(crate) use prodready_pg::{ident, literal, with_dbname};

use crate::Result;

/// The `application_name` backup connections and tools use unless the URL sets one.
const APPLICATION_NAME: &str = "prodready-backup";

/// Connects and spawns the connection driver; the handle is returned so the caller can wait for it.
pub(crate) async fn connect(url: &str) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let (client, driver) = prodready_pg::connect(url, APPLICATION_NAME).await?;
    // Literals this crate writes double their quotes and leave backslashes alone: a database or role
    // that sets standard_conforming_strings = off would read them otherwise.
    client.batch_execute("SET standard_conforming_strings = on").await.map_err(crate::Error::db)?;
    Ok((client, driver))
}

/// The database name of a URL.
pub(crate) fn dbname(url: &str) -> Result<String> {
    Ok(prodready_pg::dbname(url)?)
}

/// Connection settings for a libpq tool, as environment variables: nothing secret on argv.
pub(crate) fn libpq_env(url: &str) -> Result<Vec<(&'static str, String)>> {
    Ok(prodready_pg::libpq_env(url, APPLICATION_NAME)?)
}

/// Session settings a data dumper should use (as pg_dump does).
pub(crate) const DUMP_SESSION: &str = "SET search_path = pg_catalog; SET DATESTYLE = ISO; SET INTERVALSTYLE = POSTGRES; \
SET extra_float_digits = 3; SET synchronize_seqscans = off; SET statement_timeout = 0; \
SET idle_in_transaction_session_timeout = 0; SET row_security = off; SET client_encoding = 'UTF8';";

/// Session settings for loading data.
pub(crate) const LOAD_SESSION: &str = "SET search_path = pg_catalog; SET DATESTYLE = ISO; SET INTERVALSTYLE = POSTGRES; \
SET extra_float_digits = 3; SET statement_timeout = 0; SET row_security = off; SET client_encoding = 'UTF8'; \
SET synchronous_commit = off;";

/// `settings`, with the client encoding of the table data when it is not UTF-8 (see
/// [`crate::Manifest::data_encoding`]).
pub(crate) fn session(settings: &str, data_encoding: Option<&str>) -> String {
    match data_encoding {
        Some(encoding) => format!("{settings} SET client_encoding = {};", literal(encoding)),
        None => settings.to_owned(),
    }
}
