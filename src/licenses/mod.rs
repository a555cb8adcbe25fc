//! License friendly names from Microsoft's product-names CSV (`M365_LICENSE_NAMES_URL`): fetched
//! at start and daily through [`crate::microsoft::licensing`], cached in the database (so a
//! restart without network still has them) and in memory (so serving a name costs no query).
//! Unknown SKUs show their part number, never a bare GUID.

use std::{collections::HashMap, sync::RwLock, time::Duration};

use sea_orm::{ConnectionTrait, DbErr};

use crate::{app::AppState, db, microsoft::licensing};

/// Friendly names by SKU id (lower case).
#[derive(Default)]
pub struct LicenseNames(RwLock<HashMap<String, String>>);

impl LicenseNames {
    /// The product name of a SKU, or its part number when unknown.
    pub fn name(&self, sku_id: &str, part_number: &str) -> String {
        let g = self.0.read().unwrap_or_else(|p| p.into_inner());
        g.get(&sku_id.to_lowercase()).cloned().unwrap_or_else(|| part_number.to_owned())
    }

    fn replace(&self, names: HashMap<String, String>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = names;
    }

    /// Loads the cached names from the database.
    pub async fn load(&self, db: &impl ConnectionTrait) -> Result<usize, DbErr> {
        let rows = db::license_names::all(db).await?;
        let n = rows.len();
        self.replace(rows.into_iter().collect());
        Ok(n)
    }
}

/// Fetches the CSV, stores the names and reloads the memory cache. Returns how many SKUs.
pub async fn refresh(app: &AppState) -> Result<usize, String> {
    let Some(url) = app.config.m365_license_names_url.clone() else { return Ok(0) };
    let names = licensing::fetch_product_names(url).await?;
    db::license_names::upsert(&app.db, &names, app.clock.now()).await.map_err(|e| e.to_string())?;
    app.license_names.load(&app.db).await.map_err(|e| e.to_string())?;
    Ok(names.len())
}

/// Refreshes at start and then daily; failures are logged and the cached names stay.
pub async fn run(app: AppState) {
    if app.config.m365_license_names_url.is_none() {
        return;
    }
    loop {
        match refresh(&app).await {
            Ok(n) => tracing::info!(skus = n, "license names refreshed"),
            Err(e) => tracing::warn!(error = %e, "license names not refreshed; keeping the cached ones"),
        }
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_skus_fall_back_to_the_part_number() {
        let n = LicenseNames::default();
        n.replace(HashMap::from([("abc".to_string(), "Nice Name".to_string())]));
        assert_eq!(n.name("ABC", "PART"), "Nice Name");
        assert_eq!(n.name("def", "EXCHANGESTANDARD"), "EXCHANGESTANDARD");
    }
}
