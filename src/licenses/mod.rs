//! License friendly names from Microsoft's product-names CSV (`M365_LICENSE_NAMES_URL`): fetched
//! at start and daily, cached in the database (so a restart without network still has them) and
//! in memory (so serving a name costs no query). Unknown SKUs show their part number, never a
//! bare GUID.

use std::{collections::HashMap, sync::RwLock, time::Duration};

use entity::license_name;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, sea_query::OnConflict};

use crate::app::AppState;

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
        let rows = license_name::Entity::find().all(db).await?;
        let n = rows.len();
        self.replace(rows.into_iter().map(|r| (r.sku_id, r.friendly_name)).collect());
        Ok(n)
    }
}

/// `(sku id, part number, product name)` per SKU from the CSV (one row per SKU and plan in the
/// file; UTF-8 with BOM; quoted fields).
pub fn parse_csv(text: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name).ok_or(format!("the CSV has no {name} column"));
    let (name_i, part_i, guid_i) = (col("Product_Display_Name")?, col("String_Id")?, col("GUID")?);
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    for rec in rdr.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        let (Some(name), Some(part), Some(guid)) = (rec.get(name_i), rec.get(part_i), rec.get(guid_i)) else {
            continue;
        };
        let guid = guid.trim().to_lowercase();
        if guid.len() == 36 && seen.insert(guid.clone()) {
            out.push((guid, part.trim().to_owned(), name.trim().to_owned()));
        }
    }
    Ok(out)
}

/// Fetches the CSV, stores the names and reloads the memory cache. Returns how many SKUs.
pub async fn refresh(app: &AppState) -> Result<usize, String> {
    let Some(url) = app.config.m365_license_names_url.clone() else { return Ok(0) };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().map_err(|e| e.to_string())?;
    let resp = http.get(url).send().await.map_err(|e| format!("fetching license names failed: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("fetching license names failed: HTTP {}", resp.status()));
    }
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let rows = parse_csv(&text)?;
    let now = app.clock.now();
    for chunk in rows.chunks(500) {
        let models = chunk.iter().map(|(id, part, name)| license_name::ActiveModel {
            sku_id: Set(id.clone()),
            sku_part_number: Set(part.clone()),
            friendly_name: Set(name.clone()),
            fetched_at: Set(now),
        });
        license_name::Entity::insert_many(models)
            .on_conflict(
                OnConflict::column(license_name::Column::SkuId)
                    .update_columns([
                        license_name::Column::SkuPartNumber,
                        license_name::Column::FriendlyName,
                        license_name::Column::FetchedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&app.db)
            .await
            .map_err(|e| e.to_string())?;
    }
    app.license_names.load(&app.db).await.map_err(|e| e.to_string())?;
    Ok(rows.len())
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
    fn parses_microsofts_format() {
        let csv = "\u{feff}Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\r\n\
Microsoft 365 Business Premium,SPB,CBDC14AB-D96C-4C30-B9F4-6ADA7CDC1D46,AAD_PREMIUM,41781fb2-bc02-4b7c-bd55-b576c07bb09d,Microsoft Entra ID P1\r\n\
Microsoft 365 Business Premium,SPB,cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46,MFA_PREMIUM,8a256a2b-b617-496d-b51b-e76466e88db0,\"Microsoft Entra Multi-Factor Authentication, premium\"\r\n\
\"Dynamics 365, Sales\",D365_SALES,11111111-2222-3333-4444-555555555555,X,00000000-0000-0000-0000-000000000000,Y\r\n";
        let rows = parse_csv(csv).unwrap();
        assert_eq!(rows.len(), 2, "one entry per SKU");
        assert_eq!(
            rows[0],
            ("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46".into(), "SPB".into(), "Microsoft 365 Business Premium".into())
        );
        assert_eq!(rows[1].2, "Dynamics 365, Sales");
        assert!(parse_csv("a,b\n1,2\n").is_err());
    }

    #[test]
    fn unknown_skus_fall_back_to_the_part_number() {
        let n = LicenseNames::default();
        n.replace(HashMap::from([("abc".to_string(), "Nice Name".to_string())]));
        assert_eq!(n.name("ABC", "PART"), "Nice Name");
        assert_eq!(n.name("def", "EXCHANGESTANDARD"), "EXCHANGESTANDARD");
    }

    #[test]
    fn the_shared_copy_of_microsofts_file_parses() {
        // CI and developers have the copy beside the repository; elsewhere this test has nothing to read.
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/licensing/product-names-and-service-plan-identifiers.csv");
        let Ok(text) = std::fs::read_to_string(path) else { return };
        let rows = parse_csv(&text).unwrap();
        // 569 SKU ids (568 part numbers: one part number has two ids) in the 2025-12-30 copy.
        assert_eq!(rows.len(), 569);
        assert_eq!(rows.iter().map(|r| &r.1).collect::<std::collections::HashSet<_>>().len(), 568);
        let spb = rows.iter().find(|r| r.1 == "SPB").unwrap();
        assert_eq!(spb.0, "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46");
    }
}
