//! Microsoft's "Product names and service plan identifiers for licensing" CSV: fetching it and
//! reading its format (UTF-8 with a BOM, quoted fields, one row per SKU and service plan).

use std::time::Duration;

use url::Url;

/// One SKU of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductName {
    /// `GUID`, lower case: the `skuId` Graph reports.
    pub sku_id: String,
    /// `String_Id`: the `skuPartNumber`.
    pub part_number: String,
    /// `Product_Display_Name`, e.g. "Microsoft 365 Business Premium".
    pub display_name: String,
}

/// Fetches and parses the file at `url`.
pub async fn fetch_product_names(url: Url) -> Result<Vec<ProductName>, String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().map_err(|e| e.to_string())?;
    let resp = http.get(url).send().await.map_err(|e| format!("fetching license names failed: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("fetching license names failed: HTTP {}", resp.status()));
    }
    let text = resp.text().await.map_err(|e| format!("reading license names failed: {}", e.without_url()))?;
    parse_product_names(&text)
}

/// One entry per SKU, in file order; rows whose GUID is not one are skipped.
pub fn parse_product_names(text: &str) -> Result<Vec<ProductName>, String> {
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
            out.push(ProductName {
                sku_id: guid,
                part_number: part.trim().to_owned(),
                display_name: name.trim().to_owned(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sku_id: &str, part_number: &str, display_name: &str) -> ProductName {
        ProductName { sku_id: sku_id.into(), part_number: part_number.into(), display_name: display_name.into() }
    }

    #[test]
    fn parses_microsofts_format() {
        let csv = "\u{feff}Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\r\n\
Microsoft 365 Business Premium,SPB,CBDC14AB-D96C-4C30-B9F4-6ADA7CDC1D46,AAD_PREMIUM,41781fb2-bc02-4b7c-bd55-b576c07bb09d,Microsoft Entra ID P1\r\n\
Microsoft 365 Business Premium,SPB,cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46,MFA_PREMIUM,8a256a2b-b617-496d-b51b-e76466e88db0,\"Microsoft Entra Multi-Factor Authentication, premium\"\r\n\
\"Dynamics 365, Sales\",D365_SALES,11111111-2222-3333-4444-555555555555,X,00000000-0000-0000-0000-000000000000,Y\r\n";
        let rows = parse_product_names(csv).unwrap();
        assert_eq!(rows.len(), 2, "one entry per SKU");
        assert_eq!(rows[0], entry("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "SPB", "Microsoft 365 Business Premium"));
        assert_eq!(rows[1].display_name, "Dynamics 365, Sales");
        assert!(parse_product_names("a,b\n1,2\n").is_err());
    }

    /// Lines copied unchanged from Microsoft's file (the 2025-12-30 download): five SKUs with all
    /// their service-plan rows, and the first quoted names, BOM and all.
    #[test]
    fn a_sample_of_microsofts_file_parses() {
        let text = include_str!("../../tests/fixtures/microsoft/product-names-sample.csv");
        let rows = parse_product_names(text).unwrap();
        assert_eq!(rows.len(), 7);
        assert!(rows.contains(&entry("cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", "SPB", "Microsoft 365 Business Premium")));
        assert!(rows.contains(&entry("078d2b04-f1bd-4111-bbd4-b4b1b354cef4", "AAD_PREMIUM", "Microsoft Entra ID P1")));
        assert!(rows.iter().any(|r| r.display_name.starts_with("Dynamics 365 for Case Management, Enterprise")));
    }
}
